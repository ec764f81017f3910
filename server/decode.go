package server

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// decodeEvent decodes the packets a connection sends most, EVENT and ACK without binary
// attachments, in one pass over the bytes and one json.Unmarshal. The library's decoder reads
// them byte by byte from a buffer and decodes the payload through a json.Decoder made for each
// packet (its 512-byte buffer and state were a tenth of the bytes allocated per echo round trip).
//
// It reports false for anything else, and for anything it is not sure the library would accept
// as it reads it (a namespace or id at its length limits, a payload json.Unmarshal refuses, which
// the library's decoder may still take: it reads the first JSON value and ignores the rest), so
// the library's decoder decodes it, or refuses it, exactly as before. What it returns is the
// packet the library would have decoded.
func decodeEvent(data any) (*parser.Packet, bool) {
	var b []byte
	switch v := data.(type) {
	case *types.StringBuffer:
		b = v.Bytes()
	case string:
		b = []byte(v)
	default:
		return nil, false
	}
	if len(b) < 2 || (b[0] != '0'+byte(parser.EVENT) && b[0] != '0'+byte(parser.ACK)) {
		return nil, false
	}
	p := &parser.Packet{Type: parser.PacketType(b[0] - '0'), Nsp: "/"}
	i := 1
	if b[i] == '/' {
		end := bytes.IndexByte(b[i:], ',')
		if end < 0 || end >= parser.DefaultMaxNamespaceLength {
			return nil, false
		}
		p.Nsp = string(b[i : i+end])
		i += end + 1
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if n := i - start; n > 0 {
		if n >= parser.DefaultMaxPacketIDLength {
			return nil, false
		}
		id, err := strconv.ParseUint(string(b[start:i]), 10, 64)
		if err != nil {
			return nil, false
		}
		p.Id = &id
	}
	var payload any
	if i == len(b) || json.Unmarshal(b[i:], &payload) != nil {
		return nil, false
	}
	args, ok := payload.([]any)
	if !ok {
		return nil, false
	}
	if p.Type == parser.EVENT {
		if len(args) == 0 {
			return nil, false
		}
		switch name := args[0].(type) {
		case string:
			if parser.ReservedEvents.Has(name) {
				return nil, false
			}
		case float64:
		default:
			return nil, false
		}
	}
	p.Data = args
	return p, true
}
