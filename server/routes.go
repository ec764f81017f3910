package server

import (
	"log"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"
)

// routes is all of the chi wiring in one place. Socket.IO is mounted outside every middleware:
// its long-polling requests hang for a heartbeat interval and its websockets are hijacked, so
// timeouts, compression and access logs would break or flood them.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()

	engine := s.admission.middleware(releaseAfterHijack(s.io.ServeHandler(nil))) // hijack.go
	r.Handle("/socket.io", engine)
	r.Handle("/socket.io/*", engine)
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
	})
	r.NotFound(s.web.ServeHTTP) // the demo page answers only what no route claims
	return r
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
