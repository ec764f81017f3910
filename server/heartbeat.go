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

// guardHeartbeat works around a race in the library's heartbeat (servers/engine v3.0.6,
// socket.schedulePing): the ping is written first and its timeout timer stored afterwards, so a
// client that answers fast enough has its pong clear the previous (or no) timer, and the new
// timer then closes a healthy session with "ping timeout". It happens on loopback and under load
// (the Engine.IO suite and our heartbeat tests caught it). Each pong is delivered once more
// after delay, by when the timer is stored, unless another ping went out meanwhile;
// a second pong is harmless (it clears the timeout and restarts the interval).
func guardHeartbeat(eng engine.BaseServer, delay time.Duration) {
	_ = eng.On("connection", func(args ...any) {
		sock, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		var pings atomic.Uint64
		_ = sock.On("packetCreate", func(args ...any) {
			if p, ok := args[0].(*packet.Packet); ok && p.Type == packet.PING {
				pings.Add(1)
			}
		})
		_ = sock.On("packet", func(args ...any) {
			p, ok := args[0].(*packet.Packet)
			if !ok || p.Type != packet.PONG || p == replayedPong {
				return
			}
			n := pings.Load()
			time.AfterFunc(delay, func() {
				if pings.Load() == n && sock.ReadyState() == "open" {
					sock.Transport().Emit("packet", replayedPong)
				}
			})
		})
	})
}
