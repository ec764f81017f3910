package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/hooks"
)

func TestAckServiceTime(t *testing.T) {
	tests := []struct {
		name, data string
		want       time.Duration
	}{
		{"hook ack", `[{"data":{"svc":12345}}]`, 12345 * time.Nanosecond},
		{"no svc", `[{"data":{"rooms":["a"]}}]`, 0},
		{"svc last", `[{"data":{"x":1,"svc":7}}]`, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ackServiceTime([]byte(tt.data)); got != tt.want {
				t.Errorf("ackServiceTime(%s) = %v, want %v", tt.data, got, tt.want)
			}
		})
	}
}

func TestHookBackend(t *testing.T) {
	const secret = "s3cret"
	srv := httptest.NewServer(HookBackend(secret))
	t.Cleanup(srv.Close)
	post := func(path, body, secretUsed string) (int, string) {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set(hooks.HeaderTimestamp, ts)
		req.Header.Set(hooks.HeaderSignature, hooks.Sign(secretUsed, ts, []byte(body)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	tests := []struct {
		name, path, secret string
		status             int
		prefix             string
	}{
		{"event", "/hooks/event", secret, 200, `{"ack":[{"data":{"svc":`},
		{"connect", "/hooks/connect", secret, 200, `{}`},
		{"events", "/hooks/events", secret, 204, ``},
		{"forged", "/hooks/event", "other", 401, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.path, `{"event":"bench:hook","args":[]}`, tt.secret)
			if status != tt.status || !strings.HasPrefix(body, tt.prefix) {
				t.Errorf("%s: %d %q, want %d %q…", tt.path, status, body, tt.status, tt.prefix)
			}
		})
	}
}
