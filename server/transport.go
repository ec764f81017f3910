package server

import (
	"errors"
	"net"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// websocketBuilder is the library's websocket transport with a write deadline. The library writes
// without one: a client that stops reading blocks its writer goroutine until the TCP send buffer
// drains, which a heartbeat only ends after ping interval + ping timeout, and a client that keeps
// answering pings while not reading never. With the deadline a write that blocks longer than
// timeout fails, and the library closes the connection ("transport error").
type websocketBuilder struct {
	transports.WebSocketBuilder
	timeout  time.Duration
	timedOut func() // called once per connection dropped by the deadline
}

// New implements transports.TransportCtor.
func (b *websocketBuilder) New(ctx *types.HttpContext) transports.Transport {
	w := &deadlineWebsocket{Websocket: transports.NewWebSocket(ctx), conn: ctx.Websocket, timeout: b.timeout}
	if b.timedOut != nil {
		_ = w.On("error", func(args ...any) {
			if len(args) > 0 && isTimeout(args[0]) {
				b.timedOut()
			}
		})
	}
	return w
}

// deadlineWebsocket sets the deadline of each batch of packets before handing it to the
// library's writer.
type deadlineWebsocket struct {
	transports.Websocket
	conn    *types.WebSocketConn
	timeout time.Duration
}

// Send implements transports.Transport. The engine calls it only while the transport is writable,
// that is when the previous batch has been written, so the deadline is never moved under a write
// in progress.
func (w *deadlineWebsocket) Send(packets []*packet.Packet) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	w.Websocket.Send(packets)
}

// isTimeout reports whether v (a transport error) was caused by a deadline.
func isTimeout(v any) bool {
	err, ok := v.(error)
	if !ok {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
