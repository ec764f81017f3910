package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

func TestEventBodies(t *testing.T) {
	sock := Socket{ID: "s1", Namespace: "/chat", User: User{ID: "u1", Name: "Ann"}, Rooms: []string{"r"}}
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"socket connected", SocketConnected(sock),
			`{"type":"socket.connected","ts":5,"socket":{"id":"s1","namespace":"/chat","user":{"id":"u1","name":"Ann"},"rooms":["r"]}}`},
		{"socket disconnected", SocketDisconnected(Socket{ID: "s2", Namespace: "/"}, "transport close"),
			`{"type":"socket.disconnected","ts":5,"socket":{"id":"s2","namespace":"/","user":{"id":"","name":""},"rooms":[]},"reason":"transport close"}`},
		{"disconnected without a reason", SocketDisconnected(Socket{ID: "s2", Namespace: "/"}, ""),
			`{"type":"socket.disconnected","ts":5,"socket":{"id":"s2","namespace":"/","user":{"id":"","name":""},"rooms":[]},"reason":""}`},
		{"room occupied", RoomOccupied("/", "news"), `{"type":"room.occupied","ts":5,"namespace":"/","room":"news"}`},
		{"room vacated", RoomVacated("/game", "g1"), `{"type":"room.vacated","ts":5,"namespace":"/game","room":"g1"}`},
		{"member added", ChatMemberAdded("lobby", User{ID: "u1", Name: "Ann"}), `{"type":"chat.member_added","ts":5,"room":"lobby","user":{"id":"u1","name":"Ann"}}`},
		{"member removed", ChatMemberRemoved("lobby", User{ID: "u1", Name: "Ann"}), `{"type":"chat.member_removed","ts":5,"room":"lobby","user":{"id":"u1","name":"Ann"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.TS = 5
			if got := string(encodeEventNotice(tt.ev)); got != tt.want {
				t.Errorf("body = %s\nwant   %s", got, tt.want)
			}
		})
	}
	t.Run("unknown type panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		encodeEventNotice(Event{Type: "room.exploded"})
	})
}

// eventsBackend records every events request's batch (the rooms of room.occupied events, which
// the tests use as sequence numbers) and answers with fail(attempt), 200 when it returns 0, no
// answer when it returns -1 (the client timed out).
type eventsBackend struct {
	mu       sync.Mutex
	attempts []attempt // every request, in arrival order
	fail     func(attempt int, r *http.Request) int
}

type attempt struct {
	rooms  []string
	at     time.Time
	status int // 0 until answered
}

func (e *eventsBackend) handle(w http.ResponseWriter, r *http.Request, hook string, body []byte) {
	var b struct {
		Events []struct {
			Type string `json:"type"`
			TS   int64  `json:"ts"`
			Room string `json:"room"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &b); err != nil || hook != hookEvents {
		http.Error(w, "bad", 400)
		return
	}
	var rooms []string
	for _, ev := range b.Events {
		if ev.Type != TypeRoomOccupied || ev.TS == 0 {
			http.Error(w, "bad event", 400)
			return
		}
		rooms = append(rooms, ev.Room)
	}
	e.mu.Lock()
	n := len(e.attempts)
	e.attempts = append(e.attempts, attempt{rooms: rooms, at: time.Now()})
	e.mu.Unlock()
	status := 200
	setStatus := func() {
		e.mu.Lock()
		e.attempts[n].status = status
		e.mu.Unlock()
	}
	defer setStatus() // also when fail panics to drop the connection
	if e.fail != nil {
		status = -1
		if s := e.fail(n, r); s != 0 {
			status = s
		} else {
			status = 200
		}
	}
	if status < 0 {
		return
	}
	w.WriteHeader(status)
}

// acked is the events of the acknowledged batches, in order.
func (e *eventsBackend) acked() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, a := range e.attempts {
		if a.status == 200 {
			out = append(out, a.rooms...)
		}
	}
	return out
}

// answered is how many requests were answered (or given up on).
func (e *eventsBackend) answered() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, a := range e.attempts {
		if a.status != 0 {
			n++
		}
	}
	return n
}

// batches is the rooms of every request.
func (e *eventsBackend) batches() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out [][]string
	for _, a := range e.attempts {
		out = append(out, a.rooms)
	}
	return out
}

func seqRooms(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	return out
}

func notifyRange(c *Client, from, to int) {
	for i := from; i < to; i++ {
		c.Notify(RoomOccupied("/", fmt.Sprint(i)))
	}
}

func TestEventsBatches(t *testing.T) {
	e := &eventsBackend{}
	b := newBackend(t, e.handle)
	reg := prometheus.NewRegistry()
	c := newClient(t, b, Config{Registerer: reg})
	notifyRange(c, 0, 250)
	waitFor(t, "250 events acknowledged", func() bool { return len(e.acked()) == 250 })
	if got := e.acked(); !reflect.DeepEqual(got, seqRooms(0, 250)) {
		t.Errorf("events arrived as %v", got)
	}
	batches := e.batches()
	for i, b := range batches {
		if len(b) == 0 || len(b) > DefaultBatchMax {
			t.Errorf("batch %d has %d events", i, len(b))
		}
	}
	if len(batches) > 10 {
		t.Errorf("250 events notified at once took %d batches", len(batches))
	}
	// The backend answered; the client counts once it read the answer.
	waitFor(t, "events_delivered_total 250 and the queue depth 0", func() bool {
		return counterValue(t, reg, "switchboard_hook_events_delivered_total", nil) == 250 &&
			counterValue(t, reg, "switchboard_hook_events_queued", nil) == 0
	})
}

func TestEventsBatchWait(t *testing.T) {
	const wait = 80 * time.Millisecond
	e := &eventsBackend{}
	b := newBackend(t, e.handle)
	c := newClient(t, b, Config{BatchWait: wait})
	start := time.Now()
	notifyRange(c, 0, 3)
	waitFor(t, "the batch", func() bool { return len(e.acked()) == 3 })
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.attempts) != 1 {
		t.Errorf("3 events notified together came in %d batches: %v", len(e.attempts), e.attempts)
	}
	if d := e.attempts[0].at.Sub(start); d < wait {
		t.Errorf("the batch was sent %v after its first event, want at least %v", d, wait)
	}
}

func TestEventsBatchMaxDoesNotWait(t *testing.T) {
	e := &eventsBackend{}
	b := newBackend(t, e.handle)
	c := newClient(t, b, Config{BatchMax: 10, BatchWait: time.Hour})
	notifyRange(c, 0, 25)
	waitFor(t, "two full batches", func() bool { return len(e.acked()) == 20 })
	if got, want := e.batches(), [][]string{seqRooms(0, 10), seqRooms(10, 20)}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	// The last 5 wait for BatchWait (an hour) or Close, which flushes them (newClient's cleanup
	// checks that Close ends without error).
}

func TestEventsRetry(t *testing.T) {
	// Fails in every way a backend can, then recovers: 500, 400, a timeout, a dropped connection.
	e := &eventsBackend{}
	e.fail = func(n int, r *http.Request) int {
		switch n {
		case 0:
			return 500
		case 1:
			return 400
		case 2:
			<-r.Context().Done()
			return -1
		case 3:
			panic(http.ErrAbortHandler) // the server closes the connection without an answer
		}
		return 0
	}
	b := newBackend(t, e.handle)
	reg := prometheus.NewRegistry()
	c := newClient(t, b, Config{Registerer: reg, Timeout: 100 * time.Millisecond, BatchMax: 7, BatchWait: time.Millisecond,
		RetryBase: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	const total = 300
	for i := 0; i < total; i += 30 {
		notifyRange(c, i, i+30)
	}
	waitFor(t, "every event acknowledged", func() bool { return len(e.acked()) >= total })
	if got := e.acked(); !reflect.DeepEqual(got, seqRooms(0, total)) {
		t.Errorf("acknowledged events %v, want 0..%d in order, once each", got, total-1)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// A batch that failed is sent again whole, and nothing is sent before it succeeds.
	for i, a := range e.attempts {
		if a.status != 200 && i+1 < len(e.attempts) && !reflect.DeepEqual(a.rooms, e.attempts[i+1].rooms) {
			t.Errorf("attempt %d failed with %v, then %v was sent", i, a.rooms, e.attempts[i+1].rooms)
		}
	}
	if len(e.attempts) < 5 || !reflect.DeepEqual(e.attempts[0].rooms, e.attempts[4].rooms) || e.attempts[4].status != 200 {
		t.Errorf("the first batch was not retried through the four failures: %v", e.attempts[:min(5, len(e.attempts))])
	}
	for outcome, want := range map[string]float64{outcomeUnavailable: 1, outcomeRefused: 1, outcomeTimeout: 1, outcomeUnreachable: 1} {
		if got := counterValue(t, reg, "switchboard_hook_requests_total", map[string]string{"hook": "events", "outcome": outcome}); got != want {
			t.Errorf("events %s = %v, want %v", outcome, got, want)
		}
	}
}

func TestEventsBackoff(t *testing.T) {
	const base, max = 20 * time.Millisecond, 80 * time.Millisecond
	e := &eventsBackend{fail: func(n int, r *http.Request) int {
		if n < 6 {
			return 503
		}
		return 0
	}}
	b := newBackend(t, e.handle)
	c := newClient(t, b, Config{RetryBase: base, RetryMax: max, BatchWait: time.Millisecond})
	c.Notify(RoomOccupied("/", "0"))
	waitFor(t, "the event acknowledged", func() bool { return len(e.acked()) == 1 })
	e.mu.Lock()
	defer e.mu.Unlock()
	want := []time.Duration{base, 2 * base, max, max, max, max}
	if len(e.attempts) != len(want)+1 {
		t.Fatalf("%d attempts, want %d", len(e.attempts), len(want)+1)
	}
	for i, w := range want {
		if d := e.attempts[i+1].at.Sub(e.attempts[i].at); d < w {
			t.Errorf("retry %d came %v after the failure, want at least %v", i+1, d, w)
		}
	}
}

func TestEventsOverflow(t *testing.T) {
	release := newGate()
	e := &eventsBackend{fail: func(n int, r *http.Request) int {
		if n == 0 {
			release.wait(r)
		}
		return 0
	}}
	b := newBackend(t, e.handle)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	c := newClient(t, b, Config{Registerer: reg, Logger: zerolog.New(logs), BatchMax: 1, QueueMax: 10})
	release.openAtCleanup(t) // before Close, so that it does not wait for the backend
	c.Notify(RoomOccupied("/", "0"))
	waitFor(t, "the first batch in flight", func() bool { return len(e.batches()) == 1 })
	notifyRange(c, 1, 16) // 15 for a queue of 10: 1..5 are dropped
	if got := counterValue(t, reg, "switchboard_hook_events_dropped_total", map[string]string{"reason": dropOverflow}); got != 5 {
		t.Errorf("dropped = %v, want 5", got)
	}
	if got := counterValue(t, reg, "switchboard_hook_events_queued", nil); got != 11 {
		t.Errorf("queue depth = %v, want 11 (10 waiting, 1 in flight)", got)
	}
	if n := strings.Count(logs.String(), "events queue full"); n != 1 {
		t.Errorf("%d log lines for the drops before a minute passed, want 1:\n%s", n, logs)
	}
	release.open()
	want := append([]string{"0"}, seqRooms(6, 16)...)
	waitFor(t, "the rest acknowledged", func() bool { return len(e.acked()) == len(want) })
	if got := e.acked(); !reflect.DeepEqual(got, want) {
		t.Errorf("acknowledged %v, want %v", got, want)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, `"dropped":1,`) || !strings.Contains(out, `"dropped":4,`) {
		t.Errorf("the drops are not counted in the log (1 at once, 4 at close):\n%s", out)
	}
	if strings.Contains(out, "room.occupied") {
		t.Errorf("the log carries events:\n%s", out)
	}
}

func TestEventsCloseFlushes(t *testing.T) {
	e := &eventsBackend{}
	b := newBackend(t, e.handle)
	reg := prometheus.NewRegistry()
	c, err := New(Config{URL: b.url(), Secret: testSecret, Registerer: reg, BatchWait: time.Hour, BatchMax: 2})
	if err != nil {
		t.Fatal(err)
	}
	notifyRange(c, 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.acked(); !reflect.DeepEqual(got, seqRooms(0, 5)) {
		t.Errorf("flushed %v, want 0..4", got)
	}
	c.Notify(RoomOccupied("/", "late"))
	if got := counterValue(t, reg, "switchboard_hook_events_dropped_total", map[string]string{"reason": dropClosed}); got != 1 {
		t.Errorf("dropped after close = %v, want 1", got)
	}
	// Close's own helper may still be returning.
	waitFor(t, "the Client's goroutines to end", func() bool { return goroutinesIn("hooks.(*Client).") == 0 })
}

func TestEventsCloseFlushRetriesAtOnce(t *testing.T) {
	// The backend fails the first try; the backoff is an hour, but Close does not wait it out.
	e := &eventsBackend{fail: func(n int, r *http.Request) int {
		if n == 0 {
			return 500
		}
		return 0
	}}
	b := newBackend(t, e.handle)
	c, err := New(Config{URL: b.url(), Secret: testSecret, BatchWait: time.Millisecond, RetryBase: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c.Notify(RoomOccupied("/", "0"))
	waitFor(t, "the failed try", func() bool { return e.answered() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.acked(); !reflect.DeepEqual(got, []string{"0"}) {
		t.Errorf("acknowledged %v at close", got)
	}
}

func TestEventsCloseGivesUp(t *testing.T) {
	e := &eventsBackend{fail: func(int, *http.Request) int { return 500 }}
	b := newBackend(t, e.handle)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	c, err := New(Config{URL: b.url(), Secret: testSecret, Registerer: reg, Logger: zerolog.New(logs),
		BatchMax: 3, BatchWait: time.Millisecond, RetryBase: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	notifyRange(c, 0, 10)
	waitFor(t, "a failed try", func() bool { return e.answered() >= 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	if got := counterValue(t, reg, "switchboard_hook_events_dropped_total", map[string]string{"reason": dropClosed}); got != 10 {
		t.Errorf("dropped at close = %v, want 10", got)
	}
	if got := counterValue(t, reg, "switchboard_hook_events_queued", nil); got != 0 {
		t.Errorf("queue depth after close = %v", got)
	}
	if !strings.Contains(logs.String(), "not delivered before close") {
		t.Errorf("the loss is not logged:\n%s", logs)
	}
	// Close's own helper may still be returning.
	waitFor(t, "the Client's goroutines to end", func() bool { return goroutinesIn("hooks.(*Client).") == 0 })
}

func TestNotifyDoesNotBlock(t *testing.T) {
	release := newGate()
	e := &eventsBackend{fail: func(n int, r *http.Request) int {
		release.wait(r)
		return 0
	}}
	b := newBackend(t, e.handle)
	c, err := New(Config{URL: b.url(), Secret: testSecret, QueueMax: 1000, BatchWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	release.openAtCleanup(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		notifyRange(c, 0, 50_000)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Notify blocked behind a backend that does not answer")
	}
	c.ev.mu.Lock()
	n := len(c.ev.items)
	c.ev.mu.Unlock()
	if n > 2*1000 {
		t.Errorf("the queue's array holds %d entries for a bound of 1000", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	c.Close(ctx)
}
