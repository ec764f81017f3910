package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// runChurn runs Cycles connect → subscribe (acked) → disconnect cycles, Concurrency at a time, and
// compares the server's goroutines (from its pprof listener, when there is one) and RSS before and
// after, once the server had time to release what the cycles used.
func runChurn(ctx context.Context, o Options) (Result, error) {
	var res Result
	d := NewDialer(o.Addr, o.Sources)
	ev := NewEvent("/", "subscribe", roomsPayload(o.Room))
	var failures atomic.Int64
	cycles := func(n int) time.Duration {
		start := time.Now()
		parallel(ctx, n, o.Concurrency, func(int) {
			if err := cycle(ctx, d, ev); err != nil {
				failures.Add(1)
			}
		})
		return time.Since(start)
	}
	// Warm up, so that pools and lazily built state are in "before".
	cycles(max(o.Concurrency, 1))
	failures.Store(0)
	g0, gerr := goroutines(ctx, o.PprofAddr)
	p0, err := sampleAt(ctx, o.pids(), time.Now().Add(time.Second))
	if err != nil {
		return res, err
	}
	elapsed := cycles(o.Cycles)

	// Closing is asynchronous on the server: give it up to 10 s to come back to where it was.
	deadline := time.Now().Add(10 * time.Second)
	g1 := g0
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if gerr != nil {
			break
		}
		n, err := goroutines(ctx, o.PprofAddr)
		if err != nil {
			break
		}
		if g1 = n; g1 <= g0 {
			break
		}
	}
	p1, err := sampleAt(ctx, o.pids(), time.Now().Add(time.Second))
	if err != nil {
		return res, err
	}
	ok := o.Cycles - int(failures.Load())
	res.set("cycles", float64(o.Cycles))
	res.set("failures", float64(failures.Load()))
	res.set("cycles_per_s", float64(ok)/elapsed.Seconds())
	res.set("cpu_per_cycle_us", perUnit(p1.CPU-p0.CPU, ok))
	res.set("rss_before_kib", float64(p0.RSS)/1024)
	res.set("rss_after_kib", float64(p1.RSS)/1024)
	res.set("rss_growth_kib", float64(p1.RSS-p0.RSS)/1024)
	if gerr == nil {
		res.set("goroutines_before", float64(g0))
		res.set("goroutines_after", float64(g1))
	} else if o.PprofAddr != "" {
		res.note("goroutines: %v", gerr)
	}
	return res, nil
}

// cycle connects, subscribes with an ack and disconnects.
func cycle(ctx context.Context, d *Dialer, ev Event) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := d.Connect(cctx, "/", nil)
	if err != nil {
		return err
	}
	acked := make(chan bool, 1)
	conn.Start(func(f Frame, _ time.Time) {
		if f.SIO == sioAck && f.AckID == 1 {
			acked <- AckOK(f.Data)
		}
	})
	defer func() { conn.Close(); <-conn.Done() }()
	if err := conn.Emit(ev, 1); err != nil {
		return err
	}
	select {
	case ok := <-acked:
		if !ok {
			return fmt.Errorf("loadgen: subscribe failed")
		}
		return nil
	case <-cctx.Done():
		return cctx.Err()
	}
}

// goroutines reads the goroutine count from a pprof listener's goroutine profile.
func goroutines(ctx context.Context, pprofAddr string) (int, error) {
	if pprofAddr == "" {
		return 0, fmt.Errorf("no pprof listener")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pprofAddr+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("pprof goroutine profile: %w", err)
	}
	var n int
	if _, err := fmt.Sscanf(line, "goroutine profile: total %d", &n); err != nil {
		return 0, fmt.Errorf("pprof goroutine profile: %q", line)
	}
	return n, nil
}
