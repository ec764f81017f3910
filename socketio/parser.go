package socketio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/switchboard/switchboard/engineio"
)

// ParserMode says which Socket.IO parsers a server speaks (SPEC §1 --parser).
type ParserMode string

// The parser modes.
const (
	ParserAuto    ParserMode = "auto"    // each connection speaks what its first packet shows
	ParserDefault ParserMode = "default" // socket.io-parser's JSON with binary attachments
	ParserMsgpack ParserMode = "msgpack" // socket.io-msgpack-parser
)

// parserKind is the parser of one connection.
type parserKind uint8

const (
	parserUnknown parserKind = iota
	parserJSON
	parserMsgpack
	numParsers
)

// encode encodes p for parser k as Engine.IO messages: one for msgpack; for the default parser
// one text message and one binary message per attachment.
func encode(k parserKind, p *Packet) ([]*engineio.Message, error) {
	if k == parserMsgpack {
		m, err := encodeMsgpackPacket(p)
		if err != nil {
			return nil, err
		}
		return []*engineio.Message{m}, nil
	}
	return encodeJSONPacket(p)
}

// The default parser.

// encodeJSONPacket encodes p in socket.io-parser's format:
// <type>[<attachments>-][<nsp>,][<id>][<json>].
func encodeJSONPacket(p *Packet) ([]*engineio.Message, error) {
	typ := p.Type
	var data any
	var bins [][]byte
	switch typ {
	case PacketEvent, PacketAck:
		data = p.Data
		if anyBinary(p.Data) {
			plain := make([]any, len(p.Data))
			for i, v := range p.Data {
				pv, err := plainValue(v)
				if err != nil {
					return nil, fmt.Errorf("socketio: encode binary argument: %w", err)
				}
				plain[i] = deconstruct(pv, &bins)
			}
			data = plain
			typ += PacketBinaryEvent - PacketEvent
		}
	case PacketConnect, PacketConnectError:
		if len(p.Data) > 0 {
			data = p.Data[0]
		}
	}
	b := make([]byte, engineio.HeaderRoom, engineio.HeaderRoom+64)
	b = append(b, byte(engineio.PacketMessage), '0'+byte(typ))
	if len(bins) > 0 {
		b = strconv.AppendInt(b, int64(len(bins)), 10)
		b = append(b, '-')
	}
	if p.Nsp != "/" && p.Nsp != "" {
		b = append(b, p.Nsp...)
		b = append(b, ',')
	}
	if p.ID >= 0 {
		b = strconv.AppendInt(b, p.ID, 10)
	}
	if data != nil {
		var err error
		if b, err = appendJSON(b, data); err != nil {
			return nil, fmt.Errorf("socketio: encode packet: %w", err)
		}
	}
	msgs := make([]*engineio.Message, 1, 1+len(bins))
	msgs[0] = engineio.NewMessage(b, false)
	for _, bin := range bins {
		msgs = append(msgs, engineio.NewBinaryMessage(bin))
	}
	return msgs, nil
}

func anyBinary(vals []any) bool {
	for _, v := range vals {
		if hasBinary(v) {
			return true
		}
	}
	return false
}

// jsonEncoder appends JSON to a slice without HTML escaping, as JSON.stringify does.
type jsonEncoder struct {
	w   sliceWriter
	enc *json.Encoder
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var jsonEncoders = sync.Pool{New: func() any {
	e := &jsonEncoder{}
	e.enc = json.NewEncoder(&e.w)
	e.enc.SetEscapeHTML(false)
	return e
}}

// appendJSON appends the JSON encoding of v to dst.
func appendJSON(dst []byte, v any) ([]byte, error) {
	e := jsonEncoders.Get().(*jsonEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil
	jsonEncoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out[:len(out)-1], nil // Encode ends with a newline
}

// jsonDecoder decodes a connection's default-parser packets, reassembling binary ones from the
// attachments that follow them.
type jsonDecoder struct {
	pending *inPacket
	want    int
	bins    [][]byte
}

// add decodes one Engine.IO message. It returns nil and no error while a binary packet still
// waits for attachments. data is only valid during the call: what the packet keeps is copied.
func (d *jsonDecoder) add(data []byte, binary bool) (*inPacket, error) {
	if binary {
		if d.pending == nil {
			return nil, errInvalidPacket // "got binary data when not reconstructing a packet"
		}
		d.bins = append(d.bins, append([]byte(nil), data...))
		if len(d.bins) < d.want {
			return nil, nil
		}
		p := d.pending
		p.args.bins = d.bins
		d.pending, d.bins, d.want = nil, nil, 0
		// Every placeholder must name an attachment, as Node's reconstructPacket checks
		// ("illegal attachments"): a packet that refers to a missing one is refused here, not
		// left to fail in the handler that reads it.
		if _, err := p.args.Values(); err != nil {
			return nil, errInvalidPacket
		}
		return p, nil
	}
	if d.pending != nil {
		return nil, errInvalidPacket // "got plaintext data when reconstructing a packet"
	}
	p, attachments, err := decodeJSONPacket(data)
	if err != nil {
		return nil, err
	}
	if attachments > 0 {
		d.pending, d.want = p, attachments
		return nil, nil
	}
	return p, nil
}

// decodeJSONPacket parses one text packet as Node's socket.io-parser Decoder does.
func decodeJSONPacket(s []byte) (*inPacket, int, error) {
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return nil, 0, errInvalidPacket
	}
	p := &inPacket{typ: PacketType(s[0] - '0'), nsp: "/", id: -1}
	i := 1
	attachments := 0
	if p.typ == PacketBinaryEvent || p.typ == PacketBinaryAck {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i || j == len(s) || s[j] != '-' {
			return nil, 0, errInvalidPacket
		}
		n, err := strconv.Atoi(string(s[i:j]))
		if err != nil || n > maxAttachments {
			return nil, 0, errInvalidPacket
		}
		attachments = n
		i = j + 1
		p.typ -= PacketBinaryEvent - PacketEvent
	}
	if i < len(s) && s[i] == '/' {
		j := bytes.IndexByte(s[i:], ',')
		if j < 0 {
			p.nsp = string(s[i:])
			i = len(s)
		} else {
			p.nsp = string(s[i : i+j])
			i += j + 1
		}
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		id, err := strconv.ParseInt(string(s[i:j]), 10, 64)
		if err != nil {
			return nil, 0, errInvalidPacket
		}
		p.id = id
		i = j
	}
	payload := s[i:]
	if len(payload) > 0 && !json.Valid(payload) {
		return nil, 0, errInvalidPacket
	}
	switch p.typ {
	case PacketConnect:
		if len(payload) > 0 {
			if payload[0] != '{' {
				return nil, 0, errInvalidPacket
			}
			if err := json.Unmarshal(payload, &p.auth); err != nil {
				return nil, 0, errInvalidPacket
			}
		}
	case PacketDisconnect:
		if len(payload) > 0 {
			return nil, 0, errInvalidPacket
		}
	case PacketEvent, PacketAck:
		if len(payload) == 0 || payload[0] != '[' {
			return nil, 0, errInvalidPacket
		}
		elems := splitJSONArray(append([]byte(nil), payload...))
		if p.typ == PacketEvent {
			if len(elems) == 0 {
				return nil, 0, errInvalidPacket
			}
			name, ok := eventName(elems[0])
			if !ok {
				return nil, 0, errInvalidPacket
			}
			p.event = name
			elems = elems[1:]
		}
		p.args = &Args{form: formJSON, raw: elems}
	default: // CONNECT_ERROR is the server's to send
		return nil, 0, errInvalidPacket
	}
	return p, attachments, nil
}

// eventName reads the first element of an event: a string that is not a reserved name, or a
// number (Node accepts both).
func eventName(raw []byte) (string, bool) {
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var name string
		if json.Unmarshal(raw, &name) != nil || ReservedEvents[name] {
			return "", false
		}
		return name, true
	case len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')):
		return string(raw), true
	}
	return "", false
}

// splitJSONArray returns the elements of a valid JSON array, each as its raw bytes (aliasing b).
func splitJSONArray(b []byte) [][]byte {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' {
		return nil
	}
	b = b[1 : len(b)-1]
	var out [][]byte
	depth, start, inString := 0, -1, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inString = true
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, bytes.TrimSpace(b[start:i]))
				start = -1
				continue
			}
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, bytes.TrimSpace(b[start:]))
	}
	return out
}

// The msgpack parser (socket.io-msgpack-parser 3).

// msgpackPacket is a packet as socket.io-msgpack-parser puts it on the wire: one msgpack map.
type msgpackPacket struct {
	Type PacketType `json:"type"`
	Nsp  string     `json:"nsp"`
	Data *any       `json:"data,omitempty"` // a pointer: omitempty drops nil, never an empty array
	ID   *int64     `json:"id,omitempty"`
}

func encodeMsgpackPacket(p *Packet) (*engineio.Message, error) {
	mp := msgpackPacket{Type: p.Type, Nsp: p.Nsp}
	if mp.Nsp == "" {
		mp.Nsp = "/"
	}
	switch p.Type {
	case PacketEvent, PacketAck:
		data := p.Data
		if data == nil {
			data = []any{} // nil would be msgpack's nil, which the client refuses
		}
		var v any = data
		mp.Data = &v
	case PacketConnect, PacketConnectError:
		if len(p.Data) > 0 {
			mp.Data = &p.Data[0]
		}
	}
	if p.ID >= 0 {
		id := p.ID
		mp.ID = &id
	}
	w := &sliceWriter{b: make([]byte, engineio.HeaderRoom, engineio.HeaderRoom+64)}
	enc := msgpack.NewEncoder(w)
	enc.SetCustomStructTag("json")
	enc.UseCompactInts(true)
	enc.UseCompactFloats(true) // 300 from a JSON client is 300 to a msgpack one, not a float64
	if err := enc.Encode(&mp); err != nil {
		return nil, fmt.Errorf("socketio: encode msgpack packet: %w", err)
	}
	return engineio.NewMessage(w.b, true), nil
}

// msgpackDecoder decodes a connection's msgpack packets: each is one binary message.
type msgpackDecoder struct{}

func (msgpackDecoder) add(data []byte, binary bool) (*inPacket, error) {
	if !binary {
		return nil, errInvalidPacket
	}
	v, err := decodeMsgpackValue(data)
	if err != nil {
		return nil, errInvalidPacket
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errInvalidPacket
	}
	typ, ok := m["type"].(float64)
	if !ok || typ != float64(int(typ)) || typ < 0 || typ > float64(PacketConnectError) {
		return nil, errInvalidPacket
	}
	nsp, ok := m["nsp"].(string)
	if !ok {
		return nil, errInvalidPacket
	}
	p := &inPacket{typ: PacketType(typ), nsp: nsp, id: -1}
	if id, present := m["id"]; present && id != nil {
		f, ok := id.(float64)
		if !ok || f != float64(int64(f)) {
			return nil, errInvalidPacket
		}
		p.id = int64(f)
	}
	data2, hasData := m["data"]
	if hasData && data2 == nil {
		hasData = false // notepack's undefined
	}
	switch p.typ {
	case PacketConnect:
		if hasData {
			auth, ok := data2.(map[string]any)
			if !ok {
				return nil, errInvalidPacket
			}
			p.auth = auth
		}
	case PacketDisconnect:
		if hasData {
			return nil, errInvalidPacket
		}
	case PacketEvent, PacketAck:
		arr, ok := data2.([]any)
		if !ok {
			return nil, errInvalidPacket
		}
		if p.typ == PacketEvent {
			if len(arr) == 0 {
				return nil, errInvalidPacket
			}
			switch name := arr[0].(type) {
			case string:
				if ReservedEvents[name] {
					return nil, errInvalidPacket
				}
				p.event = name
			case float64:
				p.event = strconv.FormatFloat(name, 'f', -1, 64)
			default:
				return nil, errInvalidPacket
			}
			arr = arr[1:]
		}
		p.args = &Args{form: formValues, vals: arr}
	default:
		return nil, errInvalidPacket
	}
	return p, nil
}

// packetDecoder is a connection's decoder.
type packetDecoder interface {
	add(data []byte, binary bool) (*inPacket, error)
}
