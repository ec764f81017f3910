package loadgen

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// echoState is one closed-loop client of the echo scenario; only its read loop touches it once the
// loop runs.
type echoState struct {
	c       *client
	ev      Event
	id      int64
	sent    time.Time
	lat     []time.Duration
	bad     int
	stopped bool
}

// runEcho runs N clients in a closed loop: each sends `subscribe` {"rooms": [room]} with an ack
// and sends the next one as soon as the ack arrives. After Warmup, it measures for Duration: acks
// per second, server CPU per ack and the ack latency.
func runEcho(ctx context.Context, o Options) (Result, error) {
	var res Result
	d := o.dialer(o.Addr)
	ev := d.Event("/", "subscribe", roomsPayload(o.Room))

	var (
		looping   atomic.Bool
		warmEnd   atomic.Int64 // unix nanos
		end       atomic.Int64
		finished  sync.WaitGroup
		states    = make([]*echoState, o.N)
		badSample atomic.Value
	)
	clients, failures, err := dialAll(ctx, o, d, "/", o.N, func(i int) func(Frame, time.Time) bool {
		st := &echoState{ev: ev}
		states[i] = st
		return func(f Frame, at time.Time) bool {
			if !looping.Load() || f.SIO != sioAck || f.AckID != st.id || st.stopped {
				return false
			}
			if !AckOK(f.Data) {
				st.bad++
				badSample.CompareAndSwap(nil, string(f.Data))
			}
			now := at.UnixNano()
			if now >= warmEnd.Load() && now < end.Load() {
				st.lat = append(st.lat, at.Sub(st.sent))
			}
			if now >= end.Load() {
				st.stopped = true
				finished.Done()
				return true
			}
			st.id++
			st.sent = time.Now()
			if err := st.c.Emit(st.ev, st.id); err != nil {
				st.stopped = true
				finished.Done()
			}
			return true
		}
	})
	if err != nil {
		return res, err
	}
	defer closeAll(o, clients)
	if failures > 0 {
		res.note("%d of %d clients failed to connect", failures, o.N)
	}
	// Probe: the event must exist and answer with {"data": …}.
	for _, c := range clients {
		data, err := c.request(ctx, ev, 0, 5*time.Second)
		if err != nil {
			return res, notAvailable("subscribe: %v", err)
		}
		if !AckOK(data) {
			return res, notAvailable("subscribe answered %.80s", data)
		}
	}
	live := states[:0]
	for _, st := range states {
		if st != nil {
			live = append(live, st)
		}
	}
	for i, st := range live {
		st.c = clients[i]
	}

	start := time.Now()
	warmEnd.Store(start.Add(o.Warmup).UnixNano())
	end.Store(start.Add(o.Warmup + o.Duration).UnixNano())
	looping.Store(true)
	finished.Add(len(live))
	for _, st := range live {
		st.id = 1
		st.sent = time.Now()
		if err := st.c.Emit(st.ev, st.id); err != nil {
			return res, fmt.Errorf("loadgen: echo: %w", err)
		}
	}
	p0, err := sampleAt(ctx, o.pids(), time.Unix(0, warmEnd.Load()))
	if err != nil {
		return res, err
	}
	self0, _ := ReadProc(os.Getpid())
	p1, err := sampleAt(ctx, o.pids(), time.Unix(0, end.Load()))
	if err != nil {
		return res, err
	}
	self1, _ := ReadProc(os.Getpid())
	done := make(chan struct{})
	go func() { finished.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return res, fmt.Errorf("loadgen: echo: acks still missing 10s after the window")
	}

	var all []time.Duration
	bad := 0
	for _, st := range live {
		all = append(all, st.lat...)
		bad += st.bad
	}
	if bad > 0 {
		res.note("%d acks were errors, e.g. %.80v", bad, badSample.Load())
	}
	lat := Summarize(all)
	window := p1.At.Sub(p0.At)
	res.set("clients", float64(len(live)))
	res.set("acks", float64(lat.N))
	res.set("acks_per_s", float64(lat.N)/window.Seconds())
	res.set("cpu_per_ack_us", perUnit(p1.CPU-p0.CPU, lat.N))
	res.set("server_cpu_pct", 100*(p1.CPU-p0.CPU).Seconds()/window.Seconds())
	res.set("loadgen_cpu_per_ack_us", perUnit(self1.CPU-self0.CPU, lat.N))
	res.setLatency("", lat)
	res.set("p90_ms", ms(Percentile(all, 90))) // the body of the distribution: how evenly clients are served
	res.set("rss_kib", float64(p1.RSS)/1024)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
