package loadgen

import (
	"context"
	"time"
)

// connectSettle is how long the connect scenarios let the server finish what it does after the
// last connect (timers, GC, closing the polling requests) before reading its memory.
const connectSettle = 2 * time.Second

// runConnect opens N idle connections as fast as the server accepts them (Concurrency in flight),
// then reads what they cost the server: connections per second, the handshake's latency, CPU per
// connection, and RSS and goroutines per idle connection once the server settled.
func runConnect(ctx context.Context, o Options) (Result, error) {
	var res Result
	d := o.dialer(o.Addr)
	g0, gerr := goroutines(ctx, o.PprofAddr)
	before, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	start := time.Now()
	conns, failures, err := dialAll(ctx, o, d, "/", o.N, nil)
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	connected, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	settled, err := sampleAt(ctx, o.pids(), time.Now().Add(connectSettle))
	if err != nil {
		return res, err
	}
	// Read after the memory: the goroutine profile allocates in the server.
	g1, gerr1 := goroutines(ctx, o.PprofAddr)
	hs := make([]time.Duration, 0, len(conns))
	for _, c := range conns {
		hs = append(hs, c.Handshake)
	}
	closeAll(o, conns)

	ok := len(conns)
	res.set("connected", float64(ok))
	res.set("failures", float64(failures))
	res.set("conn_per_s", float64(ok)/elapsed.Seconds())
	res.set("cpu_per_conn_us", perUnit(connected.CPU-before.CPU, ok))
	res.set("rss_per_conn_kib", float64(settled.RSS-before.RSS)/1024/float64(max(ok, 1)))
	res.set("rss_kib", float64(settled.RSS)/1024)
	lat := Summarize(hs)
	res.setLatency("handshake_", lat)
	setGoroutines(&res, o, ok, g0, g1, firstErr(gerr, gerr1))
	return res, nil
}

// setGoroutines reports the server's goroutines per idle connection (from its pprof listener,
// when it has one): (after − before) ÷ connections.
func setGoroutines(res *Result, o Options, conns, before, after int, err error) {
	switch {
	case o.PprofAddr == "":
	case err != nil:
		res.note("goroutines: %v", err)
	default:
		res.set("goroutines_before", float64(before))
		res.set("goroutines_idle", float64(after))
		res.set("goroutines_per_conn", float64(after-before)/float64(max(conns, 1)))
	}
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
