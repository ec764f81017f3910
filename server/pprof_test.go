package server

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestPprofListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	stop := servePprof(ln)
	defer stop()

	res, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatalf("GET goroutine profile: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "goroutine profile: total ") {
		t.Fatalf("goroutine profile: %d %.80q", res.StatusCode, body)
	}
}

func TestPprofNeverOnThePublicListener(t *testing.T) {
	for _, pprofAddr := range []string{"", "127.0.0.1:0"} {
		t.Run("pprof-addr="+pprofAddr, func(t *testing.T) {
			cfg := testConfig()
			cfg.PprofAddr = pprofAddr
			ts := startServer(t, cfg)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
				res, err := http.Get(ts.URL + path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound {
					t.Errorf("GET %s on the public listener: %d, want 404", path, res.StatusCode)
				}
			}
		})
	}
}

func TestServeFailsWhenThePprofAddressIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer taken.Close()
	cfg := testConfig()
	cfg.PprofAddr = taken.Addr().String()
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(cfg.LogLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	err = srv.Serve(t.Context(), ln)
	if err == nil || !strings.Contains(err.Error(), "pprof") {
		t.Fatalf("Serve with a taken pprof address: %v, want an error naming pprof", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatalf("the public listener is still open")
	}
}
