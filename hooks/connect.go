package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// User is a socket's identity (SPEC §2).
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Socket is a socket as hook bodies show it. Rooms are without the socket's own id; the connect
// hook does not send them.
type Socket struct {
	ID        string
	Namespace string
	User      User
	Rooms     []string
}

// wireSocket is Socket in a body; rooms is always an array, [] for none.
type wireSocket struct {
	ID        string   `json:"id"`
	Namespace string   `json:"namespace"`
	User      User     `json:"user"`
	Rooms     []string `json:"rooms"`
}

func (s Socket) wire() wireSocket {
	rooms := s.Rooms
	if rooms == nil {
		rooms = []string{}
	}
	return wireSocket{ID: s.ID, Namespace: s.Namespace, User: s.User, Rooms: rooms}
}

// ConnectRequest is what the connect hook is told about a namespace CONNECT (SPEC §8.1).
type ConnectRequest struct {
	// Socket is the socket connecting; its Rooms are not sent.
	Socket Socket
	// Auth is the handshake's auth object. Its "token" is never sent, whoever put it there.
	Auth map[string]json.RawMessage
	// Headers are the handshake headers chosen by --hook-headers. Names are sent lower-case;
	// "authorization" is never sent.
	Headers map[string]string
	// Address is the client's address.
	Address string
	// Query is the handshake's query parameters.
	Query map[string]string
}

type wireConnect struct {
	Socket struct {
		ID        string `json:"id"`
		Namespace string `json:"namespace"`
		User      User   `json:"user"`
	} `json:"socket"`
	Auth    map[string]json.RawMessage `json:"auth"`
	Headers map[string]string          `json:"headers"`
	Address string                     `json:"address"`
	Query   map[string]string          `json:"query"`
}

func encodeConnect(req ConnectRequest) ([]byte, error) {
	var w wireConnect
	w.Socket.ID, w.Socket.Namespace, w.Socket.User = req.Socket.ID, req.Socket.Namespace, req.Socket.User
	w.Auth = make(map[string]json.RawMessage, len(req.Auth))
	for k, v := range req.Auth {
		if k != "token" {
			w.Auth[k] = v
		}
	}
	w.Headers = make(map[string]string, len(req.Headers))
	for k, v := range req.Headers {
		if k = strings.ToLower(k); k != "authorization" {
			w.Headers[k] = v
		}
	}
	w.Address = req.Address
	w.Query = req.Query
	if w.Query == nil {
		w.Query = map[string]string{}
	}
	return json.Marshal(w)
}

// ConnectResult is an accepted connect: what the backend set, each nil when it did not.
type ConnectResult struct {
	// User is the identity the backend gives the socket.
	User *User
	// Rooms are the rooms to join before the CONNECT is answered; their names are not checked
	// here.
	Rooms []string
	// Data is kept for later hooks as the socket's data; nil when absent or null.
	Data json.RawMessage
}

// Connect asks the backend whether a socket may connect (SPEC §8.1). An accepted connect returns
// its result; any other ends in an *Error: Refused with the backend's code, CodeUnavailable when
// it did not answer (in time, or with a 5xx), CodeInternal when its answer was not one. ctx bounds
// the wait for a slot and the request (with Config.Timeout).
func (c *Client) Connect(ctx context.Context, req ConnectRequest) (ConnectResult, error) {
	if !c.begin() {
		return ConnectResult{}, unavailable(outcomeCanceled, ErrClosed)
	}
	defer c.wg.Done()
	body, err := encodeConnect(req)
	if err != nil {
		// Only an Auth value that is not JSON gets here: the caller's bug, not the backend's.
		return ConnectResult{}, &Error{Code: CodeInternal, Message: "internal error", outcome: outcomeInvalid, cause: fmt.Errorf("encode connect request: %w", err)}
	}
	if herr := c.acquire(ctx); herr != nil {
		return ConnectResult{}, herr
	}
	start := time.Now()
	resp, herr := c.post(ctx, hookConnect, body)
	c.release()
	var res ConnectResult
	if herr == nil {
		res, herr = decodeConnect(resp.status, resp.body)
	}
	if herr = c.finish(hookConnect, start, resp.status, herr); herr != nil {
		return ConnectResult{}, herr
	}
	return res, nil
}

// wireError is the backend's {"error": {"code", "message"}}.
type wireError struct {
	Code    *string `json:"code"`
	Message *string `json:"message"`
}

// decodeConnect reads the connect hook's answer: a status under 500 and its body (at most the
// cap). It never returns both a result and an error.
func decodeConnect(status int, body []byte) (ConnectResult, *Error) {
	if status == http.StatusNoContent {
		return ConnectResult{}, nil
	}
	if status >= 400 && status < 500 {
		return ConnectResult{}, decodeRefusal(status, body)
	}
	if status < 200 || status > 299 {
		return ConnectResult{}, invalid(fmt.Errorf("status %d", status))
	}
	var w struct {
		User  json.RawMessage `json:"user"`
		Rooms json.RawMessage `json:"rooms"`
		Data  json.RawMessage `json:"data"`
		Error json.RawMessage `json:"error"`
	}
	if err := decodeObject(body, &w); err != nil {
		return ConnectResult{}, invalid(err)
	}
	if present(w.Error) {
		e, err := decodeError(w.Error)
		if err != nil {
			return ConnectResult{}, invalid(err)
		}
		return ConnectResult{}, e
	}
	var res ConnectResult
	if present(w.User) {
		var u struct {
			ID   *string `json:"id"`
			Name *string `json:"name"`
		}
		if err := decodeObject(w.User, &u); err != nil {
			return ConnectResult{}, invalid(fmt.Errorf("user: %w", err))
		}
		if u.ID == nil || *u.ID == "" {
			return ConnectResult{}, invalid(errors.New("user: id is not a non-empty string"))
		}
		res.User = &User{ID: *u.ID}
		if u.Name != nil {
			res.User.Name = *u.Name
		}
	}
	var err error
	if res.Rooms, err = decodeStrings("rooms", w.Rooms); err != nil {
		return ConnectResult{}, invalid(err)
	}
	if present(w.Data) {
		res.Data = w.Data
	}
	return res, nil
}

// decodeRefusal reads a 4xx: the body's error if it has one, else the status's code.
func decodeRefusal(status int, body []byte) *Error {
	var w struct {
		Error json.RawMessage `json:"error"`
	}
	if decodeObject(body, &w) == nil && present(w.Error) {
		if e, err := decodeError(w.Error); err == nil {
			return e
		}
	}
	return refused(statusCode(status), http.StatusText(status))
}

// decodeError reads {"code", "message"}: code a non-empty string, message a string or absent.
func decodeError(raw json.RawMessage) (*Error, error) {
	var e wireError
	if err := decodeObject(raw, &e); err != nil {
		return nil, fmt.Errorf("error: %w", err)
	}
	if e.Code == nil || *e.Code == "" {
		return nil, errors.New("error: code is not a non-empty string")
	}
	msg := ""
	if e.Message != nil {
		msg = *e.Message
	}
	return refused(*e.Code, msg), nil
}

// decodeObject unmarshals a JSON object into v. Its errors name a field at most, never a value:
// they are logged, and an answer is not logged.
func decodeObject(data []byte, v any) error {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var terr *json.UnmarshalTypeError
		if errors.As(err, &terr) {
			return fmt.Errorf("%s has the wrong type", fieldName(terr.Field))
		}
		return errors.New("not JSON")
	}
	return nil
}

func fieldName(f string) string {
	if f == "" {
		return "a value"
	}
	return "field " + f
}

// present reports whether a field was in the object and not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// decodeStrings reads an optional array of strings: nil when absent or null, non-nil (maybe
// empty) when given.
func decodeStrings(field string, raw json.RawMessage) ([]string, error) {
	if !present(raw) {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, fmt.Errorf("%s is not an array", field)
	}
	// Pointers, because a null would be read into a string as "" without an error.
	var ptrs []*string
	if err := json.Unmarshal(raw, &ptrs); err != nil {
		return nil, fmt.Errorf("%s is not an array of strings", field)
	}
	out := make([]string, len(ptrs))
	for i, p := range ptrs {
		if p == nil {
			return nil, fmt.Errorf("%s is not an array of strings", field)
		}
		out[i] = *p
	}
	return out, nil
}

// decodeArgs reads an optional array of any JSON values, as decodeStrings does.
func decodeArgs(field string, raw json.RawMessage) ([]json.RawMessage, error) {
	if !present(raw) {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, fmt.Errorf("%s is not an array", field)
	}
	out := []json.RawMessage{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s is not an array", field)
	}
	return out, nil
}
