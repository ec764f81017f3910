package server

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"sync"
)

// releaseAfterHijack lets net/http free what a request's response holds once the engine is done
// with it. The engine keeps the types.HttpContext of a session's first request for the whole
// connection (the engine socket's request), and with it the http.ResponseWriter: for a websocket,
// net/http's *response, its 2 KiB bufio.Writer and its *conn with the 4 KiB bufio.Reader and
// 4 KiB bufio.Writer, none of which serve the hijacked connection (gorilla's Upgrader has its own
// buffers, as the engine sets ReadBufferSize and WriteBufferSize); for a long-polling session,
// the finished *response of its handshake request, with its bufio.Writer and *conn. The engine
// gets a ResponseWriter that forgets net/http's after a successful Hijack or once the handler has
// returned (the engine's handler returns only when the response is complete); what it may still
// call on it afterwards answers as net/http's does on a hijacked connection or a finished
// response. The hijacked connection is handed over as a wsConn (wsread.go), which holds the
// handshake's answer until the first frame (heldAnswer) or, at the latest, until the handler
// returns.
func releaseAfterHijack(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &releasingWriter{rw: w}
		next.ServeHTTP(rw, r)
		if c := rw.release(); c != nil {
			c.sendAnswer()
		}
	})
}

// errResponseDone is what a released writer's Write answers once its handler has returned.
var errResponseDone = errors.New("server: write after the response was finished")

// releasingWriter is an http.ResponseWriter that drops net/http's after Hijack or release.
type releasingWriter struct {
	mu       sync.Mutex
	rw       http.ResponseWriter // nil once hijacked or released
	header   http.Header         // answered by Header afterwards
	ws       *wsConn             // the hijacked connection, until the handler returns
	hijacked bool
}

// release forgets net/http's writer once the handler has returned, and returns the hijacked
// connection, if any, whose held answer is now due.
func (w *releasingWriter) release() *wsConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.ws
	w.rw, w.ws = nil, nil
	return c
}

func (w *releasingWriter) writer() http.ResponseWriter {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rw
}

// Header implements http.ResponseWriter.
func (w *releasingWriter) Header() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rw != nil {
		return w.rw.Header()
	}
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// Write implements http.ResponseWriter.
func (w *releasingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	rw, hijacked := w.rw, w.hijacked
	w.mu.Unlock()
	switch {
	case rw != nil:
		return rw.Write(p)
	case hijacked:
		return 0, http.ErrHijacked
	default:
		return 0, errResponseDone
	}
}

// WriteHeader implements http.ResponseWriter.
func (w *releasingWriter) WriteHeader(code int) {
	if rw := w.writer(); rw != nil {
		rw.WriteHeader(code)
	}
}

// Flush implements http.Flusher.
func (w *releasingWriter) Flush() {
	if f, ok := w.writer().(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker.
func (w *releasingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rw == nil {
		return nil, nil, http.ErrHijacked
	}
	conn, brw, err := http.NewResponseController(w.rw).Hijack()
	if err != nil {
		return conn, brw, err
	}
	w.rw, w.hijacked = nil, true
	if c := newWSConn(conn); c != nil {
		c.answer.Store(new(heldAnswer))
		w.ws = c
		return c, brw, nil // gorilla reads through it, see wsread.go
	}
	return conn, brw, nil
}

// heldAnswer is a websocket handshake's answer (gorilla's "101 Switching Protocols", the first
// Write on the hijacked connection), kept to go out in one write with what follows it: the engine
// writes its open packet right after the upgrade, on the same goroutine, so a new connection
// costs one system call and one TCP segment fewer. Nothing waits on it: the transport's reader
// before its first wait, a blocking read through gorilla (the client must have the answer first),
// Close, and the handler's return send it if nothing else did.
//
// Every write of the connection takes the answer first (wsConn.takeAnswer, until it is gone);
// mu is held until the answer is written, so nothing overtakes it.
type heldAnswer struct {
	mu   sync.Mutex
	b    []byte // the answer, until it is written
	kept bool   // the first Write was kept
}

// keep keeps p if it is the connection's first write.
func (h *heldAnswer) keep(p []byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kept {
		return false
	}
	h.b, h.kept = bytes.Clone(p), true
	return true
}

// takeAnswer returns the held answer, to be written before anything else, and what to pass to
// answered once it is (nil: no answer is held, write as usual). The answer may be nil: nothing
// was kept.
func (c *wsConn) takeAnswer() ([]byte, *heldAnswer) {
	h := c.answer.Load()
	if h == nil {
		return nil, nil
	}
	h.mu.Lock()
	b := h.b
	h.b = nil
	return b, h
}

// answered ends what takeAnswer began: the answer is written, later writes go straight out.
func (c *wsConn) answered(h *heldAnswer) {
	c.answer.CompareAndSwap(h, nil)
	h.mu.Unlock()
}

// sendAnswer writes the held answer, if any, on its own.
func (c *wsConn) sendAnswer() {
	if c.answer.Load() == nil {
		return
	}
	answer, h := c.takeAnswer()
	if h == nil {
		return
	}
	defer c.answered(h)
	if answer != nil {
		_, _ = c.Conn.Write(answer) // a failure shows in the connection's next read or write
	}
}

// Write implements net.Conn for gorilla: its first write (the handshake's answer) is kept, and a
// later one sends the answer first. The transport's own writes go to the TCP connection
// (deadlineWebsocket.tryWrite takes the answer too).
func (c *wsConn) Write(p []byte) (int, error) {
	h := c.answer.Load()
	if h == nil {
		return c.Conn.Write(p)
	}
	if h.keep(p) {
		return len(p), nil
	}
	answer, h := c.takeAnswer()
	if h == nil {
		return c.Conn.Write(p)
	}
	defer c.answered(h)
	if answer == nil {
		return c.Conn.Write(p)
	}
	bufs := net.Buffers{answer, p}
	n, err := bufs.WriteTo(c.Conn)
	return max(int(n)-len(answer), 0), err
}
