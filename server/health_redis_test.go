package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/redistest"
)

// TestRedisOutageInHealthAndMetrics: while the adapter's Redis is away, /healthz stays 200 and
// says so, /metrics reports the adapter down and counts the outage; both recover by themselves.
func TestRedisOutageInHealthAndMetrics(t *testing.T) {
	redis := redistest.Start(t)
	cfg := testConfig()
	cfg.Adapter = AdapterRedis
	cfg.RedisURL = redis.URL()
	ts := startServer(t, cfg)

	get := func(path string) (int, string) {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	redisField := func() string {
		code, body := get("/healthz")
		if code != http.StatusOK {
			t.Fatalf("/healthz = %d during the test, want 200 while the process runs", code)
		}
		var h map[string]any
		_ = json.Unmarshal([]byte(body), &h)
		s, _ := h["redis"].(string)
		return s
	}
	metric := func(line string) bool {
		_, body := get("/metrics")
		return strings.Contains(body, line)
	}

	waitFor(t, "redis up", func() bool { return redisField() == "up" && metric(`switchboard_adapter_up{adapter="redis"} 1`) })
	redis.Stop()
	waitFor(t, "the outage in /healthz and /metrics", func() bool {
		return redisField() == "down" && metric(`switchboard_adapter_up{adapter="redis"} 0`) &&
			metric(`switchboard_adapter_outages_total{adapter="redis"} 1`)
	})
	redis.Restart()
	waitFor(t, "the recovery", func() bool { return redisField() == "up" && metric(`switchboard_adapter_up{adapter="redis"} 1`) })
}
