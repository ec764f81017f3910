package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pacedClient is one client of the echo-fixed scenario. sent is written by the pacer and read by
// the client's read loop; the rest only by the read loop.
type pacedClient struct {
	sent []atomic.Int64 // by ack id: send time, nanoseconds since the run's base
	seq  SeqTracker     // ack ids − 1
	lat  []time.Duration
	// svc and added (hook-fixed): the backend's own time of each request, from its ack, and the
	// latency less that time, what Switchboard and the hop to the backend added.
	svc, added []time.Duration
	bad        int
}

// fixedSpec is what an open-loop run sends and reads back: echo-fixed's built-in subscribe, or
// hook-fixed's event that Switchboard forwards to the app backend.
type fixedSpec struct {
	name string
	ev   Event
	// svc: the ack's data carries the backend's own time ({"data":{"svc":<ns>}}).
	svc bool
}

// runEchoFixed is echo in an open loop: N clients send `subscribe` {"rooms": [room]} with an ack
// at a fixed total Rate (acks/s), on a schedule that does not wait for the answers, round-robin
// over the clients. After Warmup, it measures for Duration: acks per second against the target,
// server CPU per ack, the ack latency of the requests sent in the window, and whether every
// request got exactly one answer, in order.
func runEchoFixed(ctx context.Context, o Options) (Result, error) {
	return runFixed(ctx, o, fixedSpec{name: "subscribe", ev: NewEvent("/", "subscribe", roomsPayload(o.Room))})
}

// HookEvent is the event hook-fixed sends: no built-in handler takes it, so Switchboard forwards
// it to the app backend (HookBackend), whose answer is its ack.
const HookEvent = "bench:hook"

// runHookFixed is echo-fixed with an event the app backend answers through Switchboard's event
// hook (SPEC §8.2): the same open loop, plus the backend's own time per request (from its ack)
// and the latency the hook adds over it.
func runHookFixed(ctx context.Context, o Options) (Result, error) {
	return runFixed(ctx, o, fixedSpec{name: HookEvent, ev: NewEvent("/", HookEvent, []byte(`{"n":1}`)), svc: true})
}

func runFixed(ctx context.Context, o Options, spec fixedSpec) (Result, error) {
	var res Result
	if o.Rate <= 0 || o.N <= 0 {
		return res, fmt.Errorf("loadgen: echo-fixed needs -rate and -n")
	}
	ev := spec.ev
	interval := time.Second / time.Duration(o.Rate)
	total := int((o.Warmup + o.Duration) / interval)
	perClient := total/o.N + 2

	var (
		base      = time.Now()
		warmEnd   atomic.Int64 // nanoseconds since base; 0 until the pacing starts
		end       atomic.Int64
		pacing    atomic.Bool
		received  atomic.Int64
		inWindow  atomic.Int64 // acks that arrived inside the window
		states    = make([]*pacedClient, o.N)
		badSample atomic.Value
	)
	clients, failures, err := dialAll(ctx, o, NewDialer(o.Addr, o.Sources), "/", o.N, func(i int) func(Frame, time.Time) bool {
		st := &pacedClient{sent: make([]atomic.Int64, perClient+1)}
		states[i] = st
		return func(f Frame, at time.Time) bool {
			if !pacing.Load() || f.SIO != sioAck || f.AckID < 1 || f.AckID > int64(perClient) {
				return false
			}
			sent := st.sent[f.AckID].Load()
			if sent == 0 {
				return true // not sent by the pacer: cannot happen unless the server invents acks
			}
			if !AckOK(f.Data) {
				st.bad++
				badSample.CompareAndSwap(nil, string(f.Data))
			}
			st.seq.Observe(int(f.AckID - 1))
			received.Add(1)
			now := int64(at.Sub(base))
			if now >= warmEnd.Load() && now < end.Load() {
				inWindow.Add(1)
			}
			if sent >= warmEnd.Load() && sent < end.Load() {
				st.lat = append(st.lat, time.Duration(now-sent))
				if spec.svc {
					svc := ackServiceTime(f.Data)
					st.svc = append(st.svc, svc)
					st.added = append(st.added, time.Duration(now-sent)-svc)
				}
			}
			return true
		}
	})
	if err != nil {
		return res, err
	}
	defer func() { closeAll(o, clients) }()
	if failures > 0 {
		res.note("%d of %d clients failed to connect", failures, o.N)
	}
	for _, c := range clients {
		data, err := c.request(ctx, ev, 0, 5*time.Second)
		if err != nil {
			return res, notAvailable("%s: %v", spec.name, err)
		}
		if !AckOK(data) {
			return res, notAvailable("%s answered %.80s", spec.name, data)
		}
	}
	live := states[:0]
	for _, st := range states {
		if st != nil {
			live = append(live, st)
		}
	}
	n := len(live)

	// The pacer: message k is due at start + k·interval and goes to client k mod n with ack id
	// k/n + 1. It sleeps until the next one is due and sends everything due, so it never waits
	// for an answer (open loop); how late it sent is reported, to tell its lag from the server's.
	start := time.Now()
	warmEnd.Store(int64(start.Add(o.Warmup).Sub(base)))
	end.Store(int64(start.Add(o.Warmup + o.Duration).Sub(base)))
	pacing.Store(true)
	var (
		sentTotal, sentInWindow int
		maxLag                  time.Duration
		lags                    []time.Duration
		sendErr                 error
		pacer                   sync.WaitGroup
	)
	pacer.Go(func() {
		for k := 0; k < total && ctx.Err() == nil; k++ {
			due := start.Add(time.Duration(k) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			c, id := clients[k%n], int64(k/n+1)
			now := time.Now()
			if lag := now.Sub(due); lag > maxLag {
				maxLag = lag
			}
			if k%16 == 0 {
				lags = append(lags, now.Sub(due))
			}
			live[k%n].sent[id].Store(int64(now.Sub(base)))
			if err := c.Emit(ev, id); err != nil {
				sendErr = err
				return
			}
			sentTotal++
			if at := int64(now.Sub(base)); at >= warmEnd.Load() && at < end.Load() {
				sentInWindow++
			}
		}
	})
	p0, err := sampleAt(ctx, o.pids(), start.Add(o.Warmup))
	if err != nil {
		return res, err
	}
	self0, _ := ReadProc(os.Getpid())
	p1, err := sampleAt(ctx, o.pids(), start.Add(o.Warmup+o.Duration))
	if err != nil {
		return res, err
	}
	self1, _ := ReadProc(os.Getpid())
	got0 := inWindow.Load()
	pacer.Wait()
	if sendErr != nil {
		return res, fmt.Errorf("loadgen: echo-fixed: send: %w", sendErr)
	}
	// Drain: until every request was answered, or nothing arrived for 3 s.
	last, lastChange := received.Load(), time.Now()
	for received.Load() < int64(sentTotal) && time.Since(lastChange) < 3*time.Second && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if r := received.Load(); r != last {
			last, lastChange = r, time.Now()
		}
	}
	closeAll(o, clients) // the read loops end here, so their state can be read
	clients = nil

	var (
		all, svc, added []time.Duration
		lost, ooo, dups int
		bad             int
	)
	for i, st := range live {
		all = append(all, st.lat...)
		svc = append(svc, st.svc...)
		added = append(added, st.added...)
		lost += st.seq.Lost(sentTo(sentTotal, n, i))
		ooo += st.seq.OutOfOrder
		dups += st.seq.Duplicates
		bad += st.bad
	}
	if bad > 0 {
		res.note("%d acks were errors, e.g. %.80v", bad, badSample.Load())
	}
	window := p1.At.Sub(p0.At)
	acks := float64(got0)
	lat := Summarize(all)
	lag := Summarize(lags)
	rate := acks / window.Seconds()
	if rate < 0.99*float64(o.Rate) {
		res.note("the rate was not sustained: %.0f acks/s of %d", rate, o.Rate)
	}
	if maxLag > 10*time.Millisecond {
		res.note("the load generator sent up to %.1f ms behind its schedule: its core was busy, so this repetition's latencies are suspect", ms(maxLag))
	}
	res.set("clients", float64(n))
	res.set("target_per_s", float64(o.Rate))
	res.set("sent_per_s", float64(sentInWindow)/o.Duration.Seconds())
	res.set("acks_per_s", rate)
	res.set("rate_pct", 100*rate/float64(o.Rate))
	res.set("cpu_per_ack_us", perUnit(p1.CPU-p0.CPU, int(got0)))
	res.set("server_cpu_pct", 100*(p1.CPU-p0.CPU).Seconds()/window.Seconds())
	res.set("loadgen_cpu_per_ack_us", perUnit(self1.CPU-self0.CPU, int(got0)))
	res.setLatency("", lat)
	res.set("p90_ms", ms(Percentile(all, 90)))
	res.set("send_lag_p99_ms", ms(lag.P99))
	res.set("send_lag_max_ms", ms(maxLag))
	res.set("sent", float64(sentTotal))
	res.set("lost", float64(lost))
	res.set("out_of_order", float64(ooo))
	res.set("duplicates", float64(dups))
	res.set("rss_kib", float64(p1.RSS)/1024)
	if spec.svc {
		slices.Sort(svc) // Percentile reads sorted samples
		slices.Sort(added)
		res.set("backend_p50_ms", ms(Percentile(svc, 50)))
		res.set("backend_p99_ms", ms(Percentile(svc, 99)))
		res.set("added_p50_ms", ms(Percentile(added, 50)))
		res.set("added_p90_ms", ms(Percentile(added, 90)))
		res.set("added_p99_ms", ms(Percentile(added, 99)))
	}
	return res, nil
}

// ackServiceTime reads the backend's own time from a hook-fixed ack, [{"data":{"svc":<ns>}}];
// 0 when it is not there.
func ackServiceTime(data []byte) time.Duration {
	i := bytes.Index(data, []byte(`"svc":`))
	if i < 0 {
		return 0
	}
	var ns int64
	for _, c := range data[i+len(`"svc":`):] {
		if c < '0' || c > '9' {
			break
		}
		ns = 10*ns + int64(c-'0')
	}
	return time.Duration(ns)
}

// sentTo is how many of the first total paced requests went to client i of n: request k goes to
// client k mod n, so client i got the ack ids 1 … ⌈(total − i) / n⌉.
func sentTo(total, n, i int) int {
	if i >= total {
		return 0
	}
	return (total - i + n - 1) / n
}
