package socketio

import "errors"

// PacketType is a Socket.IO v5 packet type.
type PacketType byte

// The packet types of Socket.IO v5 (docs/socket.io-protocol/v5-current.md).
const (
	PacketConnect      PacketType = 0
	PacketDisconnect   PacketType = 1
	PacketEvent        PacketType = 2
	PacketAck          PacketType = 3
	PacketConnectError PacketType = 4
	PacketBinaryEvent  PacketType = 5
	PacketBinaryAck    PacketType = 6
)

// Packet is an outgoing packet before any parser encodes it, in the shape Node's Socket.IO gives
// its adapters (and puts on the wire between servers): for an event, Data is the event name
// followed by its arguments; for an ack, the ack's arguments; for CONNECT and CONNECT_ERROR, one
// object. ID is the ack id, -1 when there is none.
type Packet struct {
	Type PacketType
	Nsp  string
	ID   int64
	Data []any
}

// maxAttachments bounds the binary attachments of one packet, as Node's parser does.
const maxAttachments = 10

// ReservedEvents are the names a client may not send and a server may not emit.
var ReservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// errInvalidPacket is a packet that does not decode or breaks the protocol; the connection is
// closed, as Node's server closes it.
var errInvalidPacket = errors.New("socketio: invalid packet")

// inPacket is a decoded incoming packet.
type inPacket struct {
	typ   PacketType
	nsp   string
	id    int64 // -1 when absent
	event string
	args  *Args          // event and ack arguments
	auth  map[string]any // CONNECT payload
}
