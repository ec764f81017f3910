package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofHandler serves the runtime profiles of net/http/pprof on a mux of its own: the profiles
// are never reachable through the public router, only on --pprof-addr.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startPprof serves pprofHandler on --pprof-addr until stop is called; without the setting it
// does nothing.
func (s *Server) startPprof() (stop func(), err error) {
	if s.cfg.PprofAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", s.cfg.PprofAddr)
	if err != nil {
		return nil, fmt.Errorf("server: pprof listen on %s: %w", s.cfg.PprofAddr, err)
	}
	s.log.Info().Str("component", "pprof").Str("addr", ln.Addr().String()).Msg("pprof listening")
	return servePprof(ln), nil
}

// servePprof serves the profiles on ln; stop closes the listener and every connection.
func servePprof(ln net.Listener) (stop func()) {
	// No write timeout: a CPU profile or trace streams for as long as it was asked to.
	srv := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	return func() { _ = srv.Close(); <-done }
}
