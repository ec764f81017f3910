package server

import (
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
)

// pongReplayDelay is how long after a client's pong it is delivered to the Engine.IO socket a
// second time (see guardHeartbeat). It postpones the next ping by as much, and must stay well
// below any ping interval. Conformance mode uses a shorter one: the Socket.IO suite does three
// 300 ms ping rounds inside the 1 s connect timeout.
const (
	pongReplayDelay            = 50 * time.Millisecond
	conformancePongReplayDelay = 5 * time.Millisecond
)

// replayedPong marks the second delivery, so it is not replayed again. It is never modified.
var replayedPong = &packet.Packet{Type: packet.PONG}

// heartbeat works around a race in the library's heartbeat (servers/engine v3.0.6,
// socket.schedulePing): the ping is written first and its timeout timer stored afterwards, so a
// client that answers fast enough has its pong clear the previous (or no) timer, and the new
// timer then closes a healthy session with "ping timeout". It happens on loopback and under load
// (the Engine.IO suite and our heartbeat tests caught it). Each pong is delivered once more
// after delay, by when the timer is stored, unless another ping went out meanwhile;
// a second pong is harmless (it clears the timeout and restarts the interval).
//
// It is one connection's state: the connection tracker (conns.go) keeps one in each connection's
// state and feeds it from its own listeners; guardHeartbeat does it for engines it does not watch.
type heartbeat struct {
	pings atomic.Uint64
	// pingAt is when the last ping was created (Unix ns), 0 once a pong came: the engine starts
	// its ping timeout then and clears it on the pong (see overdue).
	pingAt atomic.Int64
}

// created notes a packet the engine created for the connection ("packetCreate").
func (hb *heartbeat) created(p *packet.Packet) {
	if p != nil && p.Type == packet.PING {
		hb.pings.Add(1)
		hb.pingAt.Store(time.Now().UnixNano())
	}
}

// received replays a pong the connection received ("packet") after delay.
func (hb *heartbeat) received(sock engine.Socket, p *packet.Packet, delay time.Duration) {
	if p == nil || p.Type != packet.PONG || p == replayedPong {
		return
	}
	hb.pingAt.Store(0)
	n := hb.pings.Load()
	time.AfterFunc(delay, func() {
		if hb.pings.Load() == n && sock.ReadyState() == "open" {
			sock.Transport().Emit("packet", replayedPong)
		}
	})
}

// overdue reports whether a ping went unanswered for timeout: the engine's ping timeout has
// passed, whether or not its timer has fired yet.
func (hb *heartbeat) overdue(timeout time.Duration) bool {
	at := hb.pingAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) >= timeout
}

// pingWatch lets a long-polling transport end a session whose ping timeout has passed before
// it serves the session's next GET. The engine's timer closes such a session a moment later,
// but a GET read in that moment was answered as if the session lived (Node's event loop runs
// expired timers before it reads requests; the Engine.IO suite's "closes the session upon ping
// timeout" polls exactly when the timeout ends, and failed about 1 run in 20).
type pingWatch struct {
	hb      *heartbeat
	timeout time.Duration
	sock    engine.Socket
}

// expired closes the session as the engine's timer would when its ping timeout has passed.
func (w *pingWatch) expired() bool {
	if !w.hb.overdue(w.timeout) {
		return false
	}
	if s, ok := w.sock.(interface{ OnClose(string, ...error) }); ok {
		s.OnClose("ping timeout")
	}
	return true
}

// watchPings gives a session that starts on long-polling its pingWatch.
func watchPings(sock engine.Socket, hb *heartbeat, timeout time.Duration) {
	if p, ok := sock.Transport().(*polling); ok {
		p.pings.Store(&pingWatch{hb: hb, timeout: timeout, sock: sock})
	}
}

// guardHeartbeat guards the heartbeat of every connection of an engine the connection tracker
// does not watch (the conformance mode's bare Engine.IO server).
func guardHeartbeat(eng engine.BaseServer, delay, pingTimeout time.Duration) {
	_ = eng.On("connection", func(args ...any) {
		sock, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		hb := &heartbeat{}
		watchPings(sock, hb, pingTimeout)
		_ = sock.On("packetCreate", func(args ...any) {
			p, _ := args[0].(*packet.Packet)
			hb.created(p)
		})
		_ = sock.On("packet", func(args ...any) {
			p, _ := args[0].(*packet.Packet)
			hb.received(sock, p, delay)
		})
	})
}
