package server

import (
	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// direct is the memory adapter's way past the engine for broadcasts (adapters.Direct): the
// frame of a broadcast is built once and written by our websocket transport to each recipient
// whose engine buffer is empty, instead of a packet per recipient through the client's
// WriteToEngine, the engine's sendPacket and flush, and their six events (about a quarter of the
// server's CPU per fan-out delivery in the profiles: bench/OPTIMISATION.md).
//
// Order is kept: a packet accepted for a connection before this broadcast is either in the
// transport already (the frame queues behind it) or still in the engine's buffer, and then the
// recipient gets the broadcast the library's way, behind it. The engine's flush takes its buffer
// under a lock and the sender of a packet waits for that lock, so a packet whose sender has
// returned is never between the two.
func (s *Server) direct(encoded []byte, volatile bool) func(*socket.Socket) bool {
	frame := appendFrame(make([]byte, 0, len(encoded)+10), ws.TextMessage, encoded)
	return func(sock *socket.Socket) bool {
		conn := sock.Conn()
		w, ok := conn.Transport().(*deadlineWebsocket)
		if !ok || conn.ReadyState() != "open" {
			return false
		}
		if st := w.state.Load(); st == nil || !st.idle() {
			return false
		}
		return w.sendShared(frame, volatile)
	}
}
