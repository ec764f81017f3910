package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/queue"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// websocketBuilder is the library's websocket transport with our writer (see deadlineWebsocket):
// frames written straight to the socket from the sending goroutine when the kernel takes them,
// one encoded frame per broadcast shared by every recipient (frames.go), and a write deadline.
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
	warm     *warmPool // a fresh reader's first message is handled on it (wsread.go)
	upgrades *upgrades // set by engineTransports
}

// New implements transports.TransportCtor. It does what the library's websocket transport does
// when it is constructed (transports/websocket.go, Construct), with our reader and writer.
func (b *websocketBuilder) New(ctx *types.HttpContext) transports.Transport {
	w := &deadlineWebsocket{
		Transport:   transports.MakeTransport(),
		conn:        ctx.Websocket,
		net:         ctx.Websocket.NetConn(),
		idleTimeout: ctx.IdleTimeout,
		timeout:     b.timeout,
		timedOut:    b.timedOut,
		frames:      b.frames,
		warm:        b.warm,
		upgrades:    b.upgrades,
		upgradeSid:  ctx.Query().Peek("sid"),
		writes:      queue.New(),
	}
	w.upgrading = w.upgradeSid != ""
	w.Prototype(w)
	w.Transport.Construct(ctx)
	if c, ok := w.net.(*wsConn); ok {
		w.gate, w.net, w.raw = c, c.Conn, c.raw
		if w.upgrading {
			c.got = &w.reading // until the upgrade packet is handled (message)
		}
		c.idleTimeout = ctx.IdleTimeout
	} else if sc, ok := w.net.(syscall.Conn); ok {
		w.raw, _ = sc.SyscallConn()
	}
	// gorilla answers a client's ping and close frames itself, through its own writer; ours
	// writes the data frames, so the answers go through ours too and never land inside a frame
	// the kernel took only part of.
	w.conn.SetPingHandler(func(data string) error {
		w.control(ws.PongMessage, []byte(data))
		return nil
	})
	w.conn.SetCloseHandler(func(code int, _ string) error {
		w.control(ws.CloseMessage, ws.FormatCloseMessage(code, ""))
		return nil
	})
	_ = w.conn.On("error", func(args ...any) {
		err, _ := firstArg(args).(error)
		w.OnError("websocket error", err)
	})
	// The reader emits "close" on the connection on every way out, and Close emits it.
	_ = w.conn.Once("close", func(...any) { w.OnClose() })
	w.SetWritable(true)
	w.SetPerMessageDeflate(nil)
	transports.StartReader(w, ctx.TransportReadPermission(), w.read) // wsread.go
	return w
}

// deadlineWebsocket is the library's websocket transport (transports/websocket.go) on the
// library's base transport, with our reader (wsread.go) and writer.
//
// The library's writer hands every batch to a write queue, which starts a goroutine for it, and
// writes through gorilla, building a PreparedMessage per recipient of a broadcast although the
// frame was encoded once. Ours writes a batch on the goroutine that sends it (the engine calls
// Send from its flush), with non-blocking system calls: what the kernel takes at once is done,
// with no goroutine, lock handoff or deadline; a broadcast to N sockets is N writes of one shared
// frame, as Node's is. Only what the kernel does not take (a client that reads slowly) goes to a
// writer goroutine, which writes it with blocking calls under the write deadline; frames sent
// meanwhile queue behind it, so the order on the wire is the order of Send.
//
// The engine's contract is kept: Send is called only while the transport is writable; the
// transport emits "drain" when a batch is written and is writable again after it. A batch written
// at once completes inside Send, before the engine's flush returns, so "ready" (which makes the
// engine flush again) is not needed then: anything queued meanwhile is flushed by its own sender,
// who waits for the engine's flush lock. A batch left to the writer goroutine completes as the
// library's does: "drain", writable, "ready".
type deadlineWebsocket struct {
	transports.Transport
	conn        *types.WebSocketConn
	net         net.Conn        // the TCP connection, for writes
	gate        *wsConn         // what gorilla reads through; nil: it reads net
	raw         syscall.RawConn // nil: every write goes to the writer goroutine
	idleTimeout time.Duration   // read deadline per message when gate is nil, as the library's reader sets it
	timeout     time.Duration
	timedOut    func() // see websocketBuilder; called from fail, not from an "error" listener (one fewer per connection)
	frames      *frameCache
	warm        *warmPool
	upgrades    *upgrades
	upgradeSid  string      // the session this websocket would upgrade; "" for a new session
	reading     atomic.Bool // while upgrading: the client's next message is being read or handled (upgrade.go, inputPending)
	// upgrading is set while this websocket may still take its session over (upgradeSid, until
	// the upgrade packet is handled): only then is reading kept. Reader goroutine only.
	upgrading bool
	writes    *queue.Queue

	// state is the engine connection's tracker state (conns.go), set once the tracker watches
	// the connection or the upgrade to this transport: broadcasts are written here directly
	// (direct.go) only while nothing waits in the engine's buffer.
	state atomic.Pointer[connState]

	mu      sync.Mutex
	pending [][]byte // frames (or the rest of one) the writer goroutine has yet to write, in order
	busy    bool     // the writer goroutine owns the connection's write side
	owed    bool     // a Send's batch is in pending: its completion is the writer's to emit
	failed  error    // the first write error; nothing is written after it
}

// Name implements transports.Transport.
func (w *deadlineWebsocket) Name() string { return transports.WEBSOCKET }

// HandlesUpgrades implements transports.Transport.
func (w *deadlineWebsocket) HandlesUpgrades() bool { return true }

// OnClose implements transports.Transport: every way the connection closes ends here (the
// connection's "close"), and releases the writer and the connection.
func (w *deadlineWebsocket) OnClose() {
	if w.upgradeSid != "" {
		w.upgrades.settled(w.upgradeSid)
	}
	w.writes.TryClose()
	w.Transport.OnClose()
	_ = w.conn.Close()
}

// DoClose implements transports.Transport.
func (w *deadlineWebsocket) DoClose(fn types.Callable) {
	w.writes.TryClose()
	defer func() { _ = w.conn.Close() }()
	if fn != nil {
		fn()
	}
}

// Send implements transports.Transport.
func (w *deadlineWebsocket) Send(packets []*packet.Packet) {
	w.SetWritable(false)
	if w.PerMessageDeflate() != nil {
		// Compression is the library's and gorilla's business; it is off unless configured.
		w.writes.Enqueue(func() { w.sendCompressed(packets) })
		return
	}
	frames, encErr := w.encode(packets)

	w.mu.Lock()
	done := false // the batch is complete now: written, or nowhere left to write it
	switch {
	case w.failed != nil:
		done = true // the connection is going away; what is sent now cannot arrive
	case encErr != nil:
		w.handOff(w.pending, encErr)
	case w.busy:
		w.pending = append(w.pending, frames...)
	default:
		done = w.writeNow(frames)
	}
	if !done {
		w.owed = true // the writer goroutine completes it
	}
	w.mu.Unlock()
	if done {
		w.Emit("drain")
		w.SetWritable(true)
	}
}

// writeNow writes what the kernel takes of frames at once and hands the rest, or the write's
// error, to the writer goroutine; true when all was written. w.mu is held, the writer goroutine
// does not own the connection, and nothing has failed yet.
func (w *deadlineWebsocket) writeNow(frames [][]byte) bool {
	rest, err := w.tryWrite(frames)
	if err == nil && len(rest) == 0 {
		return true
	}
	w.handOff(rest, err)
	return false
}

// handOff gives the writer goroutine the connection's write side, with frames to write or err to
// report. w.mu is held.
func (w *deadlineWebsocket) handOff(frames [][]byte, err error) {
	w.busy, w.pending, w.failed = true, frames, err
	w.writes.Enqueue(w.writePending) // the queue runs it on its own goroutine, never here
}

// adopt gives a transport of ours its connection's tracker state.
func adopt(tr transports.Transport, st *connState) {
	if w, ok := tr.(*deadlineWebsocket); ok {
		w.state.Store(st)
	}
}

// sendShared writes a broadcast's frame outside the engine's Send (direct.go), in order with
// everything written before it. It reports false, writing nothing, when the frame must take the
// engine's way instead: the connection compresses, or the writer goroutine owns the connection
// (a client reading slowly: the engine's buffer then holds the frames, within its bound). A
// volatile frame is dropped then instead, as the library drops it for a busy transport. The
// transport's writable state and events are the engine's Send's and are not touched: what the
// kernel does not take at once goes to the writer goroutine, owing nothing.
func (w *deadlineWebsocket) sendShared(frame []byte, volatile bool) bool {
	if w.PerMessageDeflate() != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.failed != nil:
		return true // the connection is going away; what is sent now cannot arrive
	case w.busy:
		return volatile
	}
	w.writeNow([][]byte{frame})
	return true
}

// control writes a control frame (gorilla's answer to a client's ping or close), in order with the
// data frames. It runs on the reader goroutine (wsread.go).
func (w *deadlineWebsocket) control(opcode int, payload []byte) {
	if w.PerMessageDeflate() != nil {
		_ = w.conn.WriteControl(opcode, payload, time.Now().Add(w.timeout))
		return
	}
	frame := appendFrame(nil, opcode, payload)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.failed != nil:
	case w.busy:
		w.pending = append(w.pending, frame)
	default:
		w.writeNow([][]byte{frame})
	}
}

// writePending is the writer goroutine: it writes pending frames with blocking calls under the
// deadline until none are left or a write fails, then completes the Send it owes.
func (w *deadlineWebsocket) writePending() {
	for {
		w.mu.Lock()
		frames, err := w.pending, w.failed
		w.pending = nil
		if len(frames) == 0 || err != nil {
			owed := w.owed
			w.busy, w.owed = false, false
			w.mu.Unlock()
			if err != nil {
				w.fail(err)
			}
			if owed {
				w.Emit("drain")
				w.SetWritable(true)
				w.Emit("ready")
			}
			return
		}
		w.mu.Unlock()
		if err := w.writeBlocking(frames); err != nil {
			w.mu.Lock()
			w.failed = err
			w.mu.Unlock()
		}
	}
}

// encode turns a batch into websocket frames: a broadcast's shared frame as it is, any other
// packet encoded by the engine's parser.
func (w *deadlineWebsocket) encode(packets []*packet.Packet) ([][]byte, error) {
	frames := make([][]byte, 0, len(packets))
	for _, p := range packets {
		if p.Options != nil && p.Options.WsPreEncodedFrame != nil {
			frames = append(frames, w.frames.frame(p.Options.WsPreEncodedFrame))
			continue
		}
		data, err := w.Parser().EncodePacket(p, w.SupportsBinary())
		if err != nil {
			return nil, err
		}
		frames = append(frames, encodeFrame(data))
	}
	return frames, nil
}

// tryWrite writes what the kernel takes without blocking and returns the rest (its first element
// may be the tail of a frame). w.mu is held: nothing else writes meanwhile.
func (w *deadlineWebsocket) tryWrite(frames [][]byte) ([][]byte, error) {
	if w.raw == nil {
		return frames, nil
	}
	if w.gate != nil && w.gate.answer.Load() != nil {
		answer, h := w.gate.takeAnswer()
		if h != nil {
			defer w.gate.answered(h) // once the answer is written or handed to the writer goroutine
			if answer != nil {
				frames = append([][]byte{answer}, frames...)
			}
		}
	}
	var werr error
	err := w.raw.Write(func(fd uintptr) bool {
		for len(frames) > 0 {
			n, err := writeFrames(int(fd), frames)
			switch { // writeFrames has retried EINTR
			case err == syscall.EAGAIN:
				return true
			case err != nil:
				werr = &net.OpError{Op: "write", Net: "tcp", Addr: w.net.RemoteAddr(), Err: err}
				return true
			case n == 0:
				return true
			}
			frames = consumed(frames, n)
		}
		return true
	})
	if err != nil {
		return frames, err
	}
	return frames, werr
}

// writeBlocking writes frames whatever it takes, up to the write deadline.
func (w *deadlineWebsocket) writeBlocking(frames [][]byte) error {
	if err := w.net.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
		return err
	}
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(w.net)
	return err
}

// sendCompressed is the library's writer, for connections with per-message deflate: one batch at
// a time on the write queue, through gorilla.
func (w *deadlineWebsocket) sendCompressed(packets []*packet.Packet) {
	defer func() {
		w.Emit("drain")
		w.SetWritable(true)
		w.Emit("ready")
	}()
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	deflate := w.PerMessageDeflate()
	for _, p := range packets {
		compress := p.Options == nil || p.Options.Compress == nil || *p.Options.Compress
		data, err := w.Parser().EncodePacket(p, w.SupportsBinary())
		if err != nil {
			w.fail(err)
			return
		}
		if data.Len() < deflate.Threshold {
			compress = false
		}
		if err := w.write(data, compress); err != nil {
			w.fail(err)
			return
		}
	}
}

// write sends one encoded packet as one message through gorilla.
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
// closes the transport, anything else (a deadline) is a transport error, and a write deadline is
// counted (timedOut).
func (w *deadlineWebsocket) fail(err error) {
	if w.timedOut != nil && !isClosing(err) && isTimeout(err) {
		w.timedOut()
	}
	w.failRead(err)
}

// failRead routes a read error (or a write error, for fail) as the library's websocket transport
// does.
func (w *deadlineWebsocket) failRead(err error) {
	if isClosing(err) {
		w.conn.Emit("close")
		return
	}
	w.conn.Emit("error", err)
}

// isClosing tells the errors of a connection that closed.
func isClosing(err error) bool {
	return ws.IsUnexpectedCloseError(err) || errors.Is(err, net.ErrClosed)
}

// firstArg is an event's first argument, nil if it has none.
func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
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
