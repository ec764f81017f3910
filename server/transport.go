package server

import (
	"errors"
	"io"
	"net"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/queue"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// websocketBuilder is the library's websocket transport with our writer: a write deadline, and
// one prepared frame per broadcast shared by every recipient (frames.go).
//
// The library writes without a deadline: a client that stops reading blocks its writer goroutine
// until the TCP send buffer drains, which a heartbeat only ends after ping interval + ping
// timeout, and a client that keeps answering pings while not reading never. With the deadline a
// write that blocks longer than timeout fails, and the library closes the connection
// ("transport error").
type websocketBuilder struct {
	transports.WebSocketBuilder
	timeout  time.Duration
	timedOut func() // called once per connection dropped by the deadline
	frames   *frameCache
}

// New implements transports.TransportCtor.
func (b *websocketBuilder) New(ctx *types.HttpContext) transports.Transport {
	w := &deadlineWebsocket{
		Websocket: transports.NewWebSocket(ctx),
		conn:      ctx.Websocket,
		timeout:   b.timeout,
		frames:    b.frames,
		writes:    queue.New(),
	}
	// The library's reader emits "close" on the connection on every way out, and Close emits it.
	_ = w.conn.Once("close", func(...any) { w.writes.TryClose() })
	if b.timedOut != nil {
		_ = w.On("error", func(args ...any) {
			if len(args) > 0 && isTimeout(args[0]) {
				b.timedOut()
			}
		})
	}
	return w
}

// deadlineWebsocket keeps the library's websocket transport (handshake, reader, close) and
// replaces its writer. The library's writer builds a gorilla PreparedMessage per recipient of a
// broadcast although the frame was encoded once (22% of fan-out CPU plus most of its GC); ours
// takes the shared one from frames. Everything else is what the library's send does: one batch at
// a time on a write queue, the same error routing, and "drain", writable, "ready" after each batch.
type deadlineWebsocket struct {
	transports.Websocket
	conn    *types.WebSocketConn
	timeout time.Duration
	frames  *frameCache // nil: a prepared message per recipient, as the library does
	writes  *queue.Queue
}

// Send implements transports.Transport. The engine calls it only while the transport is writable,
// that is when the previous batch has been written.
func (w *deadlineWebsocket) Send(packets []*packet.Packet) {
	w.SetWritable(false)
	w.writes.Enqueue(func() { w.send(packets) })
}

// send writes one batch; it runs on the write queue only.
func (w *deadlineWebsocket) send(packets []*packet.Packet) {
	defer func() {
		w.Emit("drain")
		w.SetWritable(true)
		w.Emit("ready")
	}()
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	deflate := w.PerMessageDeflate()
	for _, p := range packets {
		compress := true
		if p.Options != nil {
			if p.Options.Compress != nil && !*p.Options.Compress {
				compress = false
			}
			if deflate == nil && p.Options.WsPreEncodedFrame != nil {
				pm, err := w.frames.prepared(p.Options.WsPreEncodedFrame)
				if err == nil {
					err = w.conn.WritePreparedMessage(pm)
				}
				if err != nil {
					w.fail(err)
					return
				}
				continue
			}
		}
		data, err := w.Parser().EncodePacket(p, w.SupportsBinary())
		if err != nil {
			w.fail(err)
			return
		}
		if deflate != nil && data.Len() < deflate.Threshold {
			compress = false
		}
		if err := w.write(data, compress); err != nil {
			w.fail(err)
			return
		}
	}
}

// write sends one encoded packet as one message.
func (w *deadlineWebsocket) write(data types.BufferInterface, compress bool) error {
	w.conn.EnableWriteCompression(compress)
	mt := ws.BinaryMessage
	if _, ok := data.(*types.StringBuffer); ok {
		mt = ws.TextMessage
	}
	wr, err := w.conn.NextWriter(mt)
	if err != nil {
		return err
	}
	if _, err := io.Copy(wr, data); err != nil {
		_ = wr.Close()
		return err
	}
	return wr.Close()
}

// fail routes a write error as the library's websocket transport does: a closed connection
// closes the transport, anything else (a deadline) is a transport error.
func (w *deadlineWebsocket) fail(err error) {
	if ws.IsUnexpectedCloseError(err) || errors.Is(err, net.ErrClosed) {
		w.conn.Emit("close")
	} else {
		w.conn.Emit("error", err)
	}
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
