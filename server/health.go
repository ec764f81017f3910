package server

import (
	"encoding/json"
	"net/http"
	"time"
)

// healthz answers 200 while the process runs: a node whose Redis is down still serves its own
// clients. With a Redis adapter it says how Redis is ("redis": "up" or "down", and since when).
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	body := map[string]any{"status": "ok"}
	if st, ok := s.backend.Status(); ok {
		body["redis"] = st.Redis
		if !st.DownSince.IsZero() {
			body["redisDownSince"] = st.DownSince.UTC().Format(time.RFC3339)
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// readyz answers 200 once the node serves and 503 while it starts or drains, so that a load
// balancer stops sending it new clients before it closes them.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if b, ok := v.(encodedJSON); ok {
		_, _ = w.Write(b)
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
