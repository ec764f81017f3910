package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
)

// bodyTimeout is how long an API body has to arrive once the request's head has (SPEC §6): a
// client that declares a body and stalls holds a goroutine and a descriptor until then, not
// forever.
const bodyTimeout = 10 * time.Second

// bodyReadTimeout is the API's body deadline: bodyTimeout unless a test shortened it.
func (c Config) bodyReadTimeout() time.Duration {
	if c.bodyTimeout > 0 {
		return c.bodyTimeout
	}
	return bodyTimeout
}

// decodeBody reads a JSON object body into a *T. The body must be declared application/json
// (415), fit in limit bytes (413), arrive within timeout (408) and hold exactly one object whose
// keys are T's json field names, spelled exactly (encoding/json alone would accept "Event" for
// "event") and each given once; a key T does not have, a key given twice or a value of the wrong
// type is a 400 naming the field.
func decodeBody[T any](w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) (*T, error) {
	if !isJSONMediaType(r.Header.Get("Content-Type")) {
		return nil, apiErrorf(http.StatusUnsupportedMediaType, codeUnsupportedMediaType, "the body must be application/json")
	}
	tooLarge := func() error {
		return apiErrorf(http.StatusRequestEntityTooLarge, codePayloadTooLarge, "the body is larger than %d bytes", limit)
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	// The deadline is the connection's, so a stalled read ends when it passes. It must not
	// outlive the body: net/http reads ahead on the connection while the handler runs (to notice
	// the client leaving), and a deadline passing then would cancel the request's context, which
	// an emit waiting for acks (up to a minute) still needs. net/http lifts it itself when the
	// body ends (Go 1.26's startBackgroundRead); it is lifted here too, so that nothing depends
	// on that detail. After a failed read it stays: net/http would otherwise wait for the rest of
	// a small body to keep the connection. Writers that cannot take a deadline (HTTP/2, tests'
	// recorders) are read without one.
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge()
		case errors.As(err, &ne) && ne.Timeout():
			// The rest of the body may still come: the connection cannot carry another request.
			w.Header().Set("Connection", "close")
			return nil, apiErrorf(http.StatusRequestTimeout, codeRequestTimeout, "the body was not received within %s", timeout)
		}
		return nil, badRequest("the body could not be read")
	}
	if deadline {
		_ = rc.SetReadDeadline(time.Time{})
	}
	return decodeJSON[T](body)
}

// isJSONMediaType reports whether a Content-Type header declares application/json. The header
// every client sends is exactly that, which needs no parsing (mime.ParseMediaType builds a map of
// parameters even when there are none).
func isJSONMediaType(header string) bool {
	if header == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(header)
	return err == nil && mt == "application/json"
}

// firstBodyBuffer is readAll's first buffer, io.ReadAll's: what any client may cost before it
// sends a byte.
const firstBodyBuffer = 512

// readAll is io.ReadAll with a declared Content-Length (size; -1 for none) as a hint: a body
// declared smaller than the first buffer gets exactly one more byte than its length (to see the
// end without growing), where io.ReadAll would allocate 512 bytes for the ~100 of a typical call;
// a larger one grows with the bytes that arrive, doubling, its last step cut to the declared
// length. The buffer never starts from the declared length: a client declaring a megabyte and
// sending nothing would hold a megabyte until its deadline.
func readAll(r io.Reader, size int64) ([]byte, error) {
	first := int64(firstBodyBuffer)
	if size >= 0 && size < first {
		first = size + 1
	}
	b := make([]byte, 0, first)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			next := 2 * int64(cap(b))
			if end := size + 1; size >= 0 && int64(len(b)) < end && next > end {
				next = end
			}
			grown := make([]byte, len(b), next)
			copy(grown, b)
			b = grown
		}
	}
}

// decodeJSON is the parsing half of decodeBody, separate so that it can be fuzzed.
//
// Nearly every body a backend sends is well formed, so the common case costs one decode: the
// body is decoded straight into a T, then onlyKnownKeys checks the spelling of its keys (which
// encoding/json does not). Any body that fails either is handed to decodeJSONExact, the slower
// two-pass decode that finds which error to report; both accept the same bodies into the same
// values (FuzzDecodeJSONFastPath).
func decodeJSON[T any](body []byte) (*T, error) {
	v := new(T)
	if json.Unmarshal(body, v) == nil && onlyKnownKeys(body, bodyFields(reflect.TypeFor[T]())) {
		return v, nil
	}
	return decodeJSONExact[T](body)
}

// decodeJSONExact decodes body into a *T or returns the 400 that says what is wrong with it,
// checking in order: one JSON value, an object, each key once, only T's keys, then the type of
// each value. Only the request's own keys are checked for duplicates: those inside a value (an
// emit's data or args) are the app's, passed on as encoding/json reads them (the last one wins,
// as with JSON.parse).
func decodeJSONExact[T any](body []byte) (*T, error) {
	var keys map[string]json.RawMessage
	if err := strictDecode(body, &keys); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) || bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
			return nil, badRequest("the body must be a JSON object")
		}
		return nil, badRequest("the body is not valid JSON: %s", jsonSyntaxMessage(err))
	}
	if keys == nil {
		return nil, badRequest("the body must be a JSON object")
	}
	if k, ok := duplicateKey(body); ok {
		return nil, badRequest("field %q is given twice", k)
	}
	allowed := bodyFields(reflect.TypeFor[T]())
	for _, k := range slices.Sorted(maps.Keys(keys)) { // sorted: the same body names the same field
		if _, ok := allowed[k]; !ok {
			return nil, badRequest("unknown field %q", k)
		}
	}
	v := new(T)
	if err := strictDecode(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, badRequest("%s must be %s", te.Field, jsonTypeName(te.Type))
		}
		return nil, badRequest("the body does not match the request schema")
	}
	return v, nil
}

// duplicateKey returns the first key of the object body (valid JSON) that is given twice.
func duplicateKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := tok.(string)
		if seen[key] {
			return key, true
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", false
		}
	}
	return "", false
}

// maxFastKeys is how many keys onlyKnownKeys keeps to spot a duplicate; a body with more takes
// the thorough path.
const maxFastKeys = 16

// onlyKnownKeys reports whether body, which must be one valid JSON value, is an object whose
// keys are all in allowed, spelled exactly, without escapes and each once. It follows only the
// structure a valid document has, so a false means "not sure" as well as "no": the caller then
// decodes the body again the thorough way.
func onlyKnownKeys(body []byte, allowed map[string]reflect.StructField) bool {
	var seen [maxFastKeys][]byte // slices of body: no allocation
	keys := 0
	i := skipJSONSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i++
	for {
		i = skipJSONSpace(body, i)
		if i < len(body) && body[i] == ',' {
			i = skipJSONSpace(body, i+1)
		}
		if i >= len(body) {
			return false
		}
		if body[i] == '}' {
			return true
		}
		if body[i] != '"' {
			return false
		}
		end := bytes.IndexByte(body[i+1:], '"')
		if end < 0 {
			return false
		}
		key := body[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false // escaped: encoding/json would unquote it first
		}
		if _, ok := allowed[string(key)]; !ok {
			return false
		}
		if keys == maxFastKeys {
			return false
		}
		for _, k := range seen[:keys] {
			if bytes.Equal(k, key) {
				return false
			}
		}
		seen[keys] = key
		keys++
		i = skipJSONSpace(body, i+end+2)
		if i >= len(body) || body[i] != ':' {
			return false
		}
		if i = skipJSONValue(body, i+1); i < 0 {
			return false
		}
	}
}

// skipJSONSpace returns the index of the first byte at or after i that is not JSON whitespace.
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns the index just past the valid JSON value that starts at or after i (its
// leading whitespace included) and is followed by ',' or the end of its object; -1 if body ends
// first.
func skipJSONValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			if i = skipJSONString(b, i); i < 0 {
				return -1
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object, right after a number or literal
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// skipJSONString returns the index of the quote that closes the string opening at b[i].
func skipJSONString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// strictDecode decodes exactly one JSON value from body into v, refusing trailing data.
func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// jsonSyntaxMessage describes a syntax error without echoing the body.
func jsonSyntaxMessage(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of the body"
	default:
		return "data after the JSON value"
	}
}

// fieldCache memoizes jsonFields per request type, as encoding/json memoizes its own field
// lists: the answer is fixed at compile time, and building it took a sixth of every decode.
var fieldCache sync.Map // reflect.Type → map[string]reflect.StructField

// bodyFields is jsonFields(t), built once per type. The map is shared: callers only read it.
func bodyFields(t reflect.Type) map[string]reflect.StructField {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.StructField)
	}
	f, _ := fieldCache.LoadOrStore(t, jsonFields(t))
	return f.(map[string]reflect.StructField)
}

// jsonFields lists the json names of t's fields (t a struct), with the fields of untagged
// embedded structs promoted as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for n, pf := range jsonFields(f.Type) {
				out[n] = pf
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// jsonTypeName says which JSON type a Go type decodes from.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "of another type"
	}
}
