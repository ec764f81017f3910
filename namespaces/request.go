package namespaces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Validator is implemented by request payloads that check their own limits after decoding.
type Validator interface {
	Validate() error
}

// dataReply and errorReply are the two ack payloads, {"data": …} and {"error": …}.
type dataReply[T any] struct {
	Data T `json:"data"`
}

type errorReply struct {
	Error *Error `json:"error"`
}

// Reply is implemented by the ack payloads the routes send, for observers of acks (metrics):
// ReplyCode is "" for {"data": …} and the error's code for {"error": …}.
type Reply interface {
	ReplyCode() string
}

// ReplyCode implements Reply.
func (dataReply[T]) ReplyCode() string { return "" }

// ReplyCode implements Reply.
func (r errorReply) ReplyCode() string { return r.Error.Code }

// DataReply is {"data": v}.
func DataReply(v any) any { return dataReply[any]{Data: v} }

// ErrorReply is {"error": e}.
func ErrorReply(e *Error) any { return errorReply{Error: e} }

// Routes is a namespace's table of request events, built once: every socket's events are looked
// up here, not registered per socket. T is the per-socket state the handlers get.
type Routes[T any] struct {
	log    zerolog.Logger
	events map[string]func(st T, ev *socketio.Event)
}

// NewRoutes returns an empty table whose failed requests are logged to log.
func NewRoutes[T any](log zerolog.Logger) *Routes[T] {
	return &Routes[T]{log: log, events: map[string]func(T, *socketio.Event){}}
}

// Route adds a request event. It is the one place where an event's arguments become a typed
// payload: the first argument is decoded into Req and validated, the handler runs, and the ack
// (when the client asked for one) is called exactly once with {"data": …} or
// {"error": {"code", "message"}}.
func Route[T, Req, Res any](r *Routes[T], event string, h func(st T, req Req) (Res, error)) {
	r.events[event] = func(st T, ev *socketio.Event) {
		res, err := run(ev, func(req Req) (Res, error) { return h(st, req) })
		if err != nil {
			ce := asClientError(err)
			if ce.Code == CodeInternal {
				r.log.Error().Str("nsp", ev.Socket().Namespace().Name()).Str("sid", ev.Socket().ID()).
					Str("event", ev.Name).Err(err).Msg("request failed")
			}
			ev.Ack(errorReply{Error: ce})
			return
		}
		ev.Ack(dataReply[Res]{Data: res})
	}
}

// Has reports whether event is one of r's.
func (r *Routes[T]) Has(event string) bool {
	_, ok := r.events[event]
	return ok
}

// Handle answers ev when it is one of r's and reports whether it was.
func (r *Routes[T]) Handle(st T, ev *socketio.Event) bool {
	h, ok := r.events[ev.Name]
	if !ok {
		return false
	}
	h(st, ev)
	return true
}

// run decodes, validates and calls h, turning a panic into an internal error so that nothing a
// client sends can take the process down.
func run[Req, Res any](ev *socketio.Event, h func(Req) (Res, error)) (res Res, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	var req Req
	if err := Decode(ev.Args, &req); err != nil {
		return res, err
	}
	return h(req)
}

// Decode decodes the first argument of args into a typed payload and validates it. Unknown
// fields are ignored, so clients may send more than the contract needs; a wrong type names the
// field. Binary data is refused wherever it is: requests are JSON.
func Decode(args *socketio.Args, into any) error {
	if args.Len() == 0 {
		return Errorf(CodeBadRequest, "payload must be a JSON object")
	}
	if args.HasBinary() {
		return Errorf(CodeBadRequest, "payload must be plain JSON (no binary attachments)")
	}
	raw, err := args.JSON(0)
	if err != nil || len(raw) == 0 || raw[0] != '{' {
		return Errorf(CodeBadRequest, "payload must be a JSON object")
	}
	if err := decodeJSON(raw, into); err != nil {
		return err
	}
	return validate(into)
}

// decodeJSON decodes raw into into, naming the field of a type error.
func decodeJSON(raw []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(into); err != nil {
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

// validate calls Validate on into, or on what into points to.
func validate(into any) error {
	if v, ok := into.(Validator); ok {
		return v.Validate()
	}
	return nil
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
