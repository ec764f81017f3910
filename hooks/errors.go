package hooks

import (
	"errors"
	"net/http"
)

// Codes this package gives an *Error when the backend did not decide (SPEC §2). A refusal carries
// the backend's own code instead.
const (
	// CodeUnavailable: the backend did not answer in time, could not be reached, or answered 5xx.
	CodeUnavailable = "unavailable"
	// CodeInternal: the backend answered something that is not the hook's answer.
	CodeInternal = "internal"
)

// ErrBackpressure is what Forward returns when a key already has Config.MaxQueued events
// waiting; the caller answers the event rate_limited.
var ErrBackpressure = errors.New("hooks: too many events waiting for this socket")

// ErrClosed is what Forward returns after Close began, and what the *Error of a request that
// Close cut short (or that came after it) wraps.
var ErrClosed = errors.New("hooks: client closed")

// Error is a hook request that did not end in an accepted answer. Code and Message may be shown
// to the client: Code is the backend's own for a refusal, else CodeUnavailable or CodeInternal,
// and Message is then a fixed text of ours. The cause (Unwrap) is for logs only; this package has
// logged it already.
type Error struct {
	Code    string
	Message string
	// Refused says the backend itself gave this error (a 4xx, or a 200 with "error").
	Refused bool

	outcome string
	cause   error
}

func (e *Error) Error() string {
	s := "hooks: " + e.Code
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause, such as context.DeadlineExceeded or ErrClosed.
func (e *Error) Unwrap() error { return e.cause }

// Messages of the errors this package makes; a client may see them.
const (
	msgUnavailable = "the app backend is unavailable"
	msgInternal    = "the app backend gave an invalid answer"
)

func unavailable(outcome string, cause error) *Error {
	return &Error{Code: CodeUnavailable, Message: msgUnavailable, outcome: outcome, cause: cause}
}

func invalid(cause error) *Error {
	return &Error{Code: CodeInternal, Message: msgInternal, outcome: outcomeInvalid, cause: cause}
}

func refused(code, message string) *Error {
	return &Error{Code: code, Message: message, Refused: true, outcome: outcomeRefused}
}

// statusCode is the code of a 4xx that did not say one (see the package doc).
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusTooManyRequests:
		return "rate_limited"
	default:
		return "forbidden"
	}
}
