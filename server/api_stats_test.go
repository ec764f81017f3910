package server

import (
	"net/http"
	"testing"
)

// TestAPIStatsInConformanceMode: the stats of a node serving the protocol suites' reference
// namespaces list those ("/" and "/custom") instead of failing on the product namespaces it does
// not serve (issue 18: a nil namespace was dereferenced, answered 500).
func TestAPIStatsInConformanceMode(t *testing.T) {
	cfg := apiConfig()
	cfg.Conformance = true
	ts := startServer(t, cfg)
	dial(t, ts.URL, dialOptions{})
	dial(t, ts.URL, dialOptions{nsp: "/custom"})

	res := get("/stats").do(t, ts.URL)
	if res.status != http.StatusOK {
		t.Fatalf("GET /stats in conformance mode: %d %s", res.status, res.raw)
	}
	nsps, _ := res.body["namespaces"].(map[string]any)
	eq(t, nsps, map[string]any{
		"/":       map[string]any{"sockets": 1.0, "rooms": 0.0},
		"/custom": map[string]any{"sockets": 1.0, "rooms": 0.0},
	})
	eq(t, res.body["connections"], 2.0)
	eq(t, res.body["nodes"], 1.0)
}
