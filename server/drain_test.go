package server

import (
	"net/http"
	"testing"
	"time"
)

// TestDrainDelay: after the signal, /readyz answers 503 while /healthz, new Socket.IO handshakes
// and connected sockets are still served for the drain delay; only then are sockets closed and
// Serve returns.
func TestDrainDelay(t *testing.T) {
	cfg := testConfig()
	cfg.DrainDelay = 2 * time.Second
	ts := startServer(t, cfg)
	// Each request on a new connection: a kept-alive one would not show whether the node still
	// accepts connections.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}
	status := func(path string) int {
		res, err := client.Get(ts.URL + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}

	before := mustRawDial(t, ts, "/")
	closed := make(chan time.Time, 1)
	go func() {
		for {
			if _, err := before.read(); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()

	signalled := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop() }()

	waitFor(t, "/readyz to answer 503", func() bool { return status("/readyz") == http.StatusServiceUnavailable })
	if got := status("/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz while draining = %d, want 200", got)
	}
	during, _, err := rawDial(ts, "/", 0)
	if err != nil {
		t.Fatalf("a Socket.IO handshake and CONNECT while draining: %v", err)
	}
	defer during.close()
	if elapsed := time.Since(signalled); elapsed >= cfg.DrainDelay {
		t.Fatalf("the checks took %v, longer than the drain delay: they prove nothing", elapsed)
	}

	if err := receive(t, "Serve's return", stopped); err != nil {
		t.Fatalf("Serve returned %v after a clean drain", err)
	}
	if elapsed := time.Since(signalled); elapsed < cfg.DrainDelay {
		t.Fatalf("Serve returned %v after the signal, before the drain delay (%v)", elapsed, cfg.DrainDelay)
	}
	if at := receive(t, "the connected socket's close", closed); at.Sub(signalled) < cfg.DrainDelay {
		t.Fatalf("the connected socket was closed %v after the signal, before the drain delay", at.Sub(signalled))
	}
	if got := status("/readyz"); got != 0 {
		t.Fatalf("/readyz after the drain = %d, want the connection refused", got)
	}
}
