package server

import (
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"
)

// routes is all of the chi wiring in one place. Socket.IO is served outside every middleware:
// its long-polling requests hang for a heartbeat interval and its websockets are hijacked, so
// timeouts, compression and access logs would break or flood them.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()

	if s.echo != nil {
		r.Handle("/engine.io/*", s.echo) // conformance mode only
	}

	r.Group(func(r chi.Router) {
		r.Use(middleware.RequestID)
		r.Use(accessLog(s.log.With().Str("component", "http").Logger()))
		r.Use(s.metrics.InstrumentHTTP)
		r.Use(middleware.Recoverer)
		r.Handle("/metrics", s.metrics.Handler())
		r.Get("/healthz", s.healthz)
		r.Get("/readyz", s.readyz)
		r.Mount("/api/v1", s.api())
		s.mountAdminUI(r) // the stock admin UI at /admin-ui/ when installed (admin_ui.go)
	})
	r.NotFound(s.web.ServeHTTP) // the demo page answers only what no route claims

	return socketIOBeside(s.admission.middleware(s.io), r)
}

// socketIOBeside sends /socket.io and /socket.io/… to engine, before chi sees them, and the rest
// to router: chi would hand the engine a copy of each request with its route context, for
// nothing. The paths are matched as chi would match them (the raw path when the URL has one).
func socketIOBeside(engine, router http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		if path == "/socket.io" || strings.HasPrefix(path, "/socket.io/") {
			engine.ServeHTTP(w, r)
			return
		}
		router.ServeHTTP(w, r)
	})
}

// accessLog logs one line per request with its id, status and duration. When log's level is
// above info no line can ever be written (zerolog's global level only raises it), so the
// middleware steps aside rather than wrap every response writer for nothing.
func accessLog(log zerolog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if log.GetLevel() > zerolog.InfoLevel {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			start := time.Now()
			next.ServeHTTP(ww, r)
			log.Info().
				Str("req_id", middleware.GetReqID(r.Context())).
				Str("method", r.Method).
				Str("path", r.URL.Path).
				Int("status", ww.Status()).
				Int("bytes", ww.BytesWritten()).
				Dur("duration", time.Since(start)).
				Msg("request")
		})
	}
}

// newStdLogger adapts zerolog for net/http's error log.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(l, "", 0)
}
