package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestReleaseAfterHijackForgetsNetHTTPWriter(t *testing.T) {
	type seen struct {
		w         *releasingWriter
		writeErr  error
		headerNil bool
	}
	got := make(chan seen, 1)
	h := releaseAfterHijack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw, ok := w.(*releasingWriter)
		if !ok {
			got <- seen{}
			return
		}
		up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			got <- seen{}
			return
		}
		defer conn.Close()
		_, werr := w.Write([]byte("x"))
		got <- seen{w: rw, writeErr: werr, headerNil: w.Header() == nil}
		_ = conn.WriteMessage(websocket.TextMessage, []byte("hello"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-got
	if s.w == nil {
		t.Fatal("the websocket request did not get a releasingWriter, or the upgrade failed")
	}
	if s.w.writer() != nil {
		t.Fatal("net/http's ResponseWriter is still referenced after the hijack")
	}
	if !errors.Is(s.writeErr, http.ErrHijacked) || s.headerNil {
		t.Fatalf("after the hijack: Write = %v, Header nil = %v", s.writeErr, s.headerNil)
	}
	if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "hello" {
		t.Fatalf("read = %q, %v: the hijacked connection does not work", msg, err)
	}
	if _, _, err := s.w.Hijack(); !errors.Is(err, http.ErrHijacked) {
		t.Fatalf("second Hijack = %v, want ErrHijacked", err)
	}
}

// A request that is not a websocket upgrade (long-polling) is answered through net/http's writer
// as usual, and the writer the engine keeps forgets net/http's once the handler has returned.
func TestReleaseAfterHijackForgetsAFinishedResponse(t *testing.T) {
	var kept *releasingWriter
	h := releaseAfterHijack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept, _ = w.(*releasingWriter)
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("short and stout"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling", nil))
	if rec.Code != http.StatusTeapot || rec.Body.String() != "short and stout" {
		t.Fatalf("response %d %q", rec.Code, rec.Body.String())
	}
	if kept == nil {
		t.Fatal("the handler did not get a releasingWriter")
	}
	if kept.writer() != nil {
		t.Fatal("net/http's ResponseWriter is still referenced after the handler returned")
	}
	if _, err := kept.Write([]byte("late")); !errors.Is(err, errResponseDone) {
		t.Fatalf("Write after the handler returned = %v, want errResponseDone", err)
	}
	if kept.Header() == nil {
		t.Fatal("Header after the handler returned is nil")
	}
}

// readN reads exactly n bytes from c, failing the test after a few seconds.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

func TestHeldAnswerGoesOutWithTheFirstFrame(t *testing.T) {
	c, client := tcpPair(t)
	c.answer.Store(new(heldAnswer))
	if n, err := c.Write([]byte("ANSWER")); n != 6 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	clientRaw, err := client.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if n := unreadBytes(clientRaw); n != 0 {
		t.Fatalf("the answer went out on its own (%d bytes at the client)", n)
	}
	w := &deadlineWebsocket{gate: c, net: c.Conn, raw: c.raw}
	if rest, err := w.tryWrite([][]byte{[]byte("FRAME")}); len(rest) != 0 || err != nil {
		t.Fatalf("tryWrite left %d frames, %v", len(rest), err)
	}
	if got := readN(t, client, 11); got != "ANSWERFRAME" {
		t.Fatalf("client read %q", got)
	}
	if c.answer.Load() != nil {
		t.Fatal("the answer is still held after it was written")
	}
	if n, err := c.Write([]byte("LATER")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := readN(t, client, 5); got != "LATER" {
		t.Fatalf("client read %q", got)
	}
}

func TestHeldAnswerGoesOutWithGorillasNextWrite(t *testing.T) {
	c, client := tcpPair(t)
	c.answer.Store(new(heldAnswer))
	_, _ = c.Write([]byte("ANSWER"))
	if n, err := c.Write([]byte("MSG")); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v: the count must be of the caller's bytes", n, err)
	}
	if got := readN(t, client, 9); got != "ANSWERMSG" {
		t.Fatalf("client read %q", got)
	}
}

// TestHeldAnswerIsNeverWaitedFor: a handler that upgrades and writes nothing, or reads before it
// writes, still answers the handshake (when it returns, or when it waits for the client).
func TestHeldAnswerIsNeverWaitedFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(*websocket.Conn) error
	}{
		{"returns", func(*websocket.Conn) error { return nil }},
		{"reads first", func(conn *websocket.Conn) error {
			_, msg, err := conn.ReadMessage()
			if err == nil {
				err = conn.WriteMessage(websocket.TextMessage, append([]byte("echo "), msg...))
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			h := releaseAfterHijack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
				conn, err := up.Upgrade(w, r, nil)
				if err != nil {
					done <- err
					return
				}
				done <- tc.after(conn)
			}))
			srv := httptest.NewServer(h)
			defer srv.Close()
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			c, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			if err != nil {
				t.Fatalf("dial: %v (the handshake's answer never came)", err)
			}
			defer c.Close()
			if tc.name == "reads first" {
				if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "echo hi" {
					t.Fatalf("read %q, %v", msg, err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
