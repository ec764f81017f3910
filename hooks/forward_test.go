package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// forwardOne forwards one event and waits for its answer.
func forwardOne(t *testing.T, c *Client, key string, req EventRequest) (EventResult, error) {
	t.Helper()
	type result struct {
		res EventResult
		err error
	}
	got := make(chan result, 2)
	if err := c.Forward(key, req, func(res EventResult, err error) { got <- result{res, err} }); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	r := <-got
	select {
	case <-got:
		t.Fatal("done called twice")
	default:
	}
	return r.res, r.err
}

func TestForwardRequestBody(t *testing.T) {
	tests := []struct {
		name string
		req  EventRequest
		want string
	}{
		{"everything",
			EventRequest{Socket: Socket{ID: "s1", Namespace: "/game", User: User{ID: "u1", Name: "Ann"}, Rooms: []string{"r1", "user:u1"}},
				Data: json.RawMessage(`{"team":"red"}`), Event: "move", Args: []json.RawMessage{json.RawMessage(`{"x":1}`), json.RawMessage(`"up"`)}},
			`{"socket":{"id":"s1","namespace":"/game","user":{"id":"u1","name":"Ann"},"rooms":["r1","user:u1"]},"data":{"team":"red"},"event":"move","args":[{"x":1},"up"]}`},
		{"no data, rooms or args",
			EventRequest{Socket: Socket{ID: "s1", Namespace: "/"}, Event: "ping"},
			`{"socket":{"id":"s1","namespace":"/","user":{"id":"","name":""},"rooms":[]},"event":"ping","args":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 1)
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
				if hook != hookEvent {
					t.Errorf("hook %s", hook)
				}
				got <- string(body)
				answer(w, 200, `{}`)
			})
			c := newClient(t, b, Config{})
			if _, err := forwardOne(t, c, "s1", tt.req); err != nil {
				t.Fatal(err)
			}
			if body := <-got; body != tt.want {
				t.Errorf("body = %s\nwant   %s", body, tt.want)
			}
		})
	}
}

func TestForwardAnswers(t *testing.T) {
	raws := func(s ...string) []json.RawMessage {
		out := []json.RawMessage{}
		for _, v := range s {
			out = append(out, json.RawMessage(v))
		}
		return out
	}
	tests := []struct {
		name        string
		status      int
		body        string
		want        EventResult
		wantCode    string
		wantMessage string
		wantRefused bool
		outcome     string
	}{
		{name: "empty", status: 200, body: `{}`, outcome: outcomeOK},
		{name: "204", status: 204, outcome: outcomeOK},
		{name: "ack absent is nil", status: 200, body: `{"join":["a"]}`, want: EventResult{Join: []string{"a"}}, outcome: outcomeOK},
		{name: "ack null is nil", status: 200, body: `{"ack":null}`, outcome: outcomeOK},
		{name: "ack empty", status: 200, body: `{"ack":[]}`, want: EventResult{Ack: raws()}, outcome: outcomeOK},
		{name: "ack values", status: 200, body: `{"ack":[1,"x",{"a":[true]},null]}`, want: EventResult{Ack: raws(`1`, `"x"`, `{"a":[true]}`, `null`)}, outcome: outcomeOK},
		{name: "emit to the socket", status: 200, body: `{"emit":[{"event":"hi","args":[1]}]}`,
			want: EventResult{Emit: []Emit{{Event: "hi", ToSelf: true, Args: raws(`1`)}}}, outcome: outcomeOK},
		{name: "emit to rooms", status: 200, body: `{"emit":[{"rooms":["a","b"],"except":["c"],"toSelf":false,"event":"moved"}]}`,
			want: EventResult{Emit: []Emit{{Rooms: []string{"a", "b"}, Except: []string{"c"}, Event: "moved", Args: raws()}}}, outcome: outcomeOK},
		{name: "emit toSelf true", status: 200, body: `{"emit":[{"rooms":["a"],"toSelf":true,"event":"e"}]}`,
			want: EventResult{Emit: []Emit{{Rooms: []string{"a"}, ToSelf: true, Event: "e", Args: raws()}}}, outcome: outcomeOK},
		{name: "emit empty rooms", status: 200, body: `{"emit":[{"rooms":[],"event":"e","args":[]}]}`,
			want: EventResult{Emit: []Emit{{Rooms: []string{}, ToSelf: true, Event: "e", Args: raws()}}}, outcome: outcomeOK},
		{name: "emit empty list", status: 200, body: `{"emit":[]}`, want: EventResult{Emit: []Emit{}}, outcome: outcomeOK},
		{name: "join and leave", status: 200, body: `{"join":["a","b"],"leave":["c"]}`, want: EventResult{Join: []string{"a", "b"}, Leave: []string{"c"}}, outcome: outcomeOK},
		{name: "disconnect", status: 200, body: `{"disconnect":true}`, want: EventResult{Disconnect: true}, outcome: outcomeOK},
		{name: "disconnect false", status: 200, body: `{"disconnect":false}`, outcome: outcomeOK},
		{name: "all of it", status: 200,
			body: `{"ack":[{"ok":1}],"emit":[{"rooms":["g"],"event":"turn","args":["b"]},{"event":"you","args":[]}],"join":["g"],"leave":["lobby"],"disconnect":true}`,
			want: EventResult{Ack: raws(`{"ok":1}`), Emit: []Emit{{Rooms: []string{"g"}, ToSelf: true, Event: "turn", Args: raws(`"b"`)}, {Event: "you", ToSelf: true, Args: raws()}},
				Join: []string{"g"}, Leave: []string{"lobby"}, Disconnect: true}, outcome: outcomeOK},

		{name: "4xx with error", status: 422, body: `{"error":{"code":"not_your_turn","message":"wait"}}`, wantCode: "not_your_turn", wantMessage: "wait", wantRefused: true, outcome: outcomeRefused},
		{name: "200 with error", status: 200, body: `{"error":{"code":"nope","message":"no"}}`, wantCode: "nope", wantMessage: "no", wantRefused: true, outcome: outcomeRefused},
		{name: "bare 403", status: 403, wantCode: "forbidden", wantMessage: "Forbidden", wantRefused: true, outcome: outcomeRefused},
		{name: "bare 400", status: 400, wantCode: "bad_request", wantMessage: "Bad Request", wantRefused: true, outcome: outcomeRefused},
		{name: "500", status: 500, body: `{"ack":[1]}`, wantCode: CodeUnavailable, wantMessage: msgUnavailable, outcome: outcomeUnavailable},
		{name: "502", status: 502, wantCode: CodeUnavailable, wantMessage: msgUnavailable, outcome: outcomeUnavailable},

		{name: "garbage", status: 200, body: `ok!`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "ack not an array", status: 200, body: `{"ack":1}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit not an array", status: 200, body: `{"emit":{"event":"x"}}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit without event", status: 200, body: `{"emit":[{"args":[]}]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit event empty", status: 200, body: `{"emit":[{"event":""}]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit not an object", status: 200, body: `{"emit":["x"]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit rooms not strings", status: 200, body: `{"emit":[{"event":"e","rooms":[1]}]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit toSelf a string", status: 200, body: `{"emit":[{"event":"e","toSelf":"no"}]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "emit args an object", status: 200, body: `{"emit":[{"event":"e","args":{}}]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "join a string", status: 200, body: `{"join":"a"}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "leave not strings", status: 200, body: `{"leave":[null]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "disconnect a string", status: 200, body: `{"disconnect":"yes"}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
		{name: "10 MB", status: 200, body: `{"ack":["` + strings.Repeat("x", 10<<20) + `"]}`, wantCode: CodeInternal, wantMessage: msgInternal, outcome: outcomeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
				answer(w, tt.status, tt.body)
			})
			reg := prometheus.NewRegistry()
			c := newClient(t, b, Config{Registerer: reg})
			res, err := forwardOne(t, c, "s1", EventRequest{Socket: Socket{ID: "s1"}, Event: "e"})
			checkForward(t, res, err, tt.want, tt.wantCode, tt.wantMessage, tt.wantRefused)
			if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "event", "outcome": tt.outcome}); got != 1 {
				t.Errorf("requests_total{outcome=%q} = %v, want 1", tt.outcome, got)
			}
		})
	}
}

func checkForward(t *testing.T, res EventResult, err error, want EventResult, code, message string, wantRefused bool) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("done error %v, want a result", err)
		}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("result = %#v\nwant     %#v", res, want)
		}
		return
	}
	var herr *Error
	if !errors.As(err, &herr) {
		t.Fatalf("done error = %v (result %+v), want an *Error with code %s", err, res, code)
	}
	if herr.Code != code || herr.Message != message || herr.Refused != wantRefused {
		t.Errorf("error = {%q %q refused=%v}, want {%q %q refused=%v}", herr.Code, herr.Message, herr.Refused, code, message, wantRefused)
	}
}

func TestForwardTimeout(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		<-r.Context().Done()
	})
	reg := prometheus.NewRegistry()
	c := newClient(t, b, Config{Timeout: 50 * time.Millisecond, Registerer: reg})
	res, err := forwardOne(t, c, "s1", EventRequest{Event: "e"})
	checkForward(t, res, err, EventResult{}, CodeUnavailable, msgUnavailable, false)
	if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "event", "outcome": outcomeTimeout}); got != 1 {
		t.Errorf("timeouts = %v, want 1", got)
	}
}

func TestForwardBadArgs(t *testing.T) {
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) { answer(w, 200, `{}`) })
	c := newClient(t, b, Config{})
	err := c.Forward("s1", EventRequest{Event: "e", Args: []json.RawMessage{json.RawMessage(`{`)}}, func(EventResult, error) {
		t.Error("done called for a Forward that failed")
	})
	if err == nil {
		t.Fatal("Forward with an arg that is not JSON returned nil")
	}
	c.mu.Lock()
	n := len(c.keys)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d keys queued", n)
	}
}

// seqBackend answers every event at once and records, per key (args[0]), the sequence numbers
// (args[1]) in the order they arrived.
type seqBackend struct {
	mu      sync.Mutex
	arrived map[string][]int
	// hold, when set for a key, blocks that key's requests until it opens.
	hold map[string]*gate
}

func (s *seqBackend) handle(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
	var ev struct {
		Args []json.RawMessage `json:"args"`
	}
	json.Unmarshal(body, &ev)
	var key string
	var seq int
	json.Unmarshal(ev.Args[0], &key)
	json.Unmarshal(ev.Args[1], &seq)
	s.mu.Lock()
	s.arrived[key] = append(s.arrived[key], seq)
	hold := s.hold[key]
	s.mu.Unlock()
	if hold != nil {
		hold.wait(r)
	}
	fmt.Fprintf(w, `{"ack":[%d]}`, seq)
}

func seqEvent(key string, seq int) EventRequest {
	return EventRequest{Socket: Socket{ID: key}, Event: "e", Args: []json.RawMessage{
		json.RawMessage(fmt.Sprintf("%q", key)), json.RawMessage(fmt.Sprint(seq))}}
}

func TestForwardOrderPerKey(t *testing.T) {
	const keys, perKey = 10, 100
	s := &seqBackend{arrived: map[string][]int{}}
	b := newBackend(t, s.handle)
	c := newClient(t, b, Config{})

	var mu sync.Mutex
	acked := map[string][]int{}
	var wg sync.WaitGroup
	var pending sync.WaitGroup
	pending.Add(keys * perKey)
	for k := range keys {
		key := fmt.Sprintf("sock%d", k)
		wg.Go(func() {
			for i := range perKey {
				err := c.Forward(key, seqEvent(key, i), func(res EventResult, err error) {
					defer pending.Done()
					if err != nil {
						t.Errorf("%s #%d: %v", key, i, err)
						return
					}
					var seq int
					json.Unmarshal(res.Ack[0], &seq)
					mu.Lock()
					acked[key] = append(acked[key], seq)
					mu.Unlock()
				})
				if err != nil {
					t.Errorf("Forward %s #%d: %v", key, i, err)
					pending.Done()
				}
			}
		})
	}
	wg.Wait()
	pending.Wait()

	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.arrived) != keys {
		t.Fatalf("backend saw %d keys, want %d", len(s.arrived), keys)
	}
	for key, got := range s.arrived {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s arrived in order %v", key, got)
		}
		if !reflect.DeepEqual(acked[key], want) {
			t.Errorf("%s answered in order %v", key, acked[key])
		}
	}
}

func TestForwardKeysInParallel(t *testing.T) {
	release := newGate()
	s := &seqBackend{arrived: map[string][]int{}, hold: map[string]*gate{"slow": release}}
	b := newBackend(t, s.handle)
	c := newClient(t, b, Config{})
	release.openAtCleanup(t) // before Close, so that it does not wait for the backend

	slowDone := make(chan error, 1)
	if err := c.Forward("slow", seqEvent("slow", 0), func(_ EventResult, err error) { slowDone <- err }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow key's request", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.arrived["slow"]) == 1
	})
	for i := range 5 {
		if _, err := forwardOne(t, c, "fast", seqEvent("fast", i)); err != nil {
			t.Fatalf("fast #%d: %v", i, err)
		}
	}
	select {
	case <-slowDone:
		t.Fatal("the slow key finished before it was released")
	default:
	}
	release.open()
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

func TestForwardBackpressure(t *testing.T) {
	release := newGate()
	s := &seqBackend{arrived: map[string][]int{}, hold: map[string]*gate{"busy": release}}
	b := newBackend(t, s.handle)
	reg := prometheus.NewRegistry()
	c := newClient(t, b, Config{Registerer: reg})
	release.openAtCleanup(t) // before Close, so that it does not wait for the backend

	var done atomic.Int64
	count := func(EventResult, error) { done.Add(1) }
	if err := c.Forward("busy", seqEvent("busy", 0), count); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first request in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.arrived["busy"]) == 1
	})
	for i := 1; i <= DefaultMaxQueued; i++ {
		if err := c.Forward("busy", seqEvent("busy", i), count); err != nil {
			t.Fatalf("Forward #%d with %d waiting: %v", i, i-1, err)
		}
	}
	for range 3 {
		err := c.Forward("busy", seqEvent("busy", 999), func(EventResult, error) { t.Error("done called for a rejected Forward") })
		if !errors.Is(err, ErrBackpressure) {
			t.Fatalf("Forward with %d waiting = %v, want ErrBackpressure", DefaultMaxQueued, err)
		}
	}
	if _, err := forwardOne(t, c, "other", seqEvent("other", 0)); err != nil {
		t.Errorf("another key under backpressure of the first: %v", err)
	}
	if got := counterValue(t, reg, "switchboard_hook_forwards_rejected_total", nil); got != 3 {
		t.Errorf("forwards_rejected_total = %v, want 3", got)
	}
	release.open()
	waitFor(t, "every accepted event answered", func() bool { return done.Load() == DefaultMaxQueued+1 })
	// Once the queue drained, the key takes events again.
	if _, err := forwardOne(t, c, "busy", seqEvent("busy", 101)); err != nil {
		t.Errorf("after the queue drained: %v", err)
	}
}

func TestForwardMaxInFlight(t *testing.T) {
	const limit, keys, perKey = 4, 20, 3
	var cur, peak atomic.Int64
	arrived := make(chan struct{}, keys*perKey)
	release := make(chan struct{})
	done := make(chan struct{})
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-done:
		case <-r.Context().Done():
		}
		cur.Add(-1)
		answer(w, 200, `{}`)
	})
	var doneOnce sync.Once
	finish := func() { doneOnce.Do(func() { close(done) }) }
	c := newClient(t, b, Config{MaxInFlight: limit})
	t.Cleanup(finish) // before Close, so that it does not wait for the backend
	var pending sync.WaitGroup
	for k := range keys {
		for i := range perKey {
			pending.Add(1)
			if err := c.Forward(fmt.Sprint(k), seqEvent("k", i), func(_ EventResult, err error) {
				if err != nil {
					t.Error(err)
				}
				pending.Done()
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Let one request go at a time once the bound is reached: an unbounded client would have
	// every key's request at the backend together.
	for range limit {
		<-arrived
	}
	for range keys*perKey - limit {
		release <- struct{}{}
		<-arrived
	}
	finish()
	pending.Wait()
	if p := peak.Load(); p != limit {
		t.Errorf("at most %d requests were in flight together, want %d", p, limit)
	}
}

func TestForwardLeavesNothingAfterBurst(t *testing.T) {
	const keys, perKey = 10, 100
	s := &seqBackend{arrived: map[string][]int{}}
	b := newBackend(t, s.handle)
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	c := newClient(t, b, Config{Transport: ct})
	const worker = "hooks.(*Client).runKey"

	burst := func(round int) {
		var pending sync.WaitGroup
		pending.Add(keys * perKey)
		for i := range perKey {
			for k := range keys {
				key := fmt.Sprintf("r%d-k%d", round, k)
				if err := c.Forward(key, seqEvent(key, i), func(EventResult, error) { pending.Done() }); err != nil {
					t.Fatal(err)
				}
			}
		}
		pending.Wait()
	}
	quiet := func() int {
		ct.CloseIdleConnections()
		return goroutinesIn("")
	}
	burst(0) // warms up what is made once (the transport's, the test server's)
	waitFor(t, "the first burst's workers to end", func() bool { return goroutinesIn(worker) == 0 })
	baseline := quiet()

	burst(1)
	waitFor(t, "the workers to end", func() bool { return goroutinesIn(worker) == 0 })
	c.mu.Lock()
	left := len(c.keys)
	c.mu.Unlock()
	if left != 0 {
		t.Errorf("%d keys left after the burst", left)
	}
	waitFor(t, fmt.Sprintf("the goroutines back to %d", baseline), func() bool { return quiet() <= baseline })
}

func TestForwardClose(t *testing.T) {
	release := newGate()
	s := &seqBackend{arrived: map[string][]int{}, hold: map[string]*gate{"a": release, "b": release}}
	b := newBackend(t, s.handle)
	c, err := New(Config{URL: b.url(), Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	release.openAtCleanup(t)
	var calls sync.Map
	var total atomic.Int64
	for _, key := range []string{"a", "b"} {
		for i := range 5 {
			id := fmt.Sprint(key, i)
			if err := c.Forward(key, seqEvent(key, i), func(_ EventResult, err error) {
				if _, dup := calls.LoadOrStore(id, err); dup {
					t.Errorf("done called twice for %s", id)
				}
				total.Add(1)
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "both keys in flight", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.arrived["a"]) == 1 && len(s.arrived["b"]) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded (the backend never answered)", err)
	}
	if n := total.Load(); n != 10 {
		t.Fatalf("done called %d times after Close, want 10", n)
	}
	calls.Range(func(k, v any) bool {
		if err, _ := v.(error); !errors.Is(err, ErrClosed) {
			t.Errorf("%v: %v, want ErrClosed", k, err)
		}
		return true
	})
	if err := c.Forward("a", seqEvent("a", 9), func(EventResult, error) { t.Error("done after Close") }); !errors.Is(err, ErrClosed) {
		t.Errorf("Forward after Close = %v, want ErrClosed", err)
	}
	// Close's own helper may still be returning.
	waitFor(t, "the Client's goroutines to end", func() bool { return goroutinesIn("switchboard/hooks.(*Client)") == 0 })
}

func TestForwardCloseWaitsForQueued(t *testing.T) {
	s := &seqBackend{arrived: map[string][]int{}}
	b := newBackend(t, s.handle)
	c, err := New(Config{URL: b.url(), Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	for i := range 50 {
		if err := c.Forward("k", seqEvent("k", i), func(_ EventResult, err error) {
			if err == nil {
				ok.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := ok.Load(); n != 50 {
		t.Errorf("%d of 50 queued events answered by Close's end", n)
	}
}

// TestForwardFuncBuildsWhenSent: a request queued behind another is built only once the other's
// done returned, so it sees what that done changed; a build whose args are not JSON ends in an
// internal error for that event alone.
func TestForwardFuncBuildsWhenSent(t *testing.T) {
	bodies := make(chan string, 4)
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
		bodies <- string(body)
		answer(w, 200, `{"join":["r1"]}`)
	})
	c := newClient(t, b, Config{})

	var mu sync.Mutex
	rooms := []string{}
	build := func() EventRequest {
		mu.Lock()
		defer mu.Unlock()
		return EventRequest{Socket: Socket{ID: "s1", Rooms: slices.Clone(rooms)}, Event: "e"}
	}
	results := make(chan error, 3)
	done := func(res EventResult, err error) {
		mu.Lock()
		rooms = append(rooms, res.Join...)
		mu.Unlock()
		results <- err
	}
	bad := func() EventRequest {
		return EventRequest{Socket: Socket{ID: "s1"}, Event: "e", Args: []json.RawMessage{json.RawMessage(`{`)}}
	}
	// All three are queued before the first answer can arrive: the key's goroutine starts with
	// the first, and the backend answers only after it read a body.
	for i, f := range []func() EventRequest{build, bad, build} {
		if err := c.ForwardFunc("s1", f, done); err != nil {
			t.Fatalf("ForwardFunc #%d: %v", i, err)
		}
	}
	for i := range 3 {
		err := <-results
		var herr *Error
		switch {
		case i == 1 && (!errors.As(err, &herr) || herr.Code != CodeInternal):
			t.Errorf("event with bad args: %v, want a %s *Error", err, CodeInternal)
		case i != 1 && err != nil:
			t.Errorf("event #%d: %v", i, err)
		}
	}
	first, second := <-bodies, <-bodies
	if !strings.Contains(first, `"rooms":[]`) {
		t.Errorf("first body %s: want no rooms", first)
	}
	if !strings.Contains(second, `"rooms":["r1"]`) {
		t.Errorf("second body %s: want the room the first answer joined", second)
	}
	select {
	case extra := <-bodies:
		t.Errorf("the event with bad args was sent: %s", extra)
	default:
	}
}
