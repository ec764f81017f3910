package engineio

import "strconv"

// HeaderRoom is the room a buffer handed to NewMessage keeps free in front of the payload: the
// largest header of a websocket frame the server sends (unmasked, 64-bit length).
const HeaderRoom = 10

// Message is one outgoing Engine.IO packet, framed once for every transport: a websocket frame
// (header, then payload) whose payload a long-polling response uses as it is. A broadcast builds
// one Message and hands the same pointer to every recipient, so it is encoded and framed once
// however many sockets receive it. A Message is immutable once built.
type Message struct {
	frame  []byte // the websocket frame; the payload is frame[off:]
	off    int
	binary bool
}

// NewMessage builds a Message from buf, whose first HeaderRoom bytes are free room for the
// websocket header and whose rest is the payload: for a text message the Engine.IO packet ("4"
// then the Socket.IO packet for a message), for a binary one the raw bytes. NewMessage takes
// ownership of buf.
func NewMessage(buf []byte, binary bool) *Message {
	if len(buf) < HeaderRoom {
		panic("engineio: NewMessage expects HeaderRoom bytes of room")
	}
	n := len(buf) - HeaderRoom
	opcode := byte(opText)
	if binary {
		opcode = opBinary
	}
	var hdr [HeaderRoom]byte
	h := appendFrameHeader(hdr[:0], opcode, n)
	off := HeaderRoom - len(h)
	copy(buf[off:], h)
	return &Message{frame: buf[off:], off: len(h), binary: binary}
}

// NewTextMessage is NewMessage for an Engine.IO "message" packet carrying s.
func NewTextMessage(s string) *Message {
	buf := make([]byte, HeaderRoom, HeaderRoom+1+len(s))
	buf = append(buf, byte(PacketMessage))
	buf = append(buf, s...)
	return NewMessage(buf, false)
}

// NewBinaryMessage is NewMessage for a binary message carrying b (copied).
func NewBinaryMessage(b []byte) *Message {
	buf := make([]byte, HeaderRoom, HeaderRoom+len(b))
	return NewMessage(append(buf, b...), true)
}

// controlMessage is a text packet of the engine itself: ping, pong, noop, close, open.
func controlMessage(t PacketType, data string) *Message {
	buf := make([]byte, HeaderRoom, HeaderRoom+1+len(data))
	buf = append(buf, byte(t))
	return NewMessage(append(buf, data...), false)
}

// Payload is the message as a long-polling payload carries it (before any base64).
func (m *Message) Payload() []byte { return m.frame[m.off:] }

// Binary reports whether m is a binary message.
func (m *Message) Binary() bool { return m.binary }

// Len is the length of the payload.
func (m *Message) Len() int { return len(m.frame) - m.off }

// Shared engine packets; immutable, so one of each serves every connection.
var (
	msgPing      = controlMessage(PacketPing, "")
	msgNoop      = controlMessage(PacketNoop, "")
	msgClose     = controlMessage(PacketClose, "")
	msgPongProbe = controlMessage(PacketPong, "probe")
)

// openMessage is the open packet of a new session.
func openMessage(sid string, upgrades bool, pingInterval, pingTimeout, maxPayload int64) *Message {
	b := make([]byte, HeaderRoom, HeaderRoom+128)
	b = append(b, byte(PacketOpen))
	b = append(b, `{"sid":"`...)
	b = append(b, sid...)
	if upgrades {
		b = append(b, `","upgrades":["websocket"],"pingInterval":`...)
	} else {
		b = append(b, `","upgrades":[],"pingInterval":`...)
	}
	b = strconv.AppendInt(b, pingInterval, 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, pingTimeout, 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, maxPayload, 10)
	b = append(b, '}')
	return NewMessage(b, false)
}
