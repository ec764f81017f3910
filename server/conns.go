package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
)

// connTracker follows every Engine.IO connection of the node: which transport it is on now (so
// the sockets gauge moves on a polling→websocket upgrade), how many packets wait for it, and its
// heartbeat (heartbeat.go). Everything the node watches on a connection is in one listener per
// event, sharing one state.
//
// The library queues a connection's packets without bound while its transport is busy (a
// websocket write blocked on a client that stopped reading, or no long-polling GET waiting), so
// a stuck client would grow memory for as long as it stays connected. connTracker drops a
// connection once more than maxBuffer bytes wait for it; the websocket write timeout (see
// transport.go) bounds the time a write may block.
type connTracker struct {
	metrics     *Metrics
	log         zerolog.Logger
	maxBuffer   int64 // 0 = unlimited
	pongDelay   time.Duration
	pingTimeout time.Duration

	conns sync.Map // engine id → *connState
}

// connState is what the tracker keeps per connection.
type connState struct {
	heartbeat
	queued  atomic.Int64 // bytes of the packets created but not yet handed to the transport
	dropped atomic.Bool
	// buffered counts the packets created but not yet taken by a flush: the engine emits
	// "packetCreate" before it buffers a packet and "flush" after it takes the buffer, so while
	// it is 0 nothing waits in the engine's buffer and a broadcast frame written to the transport
	// directly (direct.go) cannot overtake a packet accepted before it.
	buffered atomic.Int64
	// unsure is set when buffered went below 0: a packet was created before the tracker watched
	// the connection and flushed after, so the count can no longer say the buffer is empty.
	unsure atomic.Bool

	mu        sync.Mutex
	transport string
	nsps      []nspSockets // sockets per namespace connected over this connection (a slice: one or two namespaces, not worth a map)
	sockets   int
	closed    bool
}

// watch starts following conn; the engine calls it on "connection".
func (t *connTracker) watch(conn engine.Socket) {
	st := &connState{transport: conn.Transport().Name()}
	t.conns.Store(conn.Id(), st)
	adopt(conn.Transport(), st)
	watchPings(conn, &st.heartbeat, t.pingTimeout)
	_ = conn.On("upgrade", func(args ...any) {
		tr, ok := args[0].(transports.Transport)
		if !ok {
			return
		}
		adopt(tr, st)
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, ns := range st.nsps {
			t.metrics.connected(ns.nsp, st.transport, -float64(ns.n))
			t.metrics.connected(ns.nsp, tr.Name(), float64(ns.n))
		}
		st.transport = tr.Name()
	})
	_ = conn.On("packetCreate", func(args ...any) {
		p, _ := args[0].(*packet.Packet)
		st.buffered.Add(1)
		st.created(p)
		if t.maxBuffer > 0 && st.queued.Add(packetCost(p)) > t.maxBuffer && st.dropped.CompareAndSwap(false, true) {
			t.metrics.Limited("write_buffer")
			t.log.Warn().Str("sid", conn.Id()).Int64("queued_bytes", st.queued.Load()).Msg("slow consumer: write buffer full, dropping the connection")
			// Not on this goroutine: it is the sender's (a broadcast to many sockets).
			go conn.Close(true)
		}
	})
	_ = conn.On("flush", func(args ...any) {
		wbuf, ok := args[0].([]*packet.Packet)
		if !ok {
			return
		}
		if t.maxBuffer > 0 {
			var n int64
			for _, p := range wbuf {
				n += packetCost(p)
			}
			st.queued.Add(-n)
		}
		if st.buffered.Add(-int64(len(wbuf))) < 0 {
			st.unsure.Store(true)
		}
	})
	_ = conn.On("packet", func(args ...any) {
		p, _ := args[0].(*packet.Packet)
		st.received(conn, p, t.pongDelay)
	})
	// The engine emits "close" once (socket.OnClose), so On, without Once's wrapper.
	_ = conn.On("close", func(...any) {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.closed = true
		t.forget(conn.Id(), st)
	})
}

// nspSockets counts the sockets of one namespace on a connection.
type nspSockets struct {
	nsp string
	n   int
}

// find returns the count of nsp, nil if it has none yet. Callers hold st.mu.
func (st *connState) find(nsp string) *nspSockets {
	for i := range st.nsps {
		if st.nsps[i].nsp == nsp {
			return &st.nsps[i]
		}
	}
	return nil
}

// packetOverhead is what a queued packet costs beyond its data: the packet, its options and the
// buffer headers.
const packetOverhead = 128

// packetCost is what p holds while it waits: its data (encoded once per recipient) plus the
// bookkeeping. The data is not read yet when the engine creates and flushes the packet, so both
// see the same length.
func packetCost(p *packet.Packet) int64 {
	if p == nil {
		return 0
	}
	n := int64(packetOverhead)
	if b, ok := p.Data.(interface{ Len() int }); ok {
		n += int64(b.Len())
	}
	return n
}

// idle reports whether no packet waits in the connection's engine buffer (see buffered).
func (st *connState) idle() bool { return st.buffered.Load() == 0 && !st.unsure.Load() }

// join records that a socket of nsp connected over conn and returns conn's transport.
func (t *connTracker) join(conn engine.Socket, nsp string) string {
	st := t.state(conn)
	if st == nil {
		return conn.Transport().Name()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if ns := st.find(nsp); ns != nil {
		ns.n++
	} else {
		st.nsps = append(st.nsps, nspSockets{nsp: nsp, n: 1})
	}
	st.sockets++
	t.metrics.connected(nsp, st.transport, 1)
	return st.transport
}

// leave records that a socket of nsp on conn disconnected.
func (t *connTracker) leave(conn engine.Socket, nsp string) {
	st := t.state(conn)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ns := st.find(nsp)
	if ns == nil || ns.n == 0 {
		return
	}
	ns.n--
	st.sockets--
	t.metrics.connected(nsp, st.transport, -1)
	t.forget(conn.Id(), st)
}

// forget drops a closed connection without sockets. Callers hold st.mu.
func (t *connTracker) forget(id string, st *connState) {
	if st.closed && st.sockets == 0 {
		t.conns.Delete(id)
	}
}

// state returns conn's state, nil for a connection the tracker never saw.
func (t *connTracker) state(conn engine.Socket) *connState { return t.stateByID(conn.Id()) }

// stateByID returns the state of the connection with the given Engine.IO id, nil if none.
func (t *connTracker) stateByID(id string) *connState {
	if v, ok := t.conns.Load(id); ok {
		return v.(*connState)
	}
	return nil
}

// size is the number of connections followed, for leak checks in tests.
func (t *connTracker) size() int {
	n := 0
	t.conns.Range(func(any, any) bool { n++; return true })
	return n
}
