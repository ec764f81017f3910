package loadgen

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// apiWorker is one caller of the api-emit scenario; only its goroutine touches it until the
// callers stopped.
type apiWorker struct {
	lat      []time.Duration // successful calls that ended inside the window
	ok       []int           // sequence numbers of every successful call (warm-up included)
	failed   int             // failed calls, whole run
	inWindow int             // failed calls that ended inside the window
	firstErr error
}

// runAPIEmit measures the HTTP API's emit path alone: N members subscribe to one room on `/`,
// then InFlight callers each POST /api/v1/emit to that room and post again as soon as the answer
// arrives, over keep-alive connections. After Warmup, Duration is measured: calls per second,
// server CPU per call and the latency of the HTTP call. Every call is stamped with its own
// sequence number, so the members' deliveries show whether a message the server accepted was lost.
func runAPIEmit(ctx context.Context, o Options) (Result, error) {
	var res Result
	base := time.Now()
	api := newAPIPublisher(o, base)
	if err := api.probe(ctx); err != nil {
		return res, err
	}

	var delivered atomic.Int64
	members := make([]*SeqTracker, o.N)
	clients, failures, err := dialAll(ctx, o, NewDialer(o.Addr, o.Sources), "/", o.N, func(i int) func(Frame, time.Time) bool {
		tr := &SeqTracker{}
		members[i] = tr
		return func(f Frame, _ time.Time) bool {
			if f.SIO != sioEvent {
				return false
			}
			if seq, _, ok := FindStamp(f.Data); ok {
				tr.Observe(seq)
				delivered.Add(1)
			}
			return true
		}
	})
	if err != nil {
		return res, err
	}
	defer closeAll(o, clients)
	if failures > 0 {
		res.note("%d of %d members failed to connect", failures, o.N)
	}
	if err := joinAll(ctx, o, clients, NewEvent("/", "subscribe", roomsPayload(o.Room))); err != nil {
		return res, err
	}

	start := time.Now()
	warmEnd, end := start.Add(o.Warmup), start.Add(o.Warmup+o.Duration)
	var (
		next    atomic.Int64
		stop    atomic.Bool
		callers sync.WaitGroup
		workers = make([]*apiWorker, max(o.InFlight, 1))
	)
	for i := range workers {
		w := &apiWorker{}
		workers[i] = w
		callers.Go(func() {
			for !stop.Load() && ctx.Err() == nil {
				seq := int(next.Add(1) - 1)
				t0 := time.Now()
				err := api.post(ctx, o.Room, seq, int64(t0.Sub(base)))
				t1 := time.Now()
				inside := !t1.Before(warmEnd) && t1.Before(end)
				if err != nil {
					w.failed++
					if inside {
						w.inWindow++
					}
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.ok = append(w.ok, seq)
				if inside {
					w.lat = append(w.lat, t1.Sub(t0))
				}
			}
		})
	}
	p0, err := sampleAt(ctx, o.pids(), warmEnd)
	if err != nil {
		stop.Store(true)
		callers.Wait()
		return res, err
	}
	self0, _ := ReadProc(os.Getpid())
	p1, err := sampleAt(ctx, o.pids(), end)
	stop.Store(true)
	self1, _ := ReadProc(os.Getpid())
	callers.Wait()
	if err != nil {
		return res, err
	}

	var (
		lat          []time.Duration
		ok           []int
		failed, inWF int
		firstErr     error
	)
	for _, w := range workers {
		lat = append(lat, w.lat...)
		ok = append(ok, w.ok...)
		failed += w.failed
		inWF += w.inWindow
		if firstErr == nil {
			firstErr = w.firstErr
		}
	}
	if firstErr != nil {
		res.note("%d calls failed, e.g. %v", failed, firstErr)
	}
	// Drain: until every member got every accepted message, or nothing arrives for 3 s.
	live := len(clients)
	expected := int64(len(ok)) * int64(live)
	last, lastChange := delivered.Load(), time.Now()
	for delivered.Load() < expected && time.Since(lastChange) < 3*time.Second && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if n := delivered.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	closeAll(o, clients) // the read loops end here, so the trackers can be read
	clients = nil
	lost, dups, got := 0, 0, 0
	for _, tr := range members {
		if tr == nil {
			continue
		}
		lost += tr.LostOf(ok)
		dups += tr.Duplicates
		got += tr.Received
	}

	l := Summarize(lat)
	window := p1.At.Sub(p0.At)
	res.set("members", float64(live))
	res.set("in_flight", float64(len(workers)))
	res.set("calls", float64(l.N))
	res.set("calls_per_s", float64(l.N)/window.Seconds())
	res.set("cpu_per_call_us", perUnit(p1.CPU-p0.CPU, l.N+inWF))
	res.set("server_cpu_pct", 100*(p1.CPU-p0.CPU).Seconds()/window.Seconds())
	res.set("loadgen_cpu_per_call_us", perUnit(self1.CPU-self0.CPU, l.N+inWF))
	res.set("loadgen_cpu_pct", 100*(self1.CPU-self0.CPU).Seconds()/window.Seconds())
	res.setLatency("", l)
	res.set("failures", float64(failed))
	res.set("accepted", float64(len(ok)))
	res.set("expected", float64(expected))
	res.set("delivered", float64(got))
	res.set("lost", float64(lost))
	res.set("duplicates", float64(dups))
	res.set("rss_kib", float64(p1.RSS)/1024)
	if ctx.Err() != nil {
		return res, fmt.Errorf("loadgen: api-emit: %w", ctx.Err())
	}
	return res, nil
}
