package namespaces

import (
	"errors"
	"fmt"

	"github.com/switchboard/switchboard/socketio"
)

// Error codes a client branches on (SPEC §2).
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeRateLimited  = "rate_limited"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
)

// Error is a failure a client is told about: a code to branch on and a message for humans.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// asClientError turns any handler error into what the client may see: an *Error as it is, the
// cluster being unavailable as "unavailable", anything else as "internal" without its text.
func asClientError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, socketio.ErrUnavailable):
		return &Error{Code: CodeUnavailable, Message: "the cluster cannot take it now; try again"}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

// AsClientError is asClientError for the server's own acks (rate limits, hooks).
func AsClientError(err error) *Error { return asClientError(err) }
