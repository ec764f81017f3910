// Package wstest is a minimal websocket client for tests that speak the wire format by hand: the
// opening handshake over a plain TCP connection, client frames built byte by byte (masked, as
// RFC 6455 requires of a client, and final or not as the test says), and server frames read back
// one at a time. It keeps no state and starts no goroutine, so a test can send what no real
// client would (a bad frame, a burst, half a message) and sees exactly what the server wrote.
//
// The tests of engineio and socketio use it; the raw clients of the other packages' tests
// (namespaces, server, adapters) can move onto it.
package wstest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// Opcodes of RFC 6455 §5.2.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// MaxPayload bounds the frames ReadFrame takes: a length beyond it is a broken server (or a
// misread stream), not something a test should allocate for.
const MaxPayload = 64 << 20

// Dial connects to addr (host:port) and does the opening handshake for target, a path with its
// query ("/socket.io/?EIO=4&transport=websocket"). It returns the connection and the reader the
// server's frames come through, which may hold bytes read behind the handshake's answer.
func Dial(addr, target string) (net.Conn, *bufio.Reader, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: dial %s: %w", addr, err)
	}
	br, err := Handshake(nc, addr, target, nil)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, br, nil
}

// Handshake does the opening handshake for target over nc (a connection the test dialled its
// own way), with header's fields added to the request. An answer other than 101 with the
// Sec-WebSocket-Accept of the key sent is an error naming it.
func Handshake(nc net.Conn, host, target string, header http.Header) (*bufio.Reader, error) {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	key := base64.StdEncoding.EncodeToString(raw[:])
	req := fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
		target, host, key)
	w := &appendWriter{b: req}
	_ = header.Write(w) // a write to a buffer does not fail
	if _, err := nc.Write(append(w.b, "\r\n"...)); err != nil {
		return nil, fmt.Errorf("wstest: handshake %s: %w", target, err)
	}
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("wstest: handshake %s: %w", target, err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("wstest: handshake %s: %s", target, res.Status)
	}
	if got := res.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		return nil, fmt.Errorf("wstest: handshake %s: Sec-WebSocket-Accept %q, want %q", target, got, acceptKey(key))
	}
	return br, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// acceptKey is the Sec-WebSocket-Accept a server answers key with (RFC 6455 §4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// AppendFrame appends to b a client frame of opcode op carrying payload, masked with key, with
// the FIN bit when fin. The length takes the shortest of its three forms.
func AppendFrame(b []byte, fin bool, op byte, key [4]byte, payload []byte) []byte {
	if fin {
		op |= 0x80
	}
	b = append(b, op)
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// Frame is a final client frame with a fresh random key, as a browser sends one.
func Frame(op byte, payload []byte) []byte {
	var key [4]byte
	_, _ = rand.Read(key[:])
	return AppendFrame(make([]byte, 0, len(payload)+14), true, op, key, payload)
}

// ReadFrame reads the server's next frame and returns its opcode and payload. A server frame is
// final and unmasked here: a masked one breaks RFC 6455 §5.1, and a fragment is an error too,
// since no server under test fragments what it sends (a test that meets one should say so).
func ReadFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("wstest: a masked frame from the server")
	}
	if h[0]&0x80 == 0 {
		return 0, nil, fmt.Errorf("wstest: a fragment (opcode %d) from the server", h[0]&0x0F)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("wstest: a frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0F, payload, nil
}
