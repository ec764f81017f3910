package adapters

import (
	"reflect"

	"github.com/rs/zerolog"
	sioadapter "github.com/zishang520/socket.io/adapters/adapter/v3"
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// countingBuilder builds the library's Redis Streams adapter and mends how it counts servers.
//
// The library's cluster adapter (zishang520 adapters/adapter v3.0.2) asks c.ServerCount() how
// many answers to wait for in FetchSockets and in ServerSideEmit with an ack. c is the embedded
// cluster adapter, not the Streams adapter around it, so that call reaches the base adapter,
// which always says 1: every node waits for no one and answers with its own sockets. The Streams
// adapter's own ServerCount (PUBSUB NUMSUB on its channel) is right. The mend puts, in place of
// the cluster adapter's base, the same base with ServerCount answered by the Streams adapter;
// every other method goes to the base as before.
type countingBuilder struct {
	lib  *adapter.RedisStreamsAdapterBuilder
	conn *redisConn
	log  zerolog.Logger
}

// New implements socket.AdapterConstructor.
func (b *countingBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := b.lib.New(nsp)
	if !mendServerCount(a) {
		b.log.Warn().Str("nsp", nsp.Name()).Msg("redis-streams: cannot mend the server count; fetchSockets stays node-local")
	}
	if ca, ok := a.(sioadapter.ClusterAdapter); ok {
		b.conn.listenPubSub(nsp.Name(), ca)
	}
	return a
}

// countedBase is a base adapter whose ServerCount is another adapter's.
type countedBase struct {
	socket.Adapter
	count func() int64
}

// ServerCount implements socket.Adapter.
func (c countedBase) ServerCount() int64 { return c.count() }

// mendServerCount swaps the base inside a's embedded cluster adapter for a countedBase asking
// a. It reports false, changing nothing, when a is not laid out as the library version this was
// written for.
//
// It runs right after the library made a, and the library's readers may already hand a message
// to a; those read the field written here. The window is the few instructions between the
// library's New returning and this; a message then meets either base, and both answer every
// message the same way (the count is used only by requests this node makes).
func mendServerCount(a socket.Adapter) bool {
	outer := reflect.ValueOf(a)
	if outer.Kind() != reflect.Pointer || outer.Elem().Kind() != reflect.Struct {
		return false
	}
	cluster := outer.Elem().FieldByName("ClusterAdapter")
	if !cluster.IsValid() || cluster.Kind() != reflect.Interface || cluster.IsNil() {
		return false
	}
	inner := cluster.Elem()
	if inner.Kind() != reflect.Pointer || inner.Elem().Kind() != reflect.Struct {
		return false
	}
	base := inner.Elem().FieldByName("Adapter")
	if !base.IsValid() || !base.CanSet() || base.Kind() != reflect.Interface || base.IsNil() {
		return false
	}
	orig, ok := base.Interface().(socket.Adapter)
	if !ok {
		return false
	}
	if _, done := orig.(countedBase); done {
		return true
	}
	mended := reflect.ValueOf(countedBase{Adapter: orig, count: a.ServerCount})
	if !mended.Type().AssignableTo(base.Type()) {
		return false
	}
	base.Set(mended)
	return true
}
