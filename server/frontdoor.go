package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// frontDoor is the listener net/http serves from, with one thing done before net/http sees a
// connection: a websocket handshake to /socket.io/ is read and served here, and every other
// connection goes on to net/http with the bytes read so far in front of it.
//
// Why: net/http gives every connection a 4 KiB bufio.Reader and a 4 KiB bufio.Writer, each
// request a 2 KiB response buffer, and a hijack a fresh 4 KiB bufio.Writer. A hijacked connection
// never gives them back to net/http's pools, and none of them serves the websocket (gorilla has
// its own buffers; the engine sets their sizes). Connecting 10,000 clients, they were a quarter of
// the bytes the server allocated, all garbage at once, and the garbage collector's work grows with
// every byte allocated while the heap grows (bench/OPTIMISATION.md, "Fourth pass"). Here a
// handshake costs one pooled read buffer, the parsed request and a small writer.
//
// A handshake is served here only when its whole head arrived in one pooled buffer, nothing
// followed it (a websocket client waits for the 101 before it sends) and it asks for a websocket
// on the Socket.IO path; anything else, including a head larger than the buffer, is net/http's,
// unchanged. The head has headerTimeout to arrive, as net/http's ReadHeaderTimeout.
type frontDoor struct {
	ln            net.Listener
	handler       http.Handler // the whole handler: socketIOBeside routes the handshake
	base          context.Context
	headerTimeout time.Duration
	log           zerolog.Logger
	// run runs a handshake: on a warm worker (warm.go), whose stack has grown already, where the
	// connection's new goroutine would grow its own two or three times, copying it each time.
	run func(func())

	toHTTP    chan net.Conn // connections for net/http's Accept
	done      chan struct{} // closed by Close or when the accept loop ends
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error // why the accept loop ended, for Accept
}

// headBufferSize bounds a head served here; a larger one goes to net/http (its limit is 1 MB).
const headBufferSize = 4096

var headBuffers = sync.Pool{New: func() any { b := make([]byte, headBufferSize); return &b }}

// headReaders parse a head already in memory; the request keeps no reference into them.
var headReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headBufferSize) }}

func newFrontDoor(ln net.Listener, handler http.Handler, base context.Context, headerTimeout time.Duration, log zerolog.Logger, run func(func())) *frontDoor {
	d := &frontDoor{
		ln: ln, handler: handler, base: base, headerTimeout: headerTimeout, log: log, run: run,
		toHTTP: make(chan net.Conn),
		done:   make(chan struct{}),
	}
	go d.acceptLoop()
	return d
}

// acceptLoop accepts until the listener fails, backing off on temporary errors as net/http does.
func (d *frontDoor) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := d.ln.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !d.closed() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				d.log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept")
				time.Sleep(backoff)
				continue
			}
			d.stop(err)
			return
		}
		backoff = 0
		go d.serve(c)
	}
}

// serve reads c's first request head and serves it here or hands c to net/http.
func (d *frontDoor) serve(c net.Conn) {
	bp := headBuffers.Get().(*[]byte)
	buf := *bp
	n, end := 0, -1
	var err error
	_ = c.SetReadDeadline(time.Now().Add(d.headerTimeout))
	for end < 0 && n < len(buf) && err == nil {
		var m int
		m, err = c.Read(buf[n:])
		from := max(n-2, 0)
		n += m
		end = headEnd(buf[from:n], from)
	}
	// A client that closed, failed or stalled before its head was whole is closed without an
	// answer, as net/http closes it (a read error there ends the connection silently); so is
	// every connection once the door is closed.
	if (end < 0 && err != nil) || d.closed() {
		headBuffers.Put(bp)
		_ = c.Close()
		return
	}
	if end > 0 && end == n {
		if req := d.websocketHandshake(buf[:n]); req != nil {
			headBuffers.Put(bp)
			_ = c.SetReadDeadline(time.Time{})
			d.serveHandshake(c, req)
			return
		}
	}
	pc := &prefixedConn{Conn: c, prefix: bytes.Clone(buf[:n])}
	headBuffers.Put(bp)
	_ = c.SetReadDeadline(time.Time{}) // net/http sets its own
	select {
	case d.toHTTP <- pc:
	case <-d.done:
		_ = c.Close()
	}
}

// headEnd is the offset just past the blank line ending a request head in b (which starts at
// offset from of the buffer), or -1. Like net/http it takes a bare LF as a line end, so a line
// feed followed by CRLF or LF ends the head.
func headEnd(b []byte, from int) int {
	for i := 0; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return from + i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return from + i + 3
		}
	}
	return -1
}

// websocketHandshake parses head and returns the request when it is a websocket handshake on the
// Socket.IO path, else nil (net/http serves it, and answers a malformed one).
func (d *frontDoor) websocketHandshake(head []byte) *http.Request {
	if !bytes.HasPrefix(head, []byte("GET /socket.io")) {
		return nil
	}
	br := headReaders.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(head))
	req, err := http.ReadRequest(br)
	br.Reset(nil)
	headReaders.Put(br)
	if err != nil || req.ProtoMajor != 1 || !websocket.IsWebSocketUpgrade(req) {
		return nil
	}
	return req.WithContext(d.base) // the handler routes it, as for net/http (socketIOBeside)
}

// serveHandshake runs the handler for req on c, as net/http would for one request: a panic is
// logged and closes c; a response that was not a hijack is written and c closed.
func (d *frontDoor) serveHandshake(c net.Conn, req *http.Request) {
	req.RemoteAddr = c.RemoteAddr().String()
	w := &handshakeWriter{conn: c}
	defer func() {
		if rec := recover(); rec != nil {
			if rec != http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
				d.log.Error().Msgf("panic serving a websocket handshake: %v", rec) // log has component "http"
			}
			_ = c.Close()
		}
	}()
	d.run(func() { d.handler.ServeHTTP(w, req) })
	w.finish()
}

// Accept implements net.Listener for net/http: the connections the front door does not serve.
func (d *frontDoor) Accept() (net.Conn, error) {
	select {
	case c := <-d.toHTTP:
		return c, nil
	case <-d.done:
		d.errMu.Lock()
		defer d.errMu.Unlock()
		return nil, d.err
	}
}

// Close implements net.Listener: no connection is accepted after it.
func (d *frontDoor) Close() error {
	err := d.ln.Close()
	d.stop(net.ErrClosed)
	return err
}

// Addr implements net.Listener.
func (d *frontDoor) Addr() net.Addr { return d.ln.Addr() }

func (d *frontDoor) stop(err error) {
	d.closeOnce.Do(func() {
		d.errMu.Lock()
		if errors.Is(err, net.ErrClosed) {
			err = net.ErrClosed
		}
		d.err = err
		d.errMu.Unlock()
		close(d.done)
	})
}

func (d *frontDoor) closed() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// prefixedConn is a connection whose first bytes were already read: Read returns them first.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close before it closes, as it does on a bare TCP connection.
func (c *prefixedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// handshakeWriter is the http.ResponseWriter of a handshake served by the front door. A hijack
// (the websocket upgrade) hands the connection over with 16-byte buffers: gorilla has its own,
// and refuses a handshake whose reader holds data. Anything else is a refusal (a JSON error from
// the engine or the admission middleware): it is kept and written, with Connection: close, when
// the handler returns. The engine writes it before its handler returns, as it must for net/http.
type handshakeWriter struct {
	conn     net.Conn
	mu       sync.Mutex
	header   http.Header
	status   int
	body     []byte
	hijacked bool
}

// Header implements http.ResponseWriter.
func (w *handshakeWriter) Header() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// WriteHeader implements http.ResponseWriter.
func (w *handshakeWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 && !w.hijacked {
		w.status = code
	}
}

// Write implements http.ResponseWriter.
func (w *handshakeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// Flush implements http.Flusher; the response is written whole when the handler returns.
func (w *handshakeWriter) Flush() {}

// Hijack implements http.Hijacker.
func (w *handshakeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.status != 0 {
		return nil, nil, errors.New("server: hijack after the response was written")
	}
	w.hijacked = true
	return w.conn, bufio.NewReadWriter(bufio.NewReaderSize(w.conn, 16), bufio.NewWriterSize(w.conn, 16)), nil
}

// finish writes a response that was not a hijack and closes the connection.
func (w *handshakeWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return
	}
	w.hijacked = true // nothing is written after this
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	h := w.header
	if h == nil {
		h = make(http.Header)
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection"} {
		h.Del(k)
	}
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if h.Get("Content-Type") == "" && len(w.body) > 0 {
		h.Set("Content-Type", http.DetectContentType(w.body))
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %03d %s\r\n", status, http.StatusText(status))
	_ = h.Write(&out)
	out.WriteString("Content-Length: " + strconv.Itoa(len(w.body)) + "\r\nConnection: close\r\n\r\n")
	out.Write(w.body)
	_ = w.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(w.conn, &out)
	_ = w.conn.Close()
}
