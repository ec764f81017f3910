package socketio

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// hasBinary reports whether v holds a []byte anywhere, which the default parser sends as a
// binary attachment. Plain values are walked; other types are looked at once per type (a type
// that cannot hold a []byte, which is every struct Switchboard emits, is never walked again).
func hasBinary(v any) bool {
	switch t := v.(type) {
	case nil, string, bool, float64, float32, int, int64, int32, uint, uint64, uint32, json.RawMessage, json.Number:
		return false
	case []byte:
		return true
	case map[string]any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
		return false
	case []any:
		for _, e := range t {
			if hasBinary(e) {
				return true
			}
		}
		return false
	}
	rv := reflect.ValueOf(v)
	if !typeMayHoldBinary(rv.Type()) {
		return false
	}
	return valueHasBinary(rv)
}

var binaryTypes sync.Map // reflect.Type → bool

var (
	byteSliceType   = reflect.TypeFor[[]byte]()
	jsonMarshaler   = reflect.TypeFor[json.Marshaler]()
	textMarshaler   = reflect.TypeFor[encoding.TextMarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	interfaceAnyTyp = reflect.TypeFor[any]()
)

// typeMayHoldBinary reports whether a value of t can hold a []byte (a field, element or value of
// interface type may, since it can hold anything).
func typeMayHoldBinary(t reflect.Type) bool {
	if b, ok := binaryTypes.Load(t); ok {
		return b.(bool)
	}
	b := mayHold(t, map[reflect.Type]bool{})
	binaryTypes.Store(t, b)
	return b
}

func mayHold(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if t == rawMessageType {
		return false
	}
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		return false // it decides its own JSON
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return true
		}
		return mayHold(t.Elem(), seen)
	case reflect.Array, reflect.Pointer:
		return mayHold(t.Elem(), seen)
	case reflect.Map:
		return mayHold(t.Elem(), seen)
	case reflect.Interface:
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" && mayHold(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

func valueHasBinary(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return false
		}
		if v.Kind() == reflect.Interface {
			return hasBinary(v.Elem().Interface())
		}
		return valueHasBinary(v.Elem())
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return !v.IsNil()
		}
		fallthrough
	case reflect.Array:
		for i := range v.Len() {
			if valueHasBinary(v.Index(i)) {
				return true
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if valueHasBinary(it.Value()) {
				return true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && f.Tag.Get("json") != "-" && valueHasBinary(v.Field(i)) {
				return true
			}
		}
	}
	return false
}

// plainValue turns v into plain values (map[string]any, []any, []byte, ...) with json names, for
// the default parser's binary deconstruction; msgpack keeps []byte as bytes on the way.
func plainValue(v any) (any, error) {
	switch v.(type) {
	case nil, string, bool, float64, []byte, map[string]any, []any:
		return v, nil
	}
	b, err := encodeMsgpack(v)
	if err != nil {
		return nil, err
	}
	return decodeMsgpackValue(b)
}

// deconstruct replaces every []byte in v by a placeholder {"_placeholder":true,"num":n}, adding
// the bytes to bins.
func deconstruct(v any, bins *[][]byte) any {
	switch t := v.(type) {
	case []byte:
		*bins = append(*bins, t)
		return placeholder{Placeholder: true, Num: len(*bins) - 1}
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deconstruct(e, bins)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = deconstruct(e, bins)
		}
		return s
	default:
		return v
	}
}

type placeholder struct {
	Placeholder bool `json:"_placeholder"`
	Num         int  `json:"num"`
}

var _ = interfaceAnyTyp
var _ = byteSliceType

// encodeMsgpack encodes v with json tags naming struct fields.
func encodeMsgpack(v any) ([]byte, error) {
	var buf []byte
	w := msgpackWriter{b: &buf}
	enc := msgpack.NewEncoder(w)
	enc.SetCustomStructTag("json")
	enc.SetOmitEmpty(false)
	enc.UseCompactInts(true)
	enc.UseCompactFloats(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf, nil
}

type msgpackWriter struct{ b *[]byte }

func (w msgpackWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}
