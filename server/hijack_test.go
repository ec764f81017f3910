package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

func TestReleaseAfterHijackPassesOtherRequests(t *testing.T) {
	h := releaseAfterHijack(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(*releasingWriter); ok {
			t.Error("a plain request got the wrapper")
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=polling", nil))
	if rec.Code != http.StatusTeapot {
		t.Fatalf("status %d", rec.Code)
	}
}
