package engineio

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Websocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes the server sends (RFC 6455 §7.4.1).
const (
	closeNormal      = 1000
	closeProtocol    = 1002
	closeInvalidData = 1007
	closeTooBig      = 1009
)

// frameError is a websocket protocol violation by the client, with the close code to answer.
type frameError struct {
	code   int
	reason string
}

func (e *frameError) Error() string { return "engineio: websocket: " + e.reason }

var (
	errFrameReserved     = &frameError{closeProtocol, "reserved bits set"}
	errFrameUnmasked     = &frameError{closeProtocol, "unmasked client frame"}
	errFrameOpcode       = &frameError{closeProtocol, "unknown opcode"}
	errFrameControl      = &frameError{closeProtocol, "fragmented or oversized control frame"}
	errFrameContinuation = &frameError{closeProtocol, "unexpected continuation frame"}
	errFrameInterleaved  = &frameError{closeProtocol, "data frame inside a fragmented message"}
	errFrameLength       = &frameError{closeProtocol, "invalid payload length"}
	errFrameTooBig       = &frameError{closeTooBig, "message too big"}
	errFrameUTF8         = &frameError{closeInvalidData, "text message is not valid UTF-8"}
)

// errNeedMore tells the caller that a frame is incomplete.
var errNeedMore = errors.New("engineio: websocket: incomplete frame")

// appendFrameHeader appends the header of an unmasked, final frame of n payload bytes.
func appendFrameHeader(dst []byte, opcode byte, n int) []byte {
	dst = append(dst, 0x80|opcode)
	switch {
	case n <= 125:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// closeFrame is a close frame with code and no reason.
func closeFrame(code int) []byte {
	return []byte{0x80 | opClose, 2, byte(code >> 8), byte(code)}
}

// frameReader decodes the frames a client sends, across reads: frames arrive in whatever pieces
// the kernel hands over. It keeps memory only while it holds an incomplete frame or the pieces
// of a fragmented message, so an idle connection costs none.
type frameReader struct {
	max     int    // largest message accepted
	partial []byte // an incomplete frame left from the previous read
	msgOp   byte   // opcode of the fragmented message being assembled, 0 if none
	msg     []byte // its payload so far
}

// feed decodes every complete frame of data (after what was left from the previous call) and
// calls fn for each message and control frame: op is opText, opBinary, opPing, opPong or opClose,
// and payload is unmasked. payload may alias data, which feed modifies in place (unmasking); it
// is valid only during the call. A *frameError is a protocol violation; an error from fn stops
// decoding and is returned.
func (r *frameReader) feed(data []byte, fn func(op byte, payload []byte) error) error {
	fromPartial := len(r.partial) > 0
	if fromPartial {
		r.partial = append(r.partial, data...)
		data = r.partial
	}
	for len(data) > 0 {
		n, err := r.frame(data, fn)
		if err == errNeedMore {
			if fromPartial {
				// Still assembling in r.partial: move what is left to its front.
				r.partial = r.partial[:copy(r.partial, data)]
			} else {
				r.partial = append(make([]byte, 0, max(len(data), 256)), data...)
			}
			return nil
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	r.partial = nil
	return nil
}

// frame decodes the frame at the start of b and returns its length.
func (r *frameReader) frame(b []byte, fn func(op byte, payload []byte) error) (int, error) {
	if len(b) < 2 {
		return 0, errNeedMore
	}
	fin := b[0]&0x80 != 0
	if b[0]&0x70 != 0 {
		return 0, errFrameReserved
	}
	op := b[0] & 0x0F
	if b[1]&0x80 == 0 {
		return 0, errFrameUnmasked
	}
	n := int64(b[1] & 0x7F)
	hdr := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, errNeedMore
		}
		n = int64(binary.BigEndian.Uint16(b[2:]))
		hdr = 4
	case 127:
		if len(b) < 10 {
			return 0, errNeedMore
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return 0, errFrameLength
		}
		n = int64(u)
		hdr = 10
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin || n > 125 {
			return 0, errFrameControl
		}
	case opText, opBinary:
		if r.msgOp != 0 {
			return 0, errFrameInterleaved
		}
	case opContinuation:
		if r.msgOp == 0 {
			return 0, errFrameContinuation
		}
	default:
		return 0, errFrameOpcode
	}
	if n > int64(r.max) || (op == opContinuation && int64(len(r.msg))+n > int64(r.max)) {
		return 0, errFrameTooBig
	}
	total := hdr + 4 + int(n)
	if len(b) < total {
		return 0, errNeedMore
	}
	key := b[hdr : hdr+4]
	payload := b[hdr+4 : total]
	unmask(payload, binary.LittleEndian.Uint32(key))

	switch {
	case op >= opClose:
		return total, fn(op, payload)
	case fin && op != opContinuation:
		if op == opText && !utf8.Valid(payload) {
			return 0, errFrameUTF8
		}
		return total, fn(op, payload)
	case op != opContinuation: // first piece of a fragmented message
		r.msgOp = op
		r.msg = append(make([]byte, 0, len(payload)*2), payload...)
		return total, nil
	default:
		r.msg = append(r.msg, payload...)
		if !fin {
			return total, nil
		}
		op, msg := r.msgOp, r.msg
		r.msgOp, r.msg = 0, nil
		if op == opText && !utf8.Valid(msg) {
			return 0, errFrameUTF8
		}
		return total, fn(op, msg)
	}
}

// unmask XORs b with the 4-byte key (little-endian, as it sits in the frame), 8 bytes at a time.
func unmask(b []byte, key uint32) {
	k8 := uint64(key) | uint64(key)<<32
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^k8)
	}
	for j := 0; i < len(b); i, j = i+1, j+1 {
		b[i] ^= byte(key >> (8 * (j & 3)))
	}
}
