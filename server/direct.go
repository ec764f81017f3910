package server

import (
	"sync/atomic"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// directWriter is the memory adapter's way past the engine for broadcasts (adapters.Direct): the
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
func directWriter(encoded []byte, volatile bool) func(*socket.Socket) bool {
	frame := appendFrame(make([]byte, 0, len(encoded)+10), ws.TextMessage, encoded)
	return func(sock *socket.Socket) bool { return writeDirect(sock, frame, volatile) }
}

// writeDirect writes a websocket frame to sock's connection past the engine, when nothing waits
// in the engine's buffer for it and our transport can take it at once (see directWriter); false: it
// must go the library's way.
func writeDirect(sock *socket.Socket, frame []byte, volatile bool) bool {
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

// ackEncoder encodes acks; the library's encoder keeps no state.
var ackEncoder = parser.NewEncoder()

// directAck is the acknowledgement of event packet id of sock, what the library's
// Socket.ack(id) does (once, and only while the socket is connected), with the ack written past
// the engine like a broadcast when it can be (see writeDirect), else handed to the engine as the
// library does. gatedDecoder.Add gives it to the events it decodes (see there).
func directAck(sock *socket.Socket, nsp string, id uint64) socket.Ack {
	var sent atomic.Bool
	return func(args []any, _ error) {
		if sent.Swap(true) || !sock.Connected() {
			return
		}
		encoded := ackEncoder.Encode(&parser.Packet{Type: parser.ACK, Nsp: nsp, Id: &id, Data: args})
		if len(encoded) == 1 {
			if p, ok := encoded[0].(*types.StringBuffer); ok {
				b := p.Bytes()
				frame := make([]byte, 0, len(b)+11)
				frame = appendFrameHeader(frame, ws.TextMessage, len(b)+1)
				frame = append(append(frame, '4'), b...)
				if writeDirect(sock, frame, false) {
					return
				}
			}
		}
		client := sock.Client()
		if client.Conn().ReadyState() != "open" {
			return
		}
		client.WriteToEngine(encoded, &socket.WriteOptions{})
	}
}
