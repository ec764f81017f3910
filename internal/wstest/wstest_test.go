package wstest

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// The example of RFC 6455 §1.3.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptKey = %q", got)
	}
}

func TestAppendFrame(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	long := bytes.Repeat([]byte{0}, 0x10000) // zeros: the masked payload is the key, repeated
	cases := []struct {
		name    string
		fin     bool
		op      byte
		payload []byte
		head    []byte // what comes before the masked payload, the key included
	}{
		// "Hello", the masked example of RFC 6455 §5.7 (its payload is checked below).
		{"short text", true, OpText, []byte("Hello"), []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d}},
		{"a fragment", false, OpText, []byte("He"), []byte{0x01, 0x82, 0x37, 0xfa, 0x21, 0x3d}},
		{"empty close", true, OpClose, nil, []byte{0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d}},
		{"125 bytes", true, OpBinary, long[:125], []byte{0x82, 0x80 | 125, 0x37, 0xfa, 0x21, 0x3d}},
		{"126 bytes: 16-bit length", true, OpBinary, long[:126], []byte{0x82, 0x80 | 126, 0, 126, 0x37, 0xfa, 0x21, 0x3d}},
		{"65536 bytes: 64-bit length", true, OpBinary, long, []byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 0x37, 0xfa, 0x21, 0x3d}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendFrame([]byte("kept"), tc.fin, tc.op, key, tc.payload)
			got, ok := bytes.CutPrefix(got, []byte("kept"))
			if !ok || !bytes.HasPrefix(got, tc.head) || len(got) != len(tc.head)+len(tc.payload) {
				t.Fatalf("frame % x…, want % x and %d payload bytes", got[:min(len(got), 16)], tc.head, len(tc.payload))
			}
			for i, c := range got[len(tc.head):] {
				if c^key[i%4] != tc.payload[i] {
					t.Fatalf("payload byte %d: % x", i, c)
				}
			}
		})
	}
	if got := AppendFrame(nil, true, OpText, key, []byte("Hello")); !bytes.Equal(got[6:], []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}) {
		t.Fatalf("masked Hello % x, want RFC 6455's 7f 9f 4d 51 58", got[6:])
	}
}

func TestFrameMasksWithAFreshKey(t *testing.T) {
	a, b := Frame(OpText, []byte("x")), Frame(OpText, []byte("x"))
	if a[0] != 0x81 || a[1] != 0x81 || len(a) != 7 {
		t.Fatalf("frame % x", a)
	}
	for range 8 { // 2^-32 a pair of keys alike: eight pairs alike is a key that is not random
		if !bytes.Equal(a[2:6], b[2:6]) {
			return
		}
		b = Frame(OpText, []byte("x"))
	}
	t.Fatalf("the same key % x every time", a[2:6])
}

func TestReadFrame(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 300)
	cases := []struct {
		name    string
		data    []byte
		op      byte
		payload string
		err     string // in the error; "" for none
	}{
		{"unmasked Hello (RFC 6455 §5.7)", []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}, OpText, "Hello", ""},
		{"16-bit length", append([]byte{0x82, 126, 0x01, 0x2c}, big...), OpBinary, string(big), ""},
		{"64-bit length", append([]byte{0x82, 127, 0, 0, 0, 0, 0, 0, 0x01, 0x2c}, big...), OpBinary, string(big), ""},
		{"close with a code", []byte{0x88, 0x02, 0x03, 0xe8}, OpClose, "\x03\xe8", ""},
		{"masked", []byte{0x81, 0x81, 1, 2, 3, 4, 'x'}, 0, "", "masked"},
		{"a fragment", []byte{0x01, 0x01, 'x'}, 0, "", "fragment"},
		{"too long", []byte{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}, 0, "", "bytes"},
		{"cut short", []byte{0x81, 0x05, 'H'}, 0, "", "EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op, p, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.data)))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || op != tc.op || string(p) != tc.payload {
				t.Fatalf("op %d, %d bytes, %v; want op %d, %d bytes", op, len(p), err, tc.op, len(tc.payload))
			}
		})
	}
}

func TestDial(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Sec-Websocket-Key")
		switch r.URL.Query().Get("answer") {
		case "refuse":
			http.Error(w, "no", http.StatusBadRequest)
			return
		case "bad accept":
			key = "something else"
		}
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Sec-Websocket-Version") != "13" || r.Header.Get("X-Test") != r.URL.Query().Get("want") {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		nc, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer nc.Close()
		// The answer and a first frame in one write: the reader must keep what it read behind.
		_, _ = nc.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			acceptKey(key) + "\r\n\r\n\x81\x02hi"))
		_, _ = nc.Read(make([]byte, 1)) // hold the connection until the client closes it
	}))
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	t.Run("accepted, first frame kept", func(t *testing.T) {
		nc, br, err := Dial(addr, "/ws?x=1")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if op, p, err := ReadFrame(br); err != nil || op != OpText || string(p) != "hi" {
			t.Fatalf("first frame: op %d %q %v", op, p, err)
		}
	})
	t.Run("extra header", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := Handshake(nc, addr, "/ws?want=yes", http.Header{"X-Test": {"yes"}}); err != nil {
			t.Fatal(err)
		}
	})
	for _, answer := range []struct{ query, err string }{
		{"answer=refuse", "400"},
		{"answer=bad+accept", "Sec-WebSocket-Accept"},
		{"want=a+header+not+sent", "400"},
	} {
		t.Run(answer.query, func(t *testing.T) {
			nc, _, err := Dial(addr, "/ws?"+answer.query)
			if err == nil {
				nc.Close()
				t.Fatal("the handshake succeeded")
			}
			if !strings.Contains(err.Error(), answer.err) {
				t.Fatalf("err %v, want one with %q", err, answer.err)
			}
		})
	}
}
