package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Args are the arguments of an event or of an ack as a client (or another node) sent them. They
// stay in their wire form until a handler asks for them, so that a handler that decodes its
// payload into a struct pays for one decode, from the bytes, into that struct.
type Args struct {
	form argsForm
	raw  [][]byte // one JSON value per argument (formJSON)
	bins [][]byte // the binary attachments the JSON arguments refer to
	vals []any    // decoded values (formValues)
}

type argsForm uint8

const (
	formValues argsForm = iota
	formJSON
)

// ValuesArgs wraps already decoded values (as another node sends them) as Args.
func ValuesArgs(vals []any) *Args { return &Args{form: formValues, vals: vals} }

// Len is the number of arguments.
func (a *Args) Len() int {
	if a == nil {
		return 0
	}
	if a.form == formValues {
		return len(a.vals)
	}
	return len(a.raw)
}

// HasBinary reports whether some argument holds binary data.
func (a *Args) HasBinary() bool {
	if a == nil {
		return false
	}
	switch a.form {
	case formJSON:
		return len(a.bins) > 0
	default:
		for _, v := range a.vals {
			if hasBinary(v) {
				return true
			}
		}
		return false
	}
}

// ErrNoArg is returned for an argument index past the last one.
var ErrNoArg = errors.New("socketio: no such argument")

// Decode decodes argument i into into, which follows encoding/json's rules (json tags, pointer
// fields for optional values) whichever parser the client uses. Binary data decodes into a
// []byte field.
func (a *Args) Decode(i int, into any) error {
	if i < 0 || i >= a.Len() {
		return ErrNoArg
	}
	switch {
	case a.form == formJSON && len(a.bins) == 0:
		return json.Unmarshal(a.raw[i], into)
	}
	v, err := a.Value(i)
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// Value decodes argument i into plain values: map[string]any, []any, string, float64, bool, nil,
// and []byte for binary data.
func (a *Args) Value(i int) (any, error) {
	if i < 0 || i >= a.Len() {
		return nil, ErrNoArg
	}
	switch a.form {
	case formJSON:
		var v any
		if err := json.Unmarshal(a.raw[i], &v); err != nil {
			return nil, err
		}
		if len(a.bins) > 0 {
			return fillPlaceholders(v, a.bins)
		}
		return v, nil
	default:
		return a.vals[i], nil
	}
}

// Values decodes every argument as Value does.
func (a *Args) Values() ([]any, error) {
	out := make([]any, a.Len())
	for i := range out {
		v, err := a.Value(i)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// JSON returns argument i as JSON. Binary data becomes {"type":"Buffer","data":[bytes...]}, the
// form Node's Buffer takes in JSON, so that a backend reading it in any language gets the bytes.
func (a *Args) JSON(i int) (json.RawMessage, error) {
	if i < 0 || i >= a.Len() {
		return nil, ErrNoArg
	}
	if a.form == formJSON && len(a.bins) == 0 {
		return a.raw[i], nil
	}
	v, err := a.Value(i)
	if err != nil {
		return nil, err
	}
	return MarshalJSON(v)
}

// MarshalJSON encodes v as JSON the way Node's JSON.stringify would: no HTML escaping, []byte as
// {"type":"Buffer","data":[...]}.
func MarshalJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bufferJSON(v)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// nodeBuffer is a []byte in the JSON form of Node's Buffer.
type nodeBuffer []byte

func (b nodeBuffer) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 26+4*len(b))
	out = append(out, `{"type":"Buffer","data":[`...)
	for i, c := range b {
		if i > 0 {
			out = append(out, ',')
		}
		out = fmt.Appendf(out, "%d", c)
	}
	return append(out, "]}"...), nil
}

// bufferJSON replaces []byte inside plain values by nodeBuffer.
func bufferJSON(v any) any {
	switch t := v.(type) {
	case []byte:
		return nodeBuffer(t)
	case map[string]any:
		if !hasBinary(t) {
			return t
		}
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = bufferJSON(e)
		}
		return m
	case []any:
		if !hasBinary(t) {
			return t
		}
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = bufferJSON(e)
		}
		return s
	default:
		return v
	}
}

// fillPlaceholders replaces the {"_placeholder":true,"num":n} objects of a decoded JSON value by
// their attachments.
func fillPlaceholders(v any, bins [][]byte) (any, error) {
	var err error
	switch t := v.(type) {
	case map[string]any:
		if p, ok := t["_placeholder"].(bool); ok && p {
			n, ok := t["num"].(float64)
			if !ok || n < 0 || n >= float64(len(bins)) || n != math.Trunc(n) {
				return nil, errInvalidPacket
			}
			return bins[int(n)], nil
		}
		for k, e := range t {
			if t[k], err = fillPlaceholders(e, bins); err != nil {
				return nil, err
			}
		}
	case []any:
		for i, e := range t {
			if t[i], err = fillPlaceholders(e, bins); err != nil {
				return nil, err
			}
		}
	}
	return v, nil // a map or slice filled in place, or a value that holds no placeholder
}

func decodeMsgpackValue(b []byte) (any, error) {
	v, rest, err := mpDecode(b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errMsgpack
	}
	return v, nil
}
