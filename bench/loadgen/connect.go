package loadgen

import (
	"context"
	"time"
)

// runConnect opens N idle connections as fast as the server accepts them (Concurrency in flight),
// then reads what they cost the server: connections per second, CPU per connection and RSS per
// idle connection once the server settled.
func runConnect(ctx context.Context, o Options) (Result, error) {
	var res Result
	d := NewDialer(o.Addr, o.Sources)
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
	// Let the server finish what it does after a connect (timers, GC) before reading its memory.
	settled, err := sampleAt(ctx, o.pids(), time.Now().Add(2*time.Second))
	if err != nil {
		return res, err
	}
	closeAll(o, conns)

	ok := len(conns)
	res.set("connected", float64(ok))
	res.set("failures", float64(failures))
	res.set("conn_per_s", float64(ok)/elapsed.Seconds())
	res.set("cpu_per_conn_us", perUnit(connected.CPU-before.CPU, ok))
	res.set("rss_per_conn_kib", float64(settled.RSS-before.RSS)/1024/float64(max(ok, 1)))
	res.set("rss_kib", float64(settled.RSS)/1024)
	return res, nil
}
