package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestConnectRequestBody(t *testing.T) {
	got := make(chan []byte, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		got <- body
		answer(w, 200, `{}`)
	})
	c := newClient(t, b, Config{})
	_, err := c.Connect(context.Background(), ConnectRequest{
		Socket:  Socket{ID: "sid1", Namespace: "/game", User: User{ID: "u1", Name: "Ann"}, Rooms: []string{"not-sent"}},
		Auth:    map[string]json.RawMessage{"token": json.RawMessage(`"SECRET-TOKEN"`), "name": json.RawMessage(`"ann"`), "n": json.RawMessage(`{"a":[1]}`)},
		Headers: map[string]string{"Cookie": "sess=1", "authorization": "Bearer SECRET-TOKEN", "AUTHORIZATION": "x"},
		Address: "10.0.0.1",
		Query:   map[string]string{"room": "r1"},
	})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	body := <-got
	if strings.Contains(string(body), "SECRET-TOKEN") {
		t.Errorf("body carries the token: %s", body)
	}
	var v any
	json.Unmarshal(body, &v)
	want := map[string]any{
		"socket":  map[string]any{"id": "sid1", "namespace": "/game", "user": map[string]any{"id": "u1", "name": "Ann"}},
		"auth":    map[string]any{"name": "ann", "n": map[string]any{"a": []any{1.0}}},
		"headers": map[string]any{"cookie": "sess=1"},
		"address": "10.0.0.1",
		"query":   map[string]any{"room": "r1"},
	}
	if !reflect.DeepEqual(v, any(want)) {
		t.Errorf("body = %s\nwant %v", body, want)
	}
}

func TestConnectEmptyRequestBody(t *testing.T) {
	got := make(chan []byte, 1)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		got <- body
		answer(w, 200, `{}`)
	})
	c := newClient(t, b, Config{})
	if _, err := c.Connect(context.Background(), ConnectRequest{Socket: Socket{ID: "s"}}); err != nil {
		t.Fatal(err)
	}
	const want = `{"socket":{"id":"s","namespace":"","user":{"id":"","name":""}},"auth":{},"headers":{},"address":"","query":{}}`
	if body := string(<-got); body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
}

// connectCases are the answers of §8.1 and what Connect makes of them; they run against the
// event hook too where the rule is the same (forward_test.go).
var connectCases = []struct {
	name        string
	status      int
	body        string
	want        ConnectResult
	wantCode    string // "" = accepted
	wantMessage string
	wantRefused bool
	outcome     string
}{
	{name: "accepted with everything", status: 200,
		body: `{"user":{"id":"u9","name":"Bo"},"rooms":["a","b"],"data":{"level":3}}`,
		want: ConnectResult{User: &User{ID: "u9", Name: "Bo"}, Rooms: []string{"a", "b"}, Data: json.RawMessage(`{"level":3}`)}, outcome: outcomeOK},
	{name: "accepted empty", status: 200, body: `{}`, outcome: outcomeOK},
	{name: "accepted with nulls", status: 200, body: `{"user":null,"rooms":null,"data":null,"error":null}`, outcome: outcomeOK},
	{name: "accepted empty rooms", status: 200, body: ` {"rooms":[]} `, want: ConnectResult{Rooms: []string{}}, outcome: outcomeOK},
	{name: "accepted data string", status: 200, body: `{"data":"x"}`, want: ConnectResult{Data: json.RawMessage(`"x"`)}, outcome: outcomeOK},
	{name: "accepted user without name", status: 200, body: `{"user":{"id":"u"}}`, want: ConnectResult{User: &User{ID: "u"}}, outcome: outcomeOK},
	{name: "unknown fields ignored", status: 200, body: `{"later":1}`, outcome: outcomeOK},
	{name: "204", status: 204, body: ``, outcome: outcomeOK},
	{name: "201 with body", status: 201, body: `{"rooms":["x"]}`, want: ConnectResult{Rooms: []string{"x"}}, outcome: outcomeOK},

	{name: "200 error", status: 200, body: `{"error":{"code":"banned","message":"go away"}}`, wantCode: "banned", wantMessage: "go away", wantRefused: true, outcome: outcomeRefused},
	{name: "200 error without message", status: 200, body: `{"error":{"code":"banned"}}`, wantCode: "banned", wantRefused: true, outcome: outcomeRefused},
	{name: "bare 401", status: 401, body: ``, wantCode: "unauthorized", wantMessage: "Unauthorized", wantRefused: true, outcome: outcomeRefused},
	{name: "bare 403", status: 403, body: ``, wantCode: "forbidden", wantMessage: "Forbidden", wantRefused: true, outcome: outcomeRefused},
	{name: "bare 400", status: 400, body: `oops`, wantCode: "bad_request", wantMessage: "Bad Request", wantRefused: true, outcome: outcomeRefused},
	{name: "bare 404", status: 404, body: ``, wantCode: "not_found", wantMessage: "Not Found", wantRefused: true, outcome: outcomeRefused},
	{name: "bare 418", status: 418, body: ``, wantCode: "forbidden", wantMessage: "I'm a teapot", wantRefused: true, outcome: outcomeRefused},
	{name: "bare 429", status: 429, body: ``, wantCode: "rate_limited", wantMessage: "Too Many Requests", wantRefused: true, outcome: outcomeRefused},
	{name: "4xx with error", status: 409, body: `{"error":{"code":"full","message":"room full"}}`, wantCode: "full", wantMessage: "room full", wantRefused: true, outcome: outcomeRefused},
	{name: "4xx with bad error", status: 403, body: `{"error":{"code":5}}`, wantCode: "forbidden", wantMessage: "Forbidden", wantRefused: true, outcome: outcomeRefused},

	{name: "500", status: 500, body: `{"error":{"code":"x"}}`, wantCode: CodeUnavailable, wantMessage: msgUnavailable, outcome: outcomeUnavailable},
	{name: "503", status: 503, body: ``, wantCode: CodeUnavailable, wantMessage: msgUnavailable, outcome: outcomeUnavailable},

	{name: "garbage", status: 200, body: `<html>PAYLOAD-MARKER`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "empty 200", status: 200, body: ``, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "array", status: 200, body: `[]`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "null", status: 200, body: `null`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "trailing data", status: 200, body: `{} {}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "user a string", status: 200, body: `{"user":"PAYLOAD-MARKER"}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "user without id", status: 200, body: `{"user":{"name":"x"}}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "user id a number", status: 200, body: `{"user":{"id":7}}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "rooms not strings", status: 200, body: `{"rooms":[1]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "rooms with null", status: 200, body: `{"rooms":["a",null]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "rooms a string", status: 200, body: `{"rooms":"a"}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "error without code", status: 200, body: `{"error":{"message":"x"}}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "error a string", status: 200, body: `{"error":"no"}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	{name: "redirect", status: 302, body: ``, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
}

func TestConnectAnswers(t *testing.T) {
	for _, tt := range connectCases {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
				if tt.status == 302 {
					w.Header().Set("Location", "/app/elsewhere")
				}
				answer(w, tt.status, tt.body)
			})
			reg := prometheus.NewRegistry()
			logs := &syncBuffer{}
			c := newClient(t, b, Config{Registerer: reg, Logger: zerolog.New(logs).Level(zerolog.DebugLevel)})
			res, err := c.Connect(context.Background(), ConnectRequest{
				Socket: Socket{ID: "s1", Namespace: "/"},
				Auth:   map[string]json.RawMessage{"token": json.RawMessage(`"SECRET-TOKEN"`)},
			})
			checkConnect(t, res, err, tt.want, tt.wantCode, tt.wantMessage, tt.wantRefused)
			if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "connect", "outcome": tt.outcome}); got != 1 {
				t.Errorf("requests_total{outcome=%q} = %v, want 1", tt.outcome, got)
			}
			if got := b.requests.Load(); got != 1 {
				t.Errorf("backend got %d requests, want 1", got)
			}
			out := logs.String()
			if strings.Contains(out, "PAYLOAD-MARKER") || strings.Contains(out, "SECRET-TOKEN") {
				t.Errorf("log carries a payload: %s", out)
			}
			if tt.outcome != outcomeOK && !strings.Contains(out, `"outcome":"`+tt.outcome+`"`) {
				t.Errorf("log has no line for outcome %s: %s", tt.outcome, out)
			}
		})
	}
}

func checkConnect(t *testing.T, res ConnectResult, err error, want ConnectResult, code, message string, wantRefused bool) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("Connect: %v, want accepted", err)
		}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("result = %+v (user %+v, data %s), want %+v", res, res.User, res.Data, want)
		}
		return
	}
	var herr *Error
	if !errors.As(err, &herr) {
		t.Fatalf("Connect error = %v (result %+v), want an *Error with code %s", err, res, code)
	}
	if herr.Code != code || herr.Message != message || herr.Refused != wantRefused {
		t.Errorf("error = {%q %q refused=%v}, want {%q %q refused=%v}", herr.Code, herr.Message, herr.Refused, code, message, wantRefused)
	}
	if !reflect.DeepEqual(res, ConnectResult{}) {
		t.Errorf("result %+v beside an error", res)
	}
}

func TestConnectTimeout(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		<-r.Context().Done() // answers only when the client gave up
	})
	reg := prometheus.NewRegistry()
	c := newClient(t, b, Config{Timeout: 100 * time.Millisecond, Registerer: reg})
	start := time.Now()
	_, err := c.Connect(context.Background(), ConnectRequest{})
	checkConnect(t, ConnectResult{}, err, ConnectResult{}, CodeUnavailable, msgUnavailable, false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Errorf("Connect took %v with a 100ms timeout", d)
	}
	if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "connect", "outcome": outcomeTimeout}); got != 1 {
		t.Errorf("timeouts = %v, want 1", got)
	}
}

func TestConnectUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	reg := prometheus.NewRegistry()
	c, err := New(Config{URL: url, Secret: testSecret, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	_, err = c.Connect(context.Background(), ConnectRequest{})
	checkConnect(t, ConnectResult{}, err, ConnectResult{}, CodeUnavailable, msgUnavailable, false)
	if strings.Contains(err.Error(), url) {
		t.Errorf("error names the URL: %v", err)
	}
	if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "connect", "outcome": outcomeUnreachable}); got != 1 {
		t.Errorf("unreachable = %v, want 1", got)
	}
}

func TestConnectCallerCanceled(t *testing.T) {
	arrived := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		close(arrived)
		<-r.Context().Done()
	})
	c := newClient(t, b, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := c.Connect(ctx, ConnectRequest{})
	checkConnect(t, ConnectResult{}, err, ConnectResult{}, CodeUnavailable, msgUnavailable, false)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap Canceled", err)
	}
}

func TestConnectLargeAnswers(t *testing.T) {
	exact := `{"data":"` + strings.Repeat("x", DefaultMaxResponse-len(`{"data":""}`)) + `"}`
	tests := []struct {
		name     string
		body     string
		wantCode string
	}{
		{"exactly the cap", exact, ""},
		{"one byte over", exact + " ", CodeInternal},
		{"10 MB", `{"data":"` + strings.Repeat("x", 10<<20) + `"}`, CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
				answer(w, 200, tt.body)
			})
			ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
			c := newClient(t, b, Config{Transport: ct})
			res, err := c.Connect(context.Background(), ConnectRequest{})
			if tt.wantCode == "" {
				if err != nil || len(res.Data) != len(exact)-len(`{"data":}`) {
					t.Fatalf("Connect = %d bytes of data, %v", len(res.Data), err)
				}
			} else {
				checkConnect(t, res, err, ConnectResult{}, tt.wantCode, msgInternal, false)
			}
			if n := ct.read.Load(); n > DefaultMaxResponse+1 {
				t.Errorf("read %d bytes of the answer, want at most %d", n, DefaultMaxResponse+1)
			}
		})
	}
}

func TestConnectAfterClose(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) { answer(w, 200, `{}`) })
	c := newClient(t, b, Config{})
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Connect(context.Background(), ConnectRequest{})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close = %v, want ErrClosed", err)
	}
	var herr *Error
	if !errors.As(err, &herr) || herr.Code != CodeUnavailable {
		t.Errorf("Connect after Close = %v, want code unavailable", err)
	}
	if b.requests.Load() != 0 {
		t.Error("a request was sent after Close")
	}
}
