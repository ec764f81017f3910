package server

import (
	"bufio"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// releaseAfterHijack lets net/http free a websocket's HTTP buffers once the connection is
// hijacked. The engine keeps the upgrade request's types.HttpContext for the whole connection
// (the engine socket's request), and with it the http.ResponseWriter: net/http's *response, its
// 2 KiB bufio.Writer and its *conn with the 4 KiB bufio.Reader and 4 KiB bufio.Writer, none of
// which serve the hijacked connection (gorilla's Upgrader has its own buffers, as the engine sets
// ReadBufferSize and WriteBufferSize). The engine gets a ResponseWriter that forgets net/http's
// after a successful Hijack; what it may still call on it afterwards answers as net/http's does
// on a hijacked connection. The hijacked connection is handed over as a wsConn (wsread.go). Other
// requests pass untouched.
func releaseAfterHijack(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&releasingWriter{rw: w}, r)
	})
}

// releasingWriter is an http.ResponseWriter that drops net/http's after Hijack.
type releasingWriter struct {
	mu     sync.Mutex
	rw     http.ResponseWriter // nil once hijacked
	header http.Header         // answered by Header after the hijack
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
	if rw := w.writer(); rw != nil {
		return rw.Write(p)
	}
	return 0, http.ErrHijacked
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
	w.rw = nil
	if c := newWSConn(conn); c != nil {
		return c, brw, nil // gorilla reads through it, see wsread.go
	}
	return conn, brw, nil
}
