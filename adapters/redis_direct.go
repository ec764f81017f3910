package adapters

import (
	"reflect"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// directBase is the in-memory adapter inside the library's Redis adapter (zishang520
// adapters/redis v3.0.2, redisAdapter), with this node's deliveries made by broadcastLocal: the
// library's adapter publishes a broadcast and then hands it to its in-memory adapter
// (r.Adapter.Broadcast), and hands every broadcast it receives from Redis to the same, so with
// directBase there both reach their recipients as the memory backend's do, one frame written to
// each idle websocket instead of an engine packet per recipient. Everything else (rooms, acks,
// fetches) is the library's in-memory adapter's.
type directBase struct {
	socket.Adapter
	direct  Direct
	encoder parser.Encoder
}

// Construct implements socket.Adapter.
func (d *directBase) Construct(nsp socket.Namespace) {
	d.Adapter.Construct(nsp)
	d.encoder = nsp.Server().Encoder()
}

// Broadcast implements socket.Adapter: this node's recipients only, as the library's in-memory
// adapter.
func (d *directBase) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	broadcastLocal(d.Adapter, d.encoder, d.direct, packet, opts)
}

// deliverDirectly puts a directBase in place of the in-memory adapter a embeds, before a is
// constructed: the library's redisAdapter keeps it in its exported embedded field Adapter, which
// has no setter, so it is set through reflect. It reports false, changing nothing, when a is not
// built that way (another version of the library): deliveries are then the library's.
func deliverDirectly(a socket.Adapter, direct Direct) bool {
	v := reflect.ValueOf(a)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName("Adapter")
	if !f.IsValid() || !f.CanSet() || f.Type() != reflect.TypeFor[socket.Adapter]() {
		return false
	}
	base, ok := f.Interface().(socket.Adapter)
	if !ok || base == nil {
		return false
	}
	f.Set(reflect.ValueOf(socket.Adapter(&directBase{Adapter: base, direct: direct})))
	return true
}
