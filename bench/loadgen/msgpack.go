package loadgen

// msgpack.go: socket.io-msgpack-parser's framing, for the scenarios run with msgpack clients
// (-parser msgpack): every Socket.IO packet is one msgpack map {type, nsp, data, id?} in one
// binary websocket frame, without Engine.IO's "4" prefix (Engine.IO's own packets, the pings,
// stay text). The JSON framing of protocol.go is untouched by it.

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// The parsers the load generator's clients can speak.
const (
	ParserDefault = "default" // socket.io-parser: JSON text frames
	ParserMsgpack = "msgpack" // socket.io-msgpack-parser: one binary frame per packet
)

// Socket.IO packet types as socket.io-msgpack-parser numbers them.
const (
	mpConnect    = 0
	mpDisconnect = 1
	mpEvent      = 2
)

// newEncoder encodes as notepack.io (the parser's encoder) does: integers, and floats with an
// integral value, in their smallest form.
func newEncoder(buf *bytes.Buffer) *msgpack.Encoder {
	enc := msgpack.NewEncoder(buf)
	enc.UseCompactInts(true)
	enc.UseCompactFloats(true)
	return enc
}

// appendMsgpackPacket appends the map {type, nsp[, data]} (data is JSON, or nil for none).
func appendMsgpackPacket(dst []byte, typ int, nsp string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	n := 2
	if data != nil {
		n = 3
	}
	_ = enc.EncodeMapLen(n)
	_ = enc.EncodeString("type")
	_ = enc.EncodeInt(int64(typ))
	_ = enc.EncodeString("nsp")
	_ = enc.EncodeString(nsp)
	if data != nil {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return dst, fmt.Errorf("loadgen: msgpack data: %w", err)
		}
		_ = enc.EncodeString("data")
		if err := enc.Encode(v); err != nil {
			return dst, fmt.Errorf("loadgen: msgpack data: %w", err)
		}
	}
	return append(dst, buf.Bytes()...), nil
}

// NewMsgpackEvent pre-encodes event with one JSON argument (payload must already be JSON) as
// socket.io-msgpack-parser sends it. It panics on a payload that is not JSON: the scenarios'
// payloads are constants.
func NewMsgpackEvent(nsp, event string, payload []byte) Event {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	// The map's entries after its header: the header says whether an id follows.
	_ = enc.EncodeString("type")
	_ = enc.EncodeInt(mpEvent)
	_ = enc.EncodeString("nsp")
	_ = enc.EncodeString(nsp)
	_ = enc.EncodeString("data")
	args := []any{event}
	if len(payload) > 0 {
		var v any
		if err := json.Unmarshal(payload, &v); err != nil {
			panic(fmt.Sprintf("loadgen: event payload %q is not JSON: %v", payload, err))
		}
		args = append(args, v)
	}
	if err := enc.Encode(args); err != nil {
		panic(fmt.Sprintf("loadgen: encode event %q: %v", event, err))
	}
	return Event{body: buf.Bytes(), binary: true}
}

// appendMsgpackEvent appends a pre-encoded msgpack event with ack id (none when id < 0).
func (e Event) appendMsgpack(dst []byte, id int64) []byte {
	if id < 0 {
		return append(append(dst, 0x83), e.body...) // fixmap of 3
	}
	dst = append(append(dst, 0x84), e.body...)
	dst = append(dst, 0xa2, 'i', 'd')
	return appendUint(dst, uint64(id))
}

// appendUint appends u as msgpack's smallest unsigned integer.
func appendUint(dst []byte, u uint64) []byte {
	switch {
	case u < 0x80:
		return append(dst, byte(u))
	case u <= 0xff:
		return append(dst, 0xcc, byte(u))
	case u <= 0xffff:
		return append(dst, 0xcd, byte(u>>8), byte(u))
	case u <= 0xffffffff:
		return append(dst, 0xce, byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
	}
	return append(dst, 0xcf, byte(u>>56), byte(u>>48), byte(u>>40), byte(u>>32), byte(u>>24), byte(u>>16), byte(u>>8), byte(u))
}

// mpReader decodes the binary frames of one connection; it is not safe for concurrent use (each
// connection's read loop has its own).
type mpReader struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

func newMPReader() *mpReader {
	m := &mpReader{}
	m.dec = msgpack.NewDecoder(&m.r)
	return m
}

// parse decodes one binary frame as a Socket.IO packet: EIO is a message, SIO the packet type
// as a digit (as ParseFrame gives it), Data the msgpack encoding of the data value (aliases b).
func (m *mpReader) parse(b []byte) (Frame, error) {
	f := Frame{EIO: eioMessage, Nsp: "/", AckID: -1}
	m.r.Reset(b)
	m.dec.Reset(&m.r) // a bytes.Reader is read directly, so its position is the decoder's
	n, err := m.dec.DecodeMapLen()
	if err != nil || n < 0 {
		return f, errFrame
	}
	typ := int64(-1)
	for range n {
		key, err := m.dec.DecodeString()
		if err != nil {
			return f, errFrame
		}
		switch key {
		case "type":
			typ, err = m.dec.DecodeInt64()
		case "nsp":
			f.Nsp, err = m.dec.DecodeString()
		case "id":
			f.AckID, err = m.dec.DecodeInt64()
		case "data":
			start := len(b) - m.r.Len()
			err = m.dec.Skip()
			f.Data = b[start : len(b)-m.r.Len()]
		default:
			err = m.dec.Skip()
		}
		if err != nil {
			return f, errFrame
		}
	}
	if typ < mpConnect || typ > 4 || m.r.Len() != 0 {
		return f, errFrame
	}
	f.SIO = sioConnect + byte(typ)
	return f, nil
}

// msgpackText renders msgpack data for an error message.
func msgpackText(data []byte) string {
	var v any
	if msgpack.Unmarshal(data, &v) != nil {
		return fmt.Sprintf("%x", data)
	}
	return fmt.Sprint(v)
}

// msgpackSID reads the sid of a msgpack CONNECT answer's data ({sid, pid?}).
func msgpackSID(data []byte) string {
	var v struct {
		SID string `msgpack:"sid"`
	}
	if msgpack.Unmarshal(data, &v) != nil {
		return ""
	}
	return v.SID
}

// mpAckOK is the msgpack encoding of an ack data's start when it is a Switchboard success
// reply: an array of one map whose first key is "data" ([{"data": …}]).
var mpAckOK = []byte{0x91, 0x81, 0xa4, 'd', 'a', 't', 'a'}
