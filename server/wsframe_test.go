package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ws "github.com/gorilla/websocket"
)

// TestAppendFrameReadsBackWithGorilla frames payloads across the three length encodings and
// reads them back with gorilla's client-side reader.
func TestAppendFrameReadsBackWithGorilla(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 0xFFFF, 0x10000, 300_000}
	var wire []byte
	for _, n := range sizes {
		wire = appendFrame(wire, ws.TextMessage, []byte(strings.Repeat("x", n)))
	}
	wire = appendFrame(wire, ws.BinaryMessage, []byte{0, 1, 2})

	up := ws.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(rw, r, nil)
		if err != nil {
			return
		}
		_, _ = conn.NetConn().Write(wire)
	}))
	defer srv.Close()
	c, _, err := ws.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range sizes {
		mt, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("frame of %d bytes: %v", n, err)
		}
		if mt != ws.TextMessage || len(data) != n {
			t.Fatalf("frame of %d bytes read as type %d, %d bytes", n, mt, len(data))
		}
	}
	mt, data, err := c.ReadMessage()
	if err != nil || mt != ws.BinaryMessage || !bytes.Equal(data, []byte{0, 1, 2}) {
		t.Fatalf("binary frame = %d %v %v", mt, data, err)
	}
}

func TestConsumed(t *testing.T) {
	frames := [][]byte{[]byte("abc"), []byte("de"), []byte("f")}
	cases := []struct {
		n    int
		want string
	}{{0, "abc|de|f"}, {1, "bc|de|f"}, {3, "de|f"}, {4, "e|f"}, {6, ""}}
	for _, c := range cases {
		got := consumed(append([][]byte(nil), frames...), c.n)
		if s := string(bytes.Join(got, []byte("|"))); s != c.want {
			t.Errorf("consumed(%d) = %q, want %q", c.n, s, c.want)
		}
	}
}
