package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"
)

// clientFrame is a masked client frame (RFC 6455 §5.2): what a browser sends.
func clientFrame(fin bool, opcode int, payload []byte) []byte {
	b0 := byte(opcode)
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xFFFF:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	f = append(f, key[:]...)
	for i, c := range payload {
		f = append(f, c^key[i%4])
	}
	return f
}

func TestFrameSize(t *testing.T) {
	big := clientFrame(true, ws.BinaryMessage, make([]byte, 70_000))
	tests := []struct {
		name string
		b    []byte
		want int64
		ok   bool
	}{
		{"empty", nil, 0, false},
		{"one byte", []byte{0x81}, 0, false},
		{"7-bit length, unmasked", []byte{0x81, 5}, 7, true},
		{"7-bit length, masked", clientFrame(true, ws.TextMessage, []byte("hello")), 2 + 4 + 5, true},
		{"16-bit length, header cut", []byte{0x81, 0x80 | 126, 1}, 0, false},
		{"16-bit length", clientFrame(true, ws.TextMessage, make([]byte, 300))[:8], 2 + 2 + 4 + 300, true},
		{"64-bit length, mask key cut", big[:13], 0, false},
		{"64-bit length", big[:14], 14 + 70_000, true},
		{"64-bit length gorilla refuses", []byte{0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, math.MaxInt64, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := frameSize(tt.b)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("frameSize = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// tcpPair is a loopback TCP connection: the server's end wrapped as the websocket handler wraps
// it, and the client's.
func tcpPair(t *testing.T) (*wsConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := newWSConn(server)
	if c == nil {
		t.Fatal("newWSConn refused a TCP connection")
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, client
}

// TestWSConnReadsStopAtFrameEnds checks the invariant the reader's wait relies on: whatever the
// client sent at once, no Read returns bytes of two frames.
func TestWSConnReadsStopAtFrameEnds(t *testing.T) {
	c, client := tcpPair(t)
	frames := [][]byte{
		clientFrame(true, ws.TextMessage, []byte("first")),
		clientFrame(true, ws.BinaryMessage, bytes.Repeat([]byte{7}, 70_000)), // past the read-ahead buffer, 64-bit length
		clientFrame(true, ws.PingMessage, []byte("p")),
		clientFrame(true, ws.TextMessage, []byte(strings.Repeat("x", 300))), // 16-bit length
	}
	wrote := make(chan error, 1)
	go func() { _, err := client.Write(bytes.Join(frames, nil)); wrote <- err }()

	c.setIdleDeadline()
	if !c.wait() {
		t.Fatal("wait timed out without a deadline")
	}
	p := make([]byte, 1024) // gorilla's read buffer
	for i, f := range frames {
		var got []byte
		for len(got) < len(f) {
			n, err := c.Read(p)
			if err != nil {
				t.Fatalf("frame %d: Read after %d of %d bytes: %v", i, len(got), len(f), err)
			}
			got = append(got, p[:n]...)
		}
		if !bytes.Equal(got, f) {
			t.Fatalf("frame %d: read %d bytes, want exactly the frame's %d", i, len(got), len(f))
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !c.empty() || c.buf != nil {
		t.Fatalf("after the last frame: %d bytes read ahead, buffer held %v", len(c.data), c.buf != nil)
	}

	// A header that arrives in two parts: wait returns with its first byte, Read waits for the rest.
	next := clientFrame(true, ws.TextMessage, []byte("split"))
	if _, err := client.Write(next[:1]); err != nil {
		t.Fatal(err)
	}
	if !c.wait() || len(c.data) != 1 {
		t.Fatalf("wait: %d bytes read ahead, want the 1 sent", len(c.data))
	}
	go func() {
		_, err := client.Write(append(next[1:], clientFrame(true, ws.TextMessage, []byte("after"))...))
		wrote <- err
	}()
	var got []byte
	for len(got) < len(next) {
		n, err := c.Read(p)
		if err != nil {
			t.Fatalf("split frame: %v", err)
		}
		got = append(got, p[:n]...)
	}
	if !bytes.Equal(got, next) {
		t.Fatalf("split frame read as %d bytes, want %d", len(got), len(next))
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// TestWSConnWaitBriefly: a brief wait ends at its deadline when the client is quiet, and the idle
// timeout (none here) is the read deadline again afterwards.
func TestWSConnWaitBriefly(t *testing.T) {
	c, client := tcpPair(t)
	if c.waitBriefly(10 * time.Millisecond) {
		t.Fatal("waitBriefly returned true; the client sent nothing")
	}
	if !c.briefUntil.IsZero() {
		t.Fatal("the brief deadline is still in force")
	}
	if _, err := client.Write(clientFrame(true, ws.TextMessage, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	if !c.wait() || c.empty() {
		t.Fatal("wait without a deadline did not return the client's frame")
	}
	_ = client.Close()
	p := make([]byte, 64)
	for {
		if _, err := c.Read(p); err != nil {
			if err != io.EOF {
				t.Fatalf("after the client closed: %v, want EOF", err)
			}
			break
		}
	}
}

// TestWSConnIdleTimeout: after a brief wait, a client quiet for the engine's idle timeout gets the
// timeout from the next Read, as gorilla's read would have returned it to the library's reader.
func TestWSConnIdleTimeout(t *testing.T) {
	c, _ := tcpPair(t)
	c.idleTimeout = 50 * time.Millisecond
	if c.waitBriefly(10 * time.Millisecond) {
		t.Fatal("waitBriefly returned true; the client sent nothing")
	}
	if !c.wait() {
		t.Fatal("wait under the idle timeout returned false")
	}
	_, err := c.Read(make([]byte, 64))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read after the idle timeout: %v, want a timeout", err)
	}
}

// TestWebsocketReader sends a Socket.IO client's frames in one write, the way a busy client's
// arrive: messages, a ping, a message fragmented around a ping, a frame larger than every read
// buffer; each must be answered, in order, and a close frame must close the connection.
func TestWebsocketReader(t *testing.T) {
	ts := startServer(t, testConfig())
	conn, _, err := ws.DefaultDialer.Dial(wsURL(ts.URL, "/socket.io/?EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pongs := make(chan string, 4)
	conn.SetPongHandler(func(data string) error { pongs <- data; return nil })
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	read := func() string {
		t.Helper()
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if s := string(data); s != "2" { // the server's heartbeat
				return s
			}
		}
	}
	if got := read(); !strings.HasPrefix(got, "0{") {
		t.Fatalf("got %q, want OPEN", got)
	}
	if err := conn.WriteMessage(ws.TextMessage, []byte("40")); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.HasPrefix(got, "40{") {
		t.Fatalf("got %q, want CONNECT", got)
	}

	subscribe := func(id int, room string) []byte {
		return fmt.Appendf(nil, `42%d["subscribe",{"rooms":[%q]}]`, id, room)
	}
	big := fmt.Appendf(nil, `423["subscribe",{"rooms":["%s"]}]`, strings.Repeat("r", 200_000))
	var wire []byte
	wire = append(wire, clientFrame(true, ws.TextMessage, subscribe(1, "a"))...)
	wire = append(wire, clientFrame(true, ws.PingMessage, []byte("ping-1"))...)
	part := subscribe(2, "b")
	wire = append(wire, clientFrame(false, ws.TextMessage, part[:10])...)
	wire = append(wire, clientFrame(true, ws.PingMessage, []byte("ping-2"))...)
	wire = append(wire, clientFrame(true, 0 /* continuation */, part[10:])...)
	wire = append(wire, clientFrame(true, ws.TextMessage, big)...)
	wire = append(wire, clientFrame(true, ws.TextMessage, subscribe(4, "d"))...)
	wire = append(wire, clientFrame(true, ws.TextMessage, subscribe(5, "e"))...)
	if _, err := conn.NetConn().Write(wire); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 5; id++ {
		if got, want := read(), fmt.Sprintf("43%d[", id); !strings.HasPrefix(got, want) {
			t.Fatalf("got %.60q, want the ack of request %d", got, id)
		}
	}
	for _, want := range []string{"ping-1", "ping-2"} {
		select {
		case got := <-pongs:
			if got != want {
				t.Fatalf("pong %q, want %q", got, want)
			}
		default:
			t.Fatalf("no pong for %q before the acks that followed it", want)
		}
	}

	if _, err := conn.NetConn().Write(clientFrame(true, ws.CloseMessage, ws.FormatCloseMessage(ws.CloseNormalClosure, ""))); err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		if !ws.IsCloseError(err, ws.CloseNormalClosure) {
			t.Fatalf("after the close frame: %v, want the server's close frame", err)
		}
		break
	}
}

// TestIdleWebsocketReaderParks: once a client is quiet, its reader waits on a goroutine of its
// own, outside gorilla, and still reads what the client sends next.
func TestIdleWebsocketReaderParks(t *testing.T) {
	ts := startServer(t, testConfig())
	w := connectRoot(t, ts)
	roundTrip(t, w)
	parked := func() bool {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "(*deadlineWebsocket).waitThenRead") {
				return strings.Contains(g, "(*wsConn).wait") && !strings.Contains(g, "gorilla/websocket")
			}
		}
		return false
	}
	waitFor(t, "the reader to park", parked)
	roundTrip(t, w)
	roundTrip(t, w)
}
