package engineio

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// wsTransport is one websocket connection: the session's transport once it is upgraded (or from
// the start for a websocket-only client), or the probe of an upgrade in progress.
//
// Writes are made from the sending goroutine, with non-blocking write/writev system calls of
// frames built once (see Message), under the session's lock, so the wire order is the order of
// Conn.Send calls. What the kernel does not take at once (a client that reads slowly) is queued
// and written by a flusher goroutine with blocking writes under the write deadline; whatever is
// sent meanwhile queues behind it. Reads are made by the poller (poller_*.go) under rmu.
type wsTransport struct {
	c   *Conn
	nc  net.Conn
	raw syscall.RawConn

	// Guarded by c.mu.
	queue    [][]byte // frames, or what is left of them, waiting for the flusher
	queued   int      // bytes in queue
	flushing bool     // the flusher goroutine owns the write side
	dead     bool     // closed: nothing more is written
	closing  bool     // a close frame is out: the connection closes once the client answers
	probe    probeState

	// The read side, guarded by rmu.
	rmu sync.Mutex
	fr  frameReader

	// The poller's bookkeeping (poller_linux.go).
	loop *pollLoop
	slot int32
}

// probeState is where a websocket is in the upgrade of a long-polling session.
type probeState uint8

const (
	probeNone     probeState = iota // the session's own transport
	probeWaiting                    // waiting for "2probe"
	probeAnswered                   // "3probe" sent, waiting for "5"
)

var (
	errClosed    = errors.New("engineio: connection closed")
	errSlow      = errors.New("engineio: write buffer limit reached")
	errHandshake = errors.New("engineio: bad websocket handshake")
)

// websocketGUID is the key suffix of RFC 6455 §1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// checkWebsocketHandshake validates the client's opening handshake (RFC 6455 §4.2.1) and returns
// its Sec-WebSocket-Accept value.
func checkWebsocketHandshake(r *http.Request) (string, error) {
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!headerHasToken(r.Header, "Upgrade", "websocket") || r.Header.Get("Sec-Websocket-Version") != "13" {
		return "", errHandshake
	}
	key := r.Header.Get("Sec-Websocket-Key")
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return "", errHandshake
	}
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(websocketGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// isWebsocketUpgrade reports whether r asks for a websocket.
func isWebsocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h[http.CanonicalHeaderKey(name)] {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// acceptWebsocket hijacks w's connection and answers the handshake with 101, followed in the same
// write by first (the open packet of a new session), if any.
func acceptWebsocket(w http.ResponseWriter, accept string, first *Message) (net.Conn, []byte, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("engineio: the response writer cannot hijack")
	}
	nc, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	var early []byte
	if n := rw.Reader.Buffered(); n > 0 { // frames the client sent right behind its handshake
		early, _ = rw.Reader.Peek(n)
		early = append([]byte(nil), early...)
	}
	b := make([]byte, 0, 160+HeaderRoom+64)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = append(b, accept...)
	b = append(b, "\r\n\r\n"...)
	if first != nil {
		b = append(b, first.frame...)
	}
	_ = nc.SetDeadline(time.Now().Add(handshakeWriteTimeout))
	_, err = nc.Write(b)
	_ = nc.SetDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, early, nil
}

// handshakeWriteTimeout bounds the write of the 101 answer, which a fresh socket's buffer takes at
// once unless the client is gone.
const handshakeWriteTimeout = 5 * time.Second

// acceptTransport answers a checked handshake (acceptWebsocket, with first) and wraps the
// websocket as a transport of session c, returning it with the bytes the client sent behind its
// handshake; nil when the connection failed, which leaves nothing to answer.
func acceptTransport(c *Conn, w http.ResponseWriter, accept string, first *Message, probe probeState) (*wsTransport, []byte) {
	nc, early, err := acceptWebsocket(w, accept, first)
	if err != nil {
		return nil, nil
	}
	wt, err := newWSTransport(c, nc, probe)
	if err != nil {
		nc.Close()
		return nil, nil
	}
	return wt, early
}

// newWSTransport wraps an accepted websocket of session c.
func newWSTransport(c *Conn, nc net.Conn, probe probeState) (*wsTransport, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, errors.New("engineio: connection has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &wsTransport{c: c, nc: nc, raw: raw, probe: probe}
	w.fr.max = int(c.srv.cfg.MaxPayload)
	return w, nil
}

// start feeds the bytes read with the handshake, then hands the connection to the poller.
func (w *wsTransport) start(early []byte) error {
	if len(early) > 0 {
		w.rmu.Lock()
		err := w.fr.feed(early, w.onFrame)
		w.rmu.Unlock()
		if err != nil {
			w.readFailed(err)
			return err
		}
	}
	return w.c.srv.poller.add(w)
}

// write sends msgs now when nothing is waiting, else queues them behind what is. The caller holds
// w.c.mu.
func (w *wsTransport) write(msgs []*Message) error {
	if w.dead || w.closing {
		return errClosed
	}
	if w.flushing || len(w.queue) > 0 {
		for _, m := range msgs {
			w.enqueue(m.frame)
		}
		return w.checkQueue()
	}
	var frames [8][]byte
	var err error
	for len(msgs) > 0 {
		k := 0
		for k < len(frames) && len(msgs) > 0 {
			frames[k] = msgs[0].frame
			msgs = msgs[1:]
			k++
		}
		rest, werr := w.writeNow(frames[:k])
		if werr != nil {
			return werr
		}
		if len(rest) > 0 {
			for _, f := range rest {
				w.enqueue(f)
			}
			for _, m := range msgs {
				w.enqueue(m.frame)
			}
			err = w.checkQueue()
			w.startFlusher()
			return err
		}
	}
	return nil
}

// writeRaw is write for frames of the transport's own (control frames).
func (w *wsTransport) writeRaw(frame []byte) error {
	if w.dead {
		return errClosed
	}
	if w.flushing || len(w.queue) > 0 {
		w.enqueue(frame)
		return nil
	}
	rest, err := w.writeNow([][]byte{frame})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		w.enqueue(rest[0])
		w.startFlusher()
	}
	return nil
}

func (w *wsTransport) enqueue(frame []byte) {
	w.queue = append(w.queue, frame)
	w.queued += len(frame)
}

func (w *wsTransport) checkQueue() error {
	if lim := w.c.srv.cfg.MaxWriteBuffer; lim > 0 && w.queued > lim {
		return errSlow
	}
	return nil
}

// writeNow writes frames without blocking and returns what the kernel did not take.
func (w *wsTransport) writeNow(frames [][]byte) ([][]byte, error) {
	var err error
	cerr := w.raw.Control(func(fd uintptr) { frames, _, err = writeAll(int(fd), frames) })
	if cerr != nil {
		return nil, cerr
	}
	return frames, err
}

// writeAll writes frames until all are written, the kernel takes no more (again), or an error.
// It returns what is left.
func writeAll(fd int, frames [][]byte) (rest [][]byte, again bool, err error) {
	for len(frames) > 0 {
		n, err := writev(fd, frames)
		frames = consumed(frames, n)
		switch {
		case err == syscall.EINTR:
		case err != nil && isAgain(err):
			return frames, true, nil
		case err != nil:
			return frames, false, err
		}
	}
	return nil, false, nil
}

// consumed drops the first n bytes of frames.
func consumed(frames [][]byte, n int) [][]byte {
	for len(frames) > 0 && n >= len(frames[0]) {
		n -= len(frames[0])
		frames = frames[1:]
	}
	if len(frames) > 0 && n > 0 {
		frames[0] = frames[0][n:]
	}
	return frames
}

func (w *wsTransport) startFlusher() {
	if !w.flushing {
		w.flushing = true
		go w.flush()
	}
}

// flush writes the queue with blocking writes until it is empty, under the write deadline.
func (w *wsTransport) flush() {
	c := w.c
	timeout := c.srv.cfg.WriteTimeout
	for {
		c.mu.Lock()
		if w.dead || len(w.queue) == 0 {
			w.flushing = false
			closing := w.closing && !w.dead
			c.mu.Unlock()
			if closing {
				w.afterCloseFrame()
			}
			return
		}
		frames := w.queue
		w.queue, w.queued = nil, 0
		c.mu.Unlock()

		if timeout > 0 {
			_ = w.nc.SetWriteDeadline(time.Now().Add(timeout))
		}
		var werr error
		err := w.raw.Write(func(fd uintptr) bool {
			var again bool
			frames, again, werr = writeAll(int(fd), frames)
			return !again // false: wait until the socket is writable, then call again
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			reason := ReasonTransportError
			if errors.Is(err, errDeadline) {
				c.srv.cfg.onWriteTimeout()
			}
			c.mu.Lock()
			w.flushing = false
			c.mu.Unlock()
			c.closeWith(reason, false)
			w.shutdown() // a probe is no session's transport: close it here
			return
		}
	}
}

// readable reads what the client sent, up to a budget, and handles its frames. It reports
// whether more may be waiting (the budget ran out). scratch is the poller's buffer; nil takes a
// pooled one.
func (w *wsTransport) readable(scratch []byte) bool {
	if scratch == nil {
		b := getReadBuf()
		defer putReadBuf(b)
		scratch = *b
	}
	w.rmu.Lock()
	defer w.rmu.Unlock()
	for budget := maxReadBudget; budget > 0; {
		var n int
		var err error
		if cerr := w.raw.Control(func(fd uintptr) { n, err = readNB(int(fd), scratch) }); cerr != nil {
			return false // closed
		}
		switch {
		case err == nil && n == 0:
			w.readFailed(errEOF)
			return false
		case err == syscall.EINTR:
			continue
		case err != nil && isAgain(err):
			return false
		case err != nil:
			w.readFailed(err)
			return false
		}
		if ferr := w.fr.feed(scratch[:n], w.onFrame); ferr != nil {
			w.readFailed(ferr)
			return false
		}
		if n < len(scratch) {
			// A short read took all the kernel had: with edge-triggered readiness, bytes that
			// come later raise a new edge, so the read that would only say EAGAIN is saved (as
			// libuv saves it).
			return false
		}
		budget -= n
	}
	return true
}

var errEOF = errors.New("engineio: connection closed by the client")

// errStop stops frame decoding once the connection is being closed.
var errStop = errors.New("engineio: stop reading")

// onFrame handles one frame from the client; the caller holds rmu.
func (w *wsTransport) onFrame(op byte, payload []byte) error {
	switch op {
	case opText:
		p, err := decodeText(payload)
		if err != nil {
			return err
		}
		return w.onPacket(p)
	case opBinary:
		return w.onPacket(packet{typ: PacketMessage, data: payload, binary: true})
	case opPing:
		w.c.mu.Lock()
		err := w.writeRaw(append([]byte{0x80 | opPong, byte(len(payload))}, payload...))
		w.c.mu.Unlock()
		return err
	case opPong:
		return nil
	default: // opClose
		return errClientClose
	}
}

var errClientClose = errors.New("engineio: websocket closed by the client")

// onPacket handles one Engine.IO packet from this websocket.
func (w *wsTransport) onPacket(p packet) error {
	c := w.c
	c.mu.Lock()
	probe := w.probe
	c.mu.Unlock()
	switch probe {
	case probeWaiting:
		if p.typ != PacketPing || string(p.data) != "probe" {
			return errBadProbe
		}
		c.probed(w)
		return nil
	case probeAnswered:
		if p.typ != PacketUpgrade {
			return errBadProbe
		}
		if !c.upgrade(w) {
			return errStop
		}
		return nil
	}
	if !c.deliver(p) {
		c.mu.Lock()
		closing := w.closing
		c.mu.Unlock()
		if closing {
			// The close frame is out: what the client sent meanwhile is read and dropped until
			// it answers (closeLinger at most). Closing with its bytes unread would reset the
			// connection, and the client would lose the frames written before the close.
			return nil
		}
		return errStop
	}
	return nil
}

var errBadProbe = errors.New("engineio: unexpected packet during the upgrade")

// readFailed ends the websocket after a read error, a protocol violation or the client's close.
func (w *wsTransport) readFailed(err error) {
	c := w.c
	c.mu.Lock()
	isProbe := w.probe != probeNone
	closing := w.closing
	c.mu.Unlock()
	if closing || errors.Is(err, errStop) {
		w.shutdown()
		return
	}
	var fe *frameError
	switch {
	case errors.As(err, &fe):
		w.sendClose(fe.code)
	case errors.Is(err, errClientClose):
		w.sendClose(closeNormal)
	}
	if isProbe {
		c.probeFailed(w)
		w.shutdown()
		return
	}
	reason := ReasonTransportError
	switch {
	case errors.Is(err, errEOF), errors.Is(err, errClientClose):
		reason = ReasonTransportClose
	case errors.Is(err, errBadPacket):
		reason = ReasonParseError
	}
	c.closeWith(reason, false)
	w.shutdown()
}

// sendClose writes a close frame if nothing stops it.
func (w *wsTransport) sendClose(code int) {
	w.c.mu.Lock()
	_ = w.writeRaw(closeFrame(code))
	w.c.mu.Unlock()
}

// closeGracefully sends a close frame behind what is queued; the connection ends when the client
// answers it, or after closeLinger. The caller holds c.mu.
func (w *wsTransport) closeGracefully() {
	if w.dead || w.closing {
		return
	}
	_ = w.writeRaw(closeFrame(closeNormal))
	w.closing = true
	if !w.flushing {
		go w.afterCloseFrame()
	}
}

// closeLinger is how long a connection whose close frame is out waits for the client's answer.
const closeLinger = 2 * time.Second

// afterCloseFrame half-closes the connection once the close frame is written and waits for the
// client to close its side (the poller sees the end), at most closeLinger. Closing at once could
// reset the connection and lose the last frames in the client's receive buffer.
func (w *wsTransport) afterCloseFrame() {
	if tc, ok := w.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	time.AfterFunc(closeLinger, w.shutdown)
}

// shutdown closes the connection at once; it is safe to call more than once.
func (w *wsTransport) shutdown() {
	w.c.mu.Lock()
	if w.dead {
		w.c.mu.Unlock()
		return
	}
	w.dead = true
	w.queue, w.queued = nil, 0
	w.c.mu.Unlock()
	w.c.srv.poller.remove(w)
	_ = w.nc.Close()
}

// inputPending drains what the client has sent so far, so that a packet the client sent before
// another request is handled first; it reports nothing.
func (w *wsTransport) inputPending() {
	for w.readable(nil) {
	}
}

var readBufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func getReadBuf() *[]byte  { return readBufPool.Get().(*[]byte) }
func putReadBuf(b *[]byte) { readBufPool.Put(b) }
