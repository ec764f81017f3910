package engineio

import (
	"encoding/base64"
	"errors"
)

// PacketType is an Engine.IO v4 packet type, sent as one ASCII digit.
type PacketType byte

// The packet types of Engine.IO v4 (docs/engine.io-protocol/v4-current.md).
const (
	PacketOpen    PacketType = '0'
	PacketClose   PacketType = '1'
	PacketPing    PacketType = '2'
	PacketPong    PacketType = '3'
	PacketMessage PacketType = '4'
	PacketUpgrade PacketType = '5'
	PacketNoop    PacketType = '6'
)

// recordSeparator separates the packets of a long-polling payload.
const recordSeparator = 0x1e

// errBadPacket is a packet or payload that does not decode.
var errBadPacket = errors.New("engineio: malformed packet")

// packet is one decoded Engine.IO packet. For a message, data is its payload and binary tells
// whether it came as binary (a websocket binary frame, or "b" + base64 in a polling payload).
// data aliases the buffer it was decoded from.
type packet struct {
	typ    PacketType
	data   []byte
	binary bool
}

// decodeText decodes one text packet: a type digit and its data.
func decodeText(b []byte) (packet, error) {
	if len(b) == 0 {
		return packet{}, errBadPacket
	}
	t := PacketType(b[0])
	if t < PacketOpen || t > PacketNoop {
		return packet{}, errBadPacket
	}
	return packet{typ: t, data: b[1:]}, nil
}

// decodePayload calls fn with each packet of a long-polling payload, in order. Binary packets
// ("b" + base64) are decoded into fresh memory; text packets alias payload. It stops at the first
// packet that does not decode and returns errBadPacket, having delivered the ones before it.
func decodePayload(payload []byte, fn func(packet) bool) error {
	if len(payload) == 0 {
		return errBadPacket
	}
	for start := 0; start <= len(payload); {
		end := start
		for end < len(payload) && payload[end] != recordSeparator {
			end++
		}
		p, err := decodePolling(payload[start:end])
		if err != nil {
			return err
		}
		if !fn(p) {
			return nil
		}
		start = end + 1
	}
	return nil
}

// decodePolling decodes one packet of a polling payload.
func decodePolling(b []byte) (packet, error) {
	if len(b) > 0 && b[0] == 'b' {
		raw := make([]byte, base64.StdEncoding.DecodedLen(len(b)-1))
		n, err := base64.StdEncoding.Decode(raw, b[1:])
		if err != nil {
			return packet{}, errBadPacket
		}
		return packet{typ: PacketMessage, data: raw[:n], binary: true}, nil
	}
	return decodeText(b)
}

// appendPolling appends m to a long-polling payload, preceded by a record separator unless it is
// the payload's first packet.
func appendPolling(dst []byte, m *Message, first bool) []byte {
	if !first {
		dst = append(dst, recordSeparator)
	}
	if m.binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, m.Payload())
	}
	return append(dst, m.Payload()...)
}
