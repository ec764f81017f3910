package socketio

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"time"
)

// errMsgpack is a msgpack document that does not decode.
var errMsgpack = errors.New("socketio: malformed msgpack")

// maxMsgpackDepth bounds nesting, so that a hostile document cannot exhaust the stack.
const maxMsgpackDepth = 64

// mpDecode decodes the msgpack value at the start of b into plain values (map[string]any, []any,
// string, float64, bool, nil, []byte) and returns the rest of b. It reads what notepack.io (the
// encoder of socket.io-msgpack-parser) writes: its ext type 0 forms are undefined (fixext 1,
// decoded as nil), a Date (fixext 8, decoded as its milliseconds) and an ArrayBuffer (ext 8/16/32,
// decoded as bytes). Other ext types decode as [type, bytes], as notepack does. Integers become
// float64, as numbers are in JavaScript; map keys that are not strings are formatted.
func mpDecode(b []byte) (any, []byte, error) { return mpValue(b, 0) }

func mpValue(b []byte, depth int) (any, []byte, error) {
	if len(b) == 0 || depth > maxMsgpackDepth {
		return nil, nil, errMsgpack
	}
	c := b[0]
	b = b[1:]
	switch {
	case c <= 0x7f:
		return float64(c), b, nil
	case c >= 0xe0:
		return float64(int8(c)), b, nil
	case c&0xf0 == 0x80:
		return mpMap(b, int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return mpArray(b, int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return mpString(b, int(c&0x1f))
	}
	switch c {
	case 0xc0:
		return nil, b, nil
	case 0xc2:
		return false, b, nil
	case 0xc3:
		return true, b, nil
	case 0xc4, 0xc5, 0xc6:
		n, rest, err := mpLen(b, c-0xc4)
		if err != nil {
			return nil, nil, err
		}
		return mpBytes(rest, n)
	case 0xc7, 0xc8, 0xc9:
		n, rest, err := mpLen(b, c-0xc7)
		if err != nil || len(rest) < 1 {
			return nil, nil, errMsgpack
		}
		return mpExt(int8(rest[0]), rest[1:], n)
	case 0xca:
		if len(b) < 4 {
			return nil, nil, errMsgpack
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), b[4:], nil
	case 0xcb:
		if len(b) < 8 {
			return nil, nil, errMsgpack
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), b[8:], nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		size := 1 << (c - 0xcc)
		if len(b) < size {
			return nil, nil, errMsgpack
		}
		return float64(beUint(b[:size])), b[size:], nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		if len(b) < size {
			return nil, nil, errMsgpack
		}
		u := beUint(b[:size])
		shift := 64 - 8*size
		return float64(int64(u<<shift) >> shift), b[size:], nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n := 1 << (c - 0xd4)
		if len(b) < 1 {
			return nil, nil, errMsgpack
		}
		return mpExt(int8(b[0]), b[1:], n)
	case 0xd9, 0xda, 0xdb:
		n, rest, err := mpLen(b, c-0xd9)
		if err != nil {
			return nil, nil, err
		}
		return mpString(rest, n)
	case 0xdc, 0xdd:
		n, rest, err := mpLen(b, c-0xdc+1)
		if err != nil {
			return nil, nil, err
		}
		return mpArray(rest, n, depth)
	case 0xde, 0xdf:
		n, rest, err := mpLen(b, c-0xde+1)
		if err != nil {
			return nil, nil, err
		}
		return mpMap(rest, n, depth)
	}
	return nil, nil, errMsgpack // 0xc1 is never used
}

func beUint(b []byte) uint64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return u
}

// mpLen reads a length of 1, 2 or 4 bytes (sizeCode 0, 1, 2).
func mpLen(b []byte, sizeCode byte) (int, []byte, error) {
	size := 1 << sizeCode
	if len(b) < size {
		return 0, nil, errMsgpack
	}
	n := beUint(b[:size])
	if n > uint64(len(b)) { // every element takes at least a byte
		return 0, nil, errMsgpack
	}
	return int(n), b[size:], nil
}

func mpString(b []byte, n int) (any, []byte, error) {
	if len(b) < n {
		return nil, nil, errMsgpack
	}
	return string(b[:n]), b[n:], nil
}

func mpBytes(b []byte, n int) (any, []byte, error) {
	if len(b) < n {
		return nil, nil, errMsgpack
	}
	return append([]byte{}, b[:n]...), b[n:], nil
}

func mpExt(typ int8, b []byte, n int) (any, []byte, error) {
	if len(b) < n {
		return nil, nil, errMsgpack
	}
	data := b[:n]
	rest := b[n:]
	if typ == 0 {
		switch n {
		case 1:
			return nil, rest, nil // undefined
		case 8:
			return float64(int64(binary.BigEndian.Uint64(data))), rest, nil // a Date, as ms
		}
		return append([]byte{}, data...), rest, nil // an ArrayBuffer
	}
	if typ == -1 && (n == 4 || n == 8 || n == 12) { // the msgpack timestamp, as ms
		return float64(mpTimestamp(data).UnixMilli()), rest, nil
	}
	return []any{float64(typ), append([]byte{}, data...)}, rest, nil
}

func mpTimestamp(b []byte) time.Time {
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0)
	case 8:
		u := binary.BigEndian.Uint64(b)
		return time.Unix(int64(u&0x3ffffffff), int64(u>>34))
	default:
		return time.Unix(int64(binary.BigEndian.Uint64(b[4:])), int64(binary.BigEndian.Uint32(b)))
	}
}

func mpArray(b []byte, n, depth int) (any, []byte, error) {
	if n > len(b) {
		return nil, nil, errMsgpack
	}
	out := make([]any, n)
	for i := range out {
		v, rest, err := mpValue(b, depth+1)
		if err != nil {
			return nil, nil, err
		}
		out[i], b = v, rest
	}
	return out, b, nil
}

func mpMap(b []byte, n, depth int) (any, []byte, error) {
	if 2*n > len(b) {
		return nil, nil, errMsgpack
	}
	out := make(map[string]any, n)
	for range n {
		k, rest, err := mpValue(b, depth+1)
		if err != nil {
			return nil, nil, err
		}
		v, rest, err := mpValue(rest, depth+1)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		switch k := k.(type) {
		case string:
			out[k] = v
		case float64:
			out[strconv.FormatFloat(k, 'f', -1, 64)] = v
		case bool:
			out[strconv.FormatBool(k)] = v
		case nil:
			out["null"] = v
		default:
			return nil, nil, errMsgpack
		}
	}
	return out, b, nil
}

// DecodeMsgpack decodes one msgpack document as the msgpack parser and Node's Redis adapters
// write it (notepack.io) into plain values; see mpDecode for the mapping.
func DecodeMsgpack(b []byte) (any, error) { return decodeMsgpackValue(b) }

// EncodeMsgpack encodes v as notepack.io decodes it: json tags name struct fields, []byte is bin,
// integers take their smallest form.
func EncodeMsgpack(v any) ([]byte, error) { return encodeMsgpack(v) }

// mpSkip returns the length of the msgpack value at the start of b.
func mpSkip(b []byte) (int, error) {
	_, rest, err := mpValue(b, 0)
	if err != nil {
		return 0, err
	}
	return len(b) - len(rest), nil
}
