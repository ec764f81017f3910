package server

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// API error codes (SPEC §6); the status is what the HTTP client branches on first.
const (
	codeBadRequest           = namespaces.CodeBadRequest
	codeUnauthorized         = namespaces.CodeUnauthorized
	codeNotFound             = namespaces.CodeNotFound
	codeInternal             = namespaces.CodeInternal
	codeAPIDisabled          = "api_disabled"
	codeMethodNotAllowed     = "method_not_allowed"
	codePayloadTooLarge      = "payload_too_large"
	codeRequestTimeout       = "request_timeout"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeUnavailable          = namespaces.CodeUnavailable
)

// apiError is an HTTP API failure: the status and the coded error the body carries.
type apiError struct {
	status int
	err    *namespaces.Error
}

func (e *apiError) Error() string { return e.err.Error() }

// apiErrorf builds an *apiError with a formatted message.
func apiErrorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, err: namespaces.Errorf(code, format, args...)}
}

// badRequest is the 400 every validation failure answers with.
func badRequest(format string, args ...any) *apiError {
	return apiErrorf(http.StatusBadRequest, codeBadRequest, format, args...)
}

// api is the HTTP API for backends (SPEC §6), mounted at /api/v1. openapi.json is public; every
// other route needs a key.
func (s *Server) api() chi.Router {
	log := s.log.With().Str("component", "api").Logger()
	r := chi.NewRouter()
	r.Use(apiRecoverer(log))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, apiErrorf(http.StatusNotFound, codeNotFound, "no route %s %s", r.Method, r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, apiErrorf(http.StatusMethodNotAllowed, codeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path))
	})
	r.Get("/openapi.json", serveOpenAPI)
	r.Group(func(r chi.Router) {
		r.Use(apiKeyAuth(s.cfg.APIKeys))
		r.Post("/emit", s.apiHandler(log, s.emit))
		r.Post("/sockets/join", s.apiHandler(log, s.socketsJoin))
		r.Post("/sockets/leave", s.apiHandler(log, s.socketsLeave))
		r.Post("/sockets/disconnect", s.apiHandler(log, s.socketsDisconnect))
		r.Get("/sockets", s.apiHandler(log, s.listSockets))
		r.Get("/stats", s.apiHandler(log, s.stats))
	})
	return r
}

// apiReply is a successful answer: a status and the value encoded as its JSON body.
type apiReply struct {
	status int
	body   any
}

// encodedJSON is a reply body already encoded, newline included, which writeJSON writes as it is.
type encodedJSON []byte

// okBody is {"ok": true} as json.Encoder writes it, encoded once rather than on every call.
var okBody = encodedJSON("{\"ok\":true}\n")

// apiHandler adapts a handler returning (reply, error) to net/http: an *apiError is answered as
// it is, anything else is logged and answered 500 without its text.
func (s *Server) apiHandler(log zerolog.Logger, h func(http.ResponseWriter, *http.Request) (apiReply, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := h(w, r)
		if err != nil {
			var ae *apiError
			switch {
			case errors.As(err, &ae):
			case errors.Is(err, socketio.ErrUnavailable):
				ae = apiErrorf(http.StatusServiceUnavailable, codeUnavailable, "the cluster cannot take it now (Redis is unreachable); nothing was done, try again")
			default:
				log.Error().Err(err).Str("req_id", middleware.GetReqID(r.Context())).Msg("api request failed")
				ae = apiErrorf(http.StatusInternalServerError, codeInternal, "internal error")
			}
			writeAPIError(w, ae)
			return
		}
		writeJSON(w, res.status, res.body)
	}
}

// writeAPIError writes {"error": {"code", "message"}} with the error's status.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]any{"error": e.err})
}

// apiRecoverer answers a panicking handler with a JSON 500, so that API clients always get the
// error shape they parse.
func apiRecoverer(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				rec := recover()
				if rec == nil {
					return
				}
				if rec == http.ErrAbortHandler { //nolint:errorlint // sentinel re-panicked as net/http expects
					panic(rec)
				}
				log.Error().Str("req_id", middleware.GetReqID(r.Context())).Msgf("api handler panic: %v", rec)
				writeAPIError(w, apiErrorf(http.StatusInternalServerError, codeInternal, "internal error"))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// namespace returns the served namespace called name ("" means "/"); an unknown one is a 400.
func (s *Server) namespace(field, name string) (*socketio.Namespace, error) {
	if name == "" {
		name = "/"
	}
	nsp, ok := s.nsps[name]
	if !ok {
		return nil, badRequest("%s %q is not a namespace this server serves", field, name)
	}
	return nsp, nil
}

// target is the broadcast selection every write operation shares: which namespace, the rooms
// whose sockets are picked (none means every socket) and the rooms whose sockets are left out.
type target struct {
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"`
	Except    []string `json:"except"`
}

// operator validates the selection and returns its broadcast operator, which goes through the
// namespace's adapter (so it reaches every node when the adapter is Redis).
func (s *Server) operator(t target) (*socketio.Namespace, *socketio.BroadcastOperator, error) {
	nsp, err := s.namespace("namespace", t.Namespace)
	if err != nil {
		return nil, nil, err
	}
	if err := checkRoomList("rooms", t.Rooms, false); err != nil {
		return nil, nil, err
	}
	if err := checkRoomList("except", t.Except, false); err != nil {
		return nil, nil, err
	}
	return nsp, nsp.To(t.Rooms...).Except(t.Except...), nil
}

// checkRoomList validates room names, naming the offending element; required lists must not be
// empty.
func checkRoomList(field string, rooms []string, required bool) error {
	if required && len(rooms) == 0 {
		return badRequest("%s must hold at least one room", field)
	}
	for i, r := range rooms {
		if !namespaces.ValidRoomName(r) {
			return badRequest("%s[%d] must be 1-%d characters of A-Z a-z 0-9 _ - . : @", field, i, namespaces.MaxRoomName)
		}
	}
	return nil
}
