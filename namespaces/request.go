package namespaces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Validator is implemented by request payloads that check their own limits after decoding.
type Validator interface {
	Validate() error
}

// Handler is a typed request handler: it gets the decoded, validated payload and returns the ack
// data or an error (an *Error for the client, anything else becomes "internal").
type Handler[Req, Res any] func(req Req) (Res, error)

// dataReply and errorReply are the two ack payloads, {"data": …} and {"error": …}. Structs, not
// map[string]any: encoding/json encodes a struct from its cached field list, a map by reflecting,
// sorting its keys and growing the stack of the ack's fresh goroutine (~10% of echo CPU).
type dataReply[T any] struct {
	Data T `json:"data"`
}

type errorReply struct {
	Error *Error `json:"error"`
}

// Reply is implemented by the ack payloads handle sends, for observers of acks (metrics):
// ReplyCode is "" for {"data": …} and the error's code for {"error": …}.
type Reply interface {
	ReplyCode() string
}

// ReplyCode implements Reply.
func (dataReply[T]) ReplyCode() string { return "" }

// ReplyCode implements Reply.
func (r errorReply) ReplyCode() string { return r.Error.Code }

// run decodes, validates and calls h, turning a panic into an internal error so that nothing a
// client sends can take the process down.
func run[Req, Res any](args []any, h Handler[Req, Res]) (res Res, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	var req Req
	if len(args) == 0 {
		return res, Errorf(CodeBadRequest, "payload must be a JSON object")
	}
	if err := Decode(args[0], &req); err != nil {
		return res, err
	}
	// Decode validated &req; when Req is itself a pointer (*RoomsRequest), that is a **T, so
	// the payload's own Validate has to be called here.
	if v, ok := any(req).(Validator); ok {
		if err := v.Validate(); err != nil {
			return res, err
		}
	}
	return h(req)
}

// splitAck separates a trailing ack callback from the event arguments.
func splitAck(args []any) (socket.Ack, []any) {
	if n := len(args); n > 0 {
		if ack, ok := args[n-1].(socket.Ack); ok {
			return ack, args[:n-1]
		}
		if ack, ok := args[n-1].(func([]any, error)); ok {
			return ack, args[:n-1]
		}
	}
	return nil, args
}

// Decode turns one event argument (as the library decoded it from JSON: map[string]any, []any,
// float64, string, bool or nil) into a typed payload and validates it. Unknown fields are ignored,
// so clients may send more than the contract needs; a wrong type names the field. Binary
// attachments are not JSON and are refused wherever they are.
func Decode(arg any, into any) error {
	m, ok := arg.(map[string]any)
	if !ok {
		return Errorf(CodeBadRequest, "payload must be a JSON object")
	}
	plain, depth := plainJSON(arg, 1)
	if !plain {
		return Errorf(CodeBadRequest, "payload must be plain JSON (no binary attachments)")
	}
	// The direct path (decode_direct.go) for shallow payloads; deep ones go to encoding/json,
	// which refuses nesting beyond its limit.
	if d, ok := into.(mapDecoder); ok && depth <= maxDirectDepth && d.decodeMap(m) {
		return validate(into)
	}
	if err := decodeJSON(arg, into); err != nil {
		return err
	}
	return validate(into)
}

// decodeJSON decodes arg into into through encoding/json (marshal, then unmarshal).
func decodeJSON(arg any, into any) error {
	raw, err := json.Marshal(arg)
	if err != nil {
		return Errorf(CodeBadRequest, "payload is not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(into); err != nil && !errors.Is(err, io.EOF) {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "payload"
			}
			return Errorf(CodeBadRequest, "%s must be %s", field, jsonTypeName(te.Type.Kind().String()))
		}
		return Errorf(CodeBadRequest, "payload is malformed")
	}
	return nil
}

// validate calls Validate on into, or on what into points to: handlers may take their payload
// by value (into is *Req) or by pointer (into is **Req).
func validate(into any) error {
	if v, ok := into.(Validator); ok {
		return v.Validate()
	}
	rv := reflect.ValueOf(into)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if v, ok := rv.Elem().Interface().(Validator); ok && !isNilPointer(rv.Elem()) {
			return v.Validate()
		}
	}
	return nil
}

func isNilPointer(v reflect.Value) bool {
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// maxDirectDepth is the deepest payload decoded without encoding/json (whose limit is 10,000).
const maxDirectDepth = 64

// plainJSON reports whether v holds only what a JSON decoder produces, and how deep it nests
// (depth is v's own level).
func plainJSON(v any, depth int) (bool, int) {
	deepest := depth
	switch v := v.(type) {
	case nil, string, float64, bool, json.Number:
		return true, depth
	case map[string]any:
		for _, e := range v {
			ok, d := plainJSON(e, depth+1)
			if !ok {
				return false, d
			}
			deepest = max(deepest, d)
		}
		return true, deepest
	case []any:
		for _, e := range v {
			ok, d := plainJSON(e, depth+1)
			if !ok {
				return false, d
			}
			deepest = max(deepest, d)
		}
		return true, deepest
	default:
		return false, depth
	}
}

func jsonTypeName(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "a boolean"
	case kind == "slice" || kind == "array":
		return "an array"
	case kind == "map" || kind == "struct":
		return "an object"
	case strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float"):
		return "a number"
	default:
		return "of another type"
	}
}
