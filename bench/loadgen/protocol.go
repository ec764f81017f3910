// Package loadgen is Switchboard's load generator: a minimal Engine.IO v4 / Socket.IO v5 client
// over websockets, the benchmark scenarios (connect, echo, fanout, churn, …; connect-polling
// drives stock socket.io-client sockets in Node processes instead), their statistics and the
// /proc readings of the server under load. It speaks only what the scenarios need, so that it
// costs far less than the servers it loads.
package loadgen

import (
	"bytes"
	"errors"
	"strconv"
)

// Engine.IO packet types (the first byte of every websocket text frame).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
)

// Socket.IO packet types (the second byte of an Engine.IO message).
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
)

// Frame is one decoded websocket text frame.
type Frame struct {
	EIO   byte   // Engine.IO packet type
	SIO   byte   // Socket.IO packet type, when EIO is a message
	Nsp   string // namespace, "/" when absent
	AckID int64  // -1 without an ack id
	Data  []byte // the JSON after the header (aliases the frame)
}

// errFrame is returned for frames this client cannot read.
var errFrame = errors.New("loadgen: malformed frame")

// ParseFrame decodes an Engine.IO v4 websocket frame carrying a Socket.IO v5 packet. Data aliases b.
func ParseFrame(b []byte) (Frame, error) {
	f := Frame{Nsp: "/", AckID: -1}
	if len(b) == 0 {
		return f, errFrame
	}
	f.EIO = b[0]
	if f.EIO != eioMessage {
		f.Data = b[1:]
		return f, nil
	}
	if len(b) < 2 {
		return f, errFrame
	}
	f.SIO = b[1]
	if f.SIO < '0' || f.SIO > '6' {
		return f, errFrame
	}
	rest := b[2:]
	if len(rest) > 0 && rest[0] == '/' {
		i := bytes.IndexByte(rest, ',')
		if i < 0 { // "40/chat" without payload
			f.Nsp = string(rest)
			return f, nil
		}
		f.Nsp = string(rest[:i])
		rest = rest[i+1:]
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 0 {
		id, err := strconv.ParseInt(string(rest[:n]), 10, 64)
		if err != nil {
			return f, errFrame
		}
		f.AckID = id
		rest = rest[n:]
	}
	f.Data = rest
	return f, nil
}

// header appends the "4<type>[/nsp,]" prefix of a Socket.IO packet.
func header(dst []byte, typ byte, nsp string) []byte {
	dst = append(dst, eioMessage, typ)
	if nsp != "" && nsp != "/" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	return dst
}

// AppendConnect appends the packet that connects to nsp, with an optional auth object.
func AppendConnect(dst []byte, nsp string, auth []byte) []byte {
	dst = header(dst, sioConnect, nsp)
	return append(dst, auth...)
}

// AppendDisconnect appends the packet that leaves nsp.
func AppendDisconnect(dst []byte, nsp string) []byte {
	return header(dst, sioDisconnect, nsp)
}

// Event is a pre-encoded event: everything before and after the ack id, so that sending one
// costs an append of digits.
type Event struct {
	prefix []byte // 42/nsp,
	body   []byte // ["event",payload]; with msgpack, the packet map's entries but the id
	binary bool   // socket.io-msgpack-parser's framing (NewMsgpackEvent)
}

// NewEvent pre-encodes event with one JSON argument (payload must already be JSON).
func NewEvent(nsp, event string, payload []byte) Event {
	body := make([]byte, 0, len(event)+len(payload)+8)
	body = append(body, '[')
	body = strconv.AppendQuote(body, event)
	if len(payload) > 0 {
		body = append(body, ',')
		body = append(body, payload...)
	}
	body = append(body, ']')
	return Event{prefix: header(nil, sioEvent, nsp), body: body}
}

// Append appends the event with ack id (none when id < 0).
func (e Event) Append(dst []byte, id int64) []byte {
	if e.binary {
		return e.appendMsgpack(dst, id)
	}
	dst = append(dst, e.prefix...)
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return append(dst, e.body...)
}

// AckOK reports whether an ack's data is a Switchboard success reply: [{"data": …}], as JSON
// or as msgpack (whose array header no JSON text starts with).
func AckOK(data []byte) bool {
	return bytes.HasPrefix(data, mpAckOK) || bytes.HasPrefix(bytes.TrimSpace(data), []byte(`[{"data":`))
}

// Marker starts the sequence stamp that publishers put in fan-out messages: "bseq:<seq>:<ns>",
// where ns is the send time in nanoseconds since the run's base time.
const Marker = "bseq:"

// AppendStamp appends a sequence stamp.
func AppendStamp(dst []byte, seq int, sentNanos int64) []byte {
	dst = append(dst, Marker...)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, sentNanos, 10)
}

// FindStamp finds a sequence stamp anywhere in a frame.
func FindStamp(b []byte) (seq int, sentNanos int64, ok bool) {
	i := bytes.Index(b, []byte(Marker))
	if i < 0 {
		return 0, 0, false
	}
	rest := b[i+len(Marker):]
	s, n := leadingInt(rest)
	if n == 0 || n >= len(rest) || rest[n] != ':' {
		return 0, 0, false
	}
	t, m := leadingInt(rest[n+1:])
	if m == 0 {
		return 0, 0, false
	}
	return int(s), t, true
}

// leadingInt parses the decimal digits at the start of b.
func leadingInt(b []byte) (v int64, n int) {
	for n < len(b) && b[n] >= '0' && b[n] <= '9' && n < 19 {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}
