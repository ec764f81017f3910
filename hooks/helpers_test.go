package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "s3cret"

// backend is a test app backend: it checks every request as a real one should (method, path,
// content type, signature) and hands the hook's name and body to handle.
type backend struct {
	t   *testing.T
	srv *httptest.Server
	// requests counts the requests that reached handle.
	requests atomic.Int64
}

type handleFunc func(w http.ResponseWriter, r *http.Request, hook string, body []byte)

func newBackend(t *testing.T, handle handleFunc) *backend {
	t.Helper()
	b := &backend{t: t}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the client gave up
		}
		hook, ok := strings.CutPrefix(r.URL.Path, "/app/")
		switch {
		case !ok || (hook != hookConnect && hook != hookEvent && hook != hookEvents):
			t.Errorf("backend: request to %s", r.URL.Path)
		case r.Method != http.MethodPost:
			t.Errorf("backend: method %s", r.Method)
		case r.Header.Get("Content-Type") != "application/json":
			t.Errorf("backend: content type %q", r.Header.Get("Content-Type"))
		case !json.Valid(body):
			t.Errorf("backend: %s body is not JSON: %q", hook, body)
		}
		if err := Verify(testSecret, r.Header.Get(HeaderTimestamp), body, r.Header.Get(HeaderSignature), time.Now(), time.Minute); err != nil {
			t.Errorf("backend: %s: %v", hook, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		b.requests.Add(1)
		handle(w, r, hook, body)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) url() string { return b.srv.URL + "/app" }

// newClient starts a Client on b with cfg's settings (URL and Secret filled) and closes it when
// the test ends.
func newClient(t *testing.T, b *backend, cfg Config) *Client {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = b.url()
	}
	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// answer writes status and body.
func answer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for the condition
	}
}

// counterValue reads a series of the Client's metrics by name and labels.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// syncBuffer is a log sink safe for the Client's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// goroutinesIn counts the goroutines whose stack has fn in it.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			count++
		}
	}
	return count
}

// countingTransport counts the response body bytes the client read.
type countingTransport struct {
	base *http.Transport
	read atomic.Int64
}

func (ct *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := ct.base.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &ct.read}
	}
	return resp, err
}

func (ct *countingTransport) CloseIdleConnections() { ct.base.CloseIdleConnections() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// gate is a channel handlers wait on until the test opens it; a test that fails before opening
// it has it opened at cleanup, so the test server can close.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait blocks until the gate opens or the request ends.
func (g *gate) wait(r *http.Request) {
	select {
	case <-g.ch:
	case <-r.Context().Done():
	}
}

// openAtCleanup opens g when the test ends, before the servers made earlier are closed.
func (g *gate) openAtCleanup(t *testing.T) { t.Cleanup(g.open) }
