package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pollingSettle is how long the connect-polling scenario lets the server settle once every client
// is connected and upgraded, before reading its memory: longer than connect's, because the polling
// requests of the last clients are still being closed.
const pollingSettle = 5 * time.Second

// driverReport is the "ready" line of bench/node/clients.js.
type driverReport struct {
	Type        string         `json:"type"`
	FirstDialMs float64        `json:"firstDialMs"`
	LastReadyMs float64        `json:"lastReadyMs"`
	Connected   int            `json:"connected"`
	Failed      int            `json:"failed"`
	Transports  map[string]int `json:"transports"`
	HandshakeMs []float64      `json:"handshakeMs"`
	UpgradeMs   []float64      `json:"upgradeMs"`
	Errors      map[string]int `json:"errors"`
}

// driver is one Node process of stock socket.io-client sockets.
type driver struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr strings.Builder
}

// runConnectPolling connects N stock socket.io-client sockets (Node processes running
// o.Clients, o.Drivers of them, inheriting the load generator's core) with the client's default
// transports: long-polling, then the websocket upgrade. Each subscribes to the room and idles.
// It reports connections per second, the handshake's latency, server CPU per connection, RSS and
// goroutines per idle connection once the server settled, failures, and how many sockets ended on
// each transport.
func runConnectPolling(ctx context.Context, o Options) (Result, error) {
	var res Result
	if o.Node == "" || o.Clients == "" {
		return res, fmt.Errorf("loadgen: connect-polling needs -node and -clients")
	}
	drivers := max(o.Drivers, 1)
	var sources []string
	for _, ip := range SourceIPs(o.Sources) {
		sources = append(sources, ip.String())
	}
	g0, gerr := goroutines(ctx, o.PprofAddr)
	before, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	var ds []*driver
	defer func() {
		for _, d := range ds {
			d.kill()
		}
	}()
	for k := range drivers {
		n := o.N / drivers
		if k < o.N%drivers {
			n++
		}
		conc := o.Concurrency / drivers
		if k < o.Concurrency%drivers {
			conc++
		}
		d, err := startDriver(ctx, o.Node, o.Clients, []string{
			"--url", "http://" + o.Addr, "--n", strconv.Itoa(n), "--concurrency", strconv.Itoa(max(conc, 1)),
			"--sources", strings.Join(sources, ","), "--room", o.Room, "--timeout-ms", "30000",
		})
		if err != nil {
			return res, err
		}
		ds = append(ds, d)
	}
	var (
		reports   []driverReport
		limit     = time.After(5 * time.Minute)
		driverCPU time.Duration // the drivers' CPU until they were ready: are they what limits the rate?
	)
	for _, d := range ds {
		var r driverReport
		if err := d.await(ctx, limit, "ready", &r); err != nil {
			return res, err
		}
		if p, err := ReadProc(d.cmd.Process.Pid); err == nil {
			driverCPU += p.CPU
		}
		reports = append(reports, r)
	}
	connected, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	driversBusy := 100 * driverCPU.Seconds() / connected.At.Sub(before.At).Seconds()
	settled, err := sampleAt(ctx, o.pids(), time.Now().Add(pollingSettle))
	if err != nil {
		return res, err
	}
	g1, gerr1 := goroutines(ctx, o.PprofAddr)
	for _, d := range ds {
		if err := d.stop(ctx); err != nil {
			res.note("%v", err)
		}
	}

	var (
		ok, failed    int
		first, last   = math.Inf(1), math.Inf(-1)
		transports    = map[string]int{}
		errs          = map[string]int{}
		handshake, up []time.Duration
	)
	for _, r := range reports {
		ok += r.Connected
		failed += r.Failed
		if r.FirstDialMs > 0 {
			first = min(first, r.FirstDialMs)
		}
		last = max(last, r.LastReadyMs)
		for k, v := range r.Transports {
			transports[k] += v
		}
		for k, v := range r.Errors {
			errs[k] += v
		}
		for _, v := range r.HandshakeMs {
			handshake = append(handshake, time.Duration(v*float64(time.Millisecond)))
		}
		for _, v := range r.UpgradeMs {
			up = append(up, time.Duration(v*float64(time.Millisecond)))
		}
	}
	if len(errs) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(errs)) {
			parts = append(parts, fmt.Sprintf("%d × %.80s", errs[k], k))
		}
		res.note("client errors: %s", strings.Join(parts, "; "))
	}
	if ok == 0 {
		return res, notAvailable("no stock client connected (%d failed)", failed)
	}
	if n := ok - transports["websocket"]; n > 0 {
		res.note("%d of %d connected sockets did not upgrade to websocket: %v", n, ok, transports)
	}
	elapsed := time.Duration((last - first) * float64(time.Millisecond))
	hs, ug := Summarize(handshake), Summarize(up)
	res.set("connected", float64(ok))
	res.set("failures", float64(failed))
	res.set("websocket", float64(transports["websocket"]))
	res.set("not_upgraded", float64(ok-transports["websocket"]))
	res.set("conn_per_s", float64(ok)/elapsed.Seconds())
	res.set("cpu_per_conn_us", perUnit(connected.CPU-before.CPU, ok))
	res.set("rss_per_conn_kib", float64(settled.RSS-before.RSS)/1024/float64(ok))
	res.set("rss_kib", float64(settled.RSS)/1024)
	res.set("handshake_p50_ms", ms(hs.P50))
	res.set("handshake_p99_ms", ms(hs.P99))
	res.set("upgrade_p50_ms", ms(ug.P50))
	res.set("upgrade_p99_ms", ms(ug.P99))
	res.set("drivers", float64(drivers))
	res.set("clients_cpu_pct", driversBusy)
	setGoroutines(&res, o, ok, g0, g1, firstErr(gerr, gerr1))
	return res, nil
}

// startDriver starts node script args; its stdout lines go to d.lines.
func startDriver(ctx context.Context, node, script string, args []string) (*driver, error) {
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	d := &driver{cmd: cmd, lines: make(chan []byte, 4)}
	cmd.Stderr = &d.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if d.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start %s: %w", script, err)
	}
	go func() {
		defer close(d.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 1<<16), 64<<20) // the ready line carries every latency
		for sc.Scan() {
			d.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	return d, nil
}

// await reads lines until one of type typ, decoded into v.
func (d *driver) await(ctx context.Context, limit <-chan time.Time, typ string, v any) error {
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				_ = d.cmd.Wait()
				return fmt.Errorf("loadgen: client driver exited before %q: %.300s", typ, strings.TrimSpace(d.stderr.String()))
			}
			var head struct{ Type string }
			if json.Unmarshal(line, &head) != nil || head.Type != typ {
				continue
			}
			return json.Unmarshal(line, v)
		case <-limit:
			return fmt.Errorf("loadgen: client driver: no %q in time", typ)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop asks the driver to disconnect its sockets and waits for it to exit (killed after 30 s).
func (d *driver) stop(ctx context.Context) error {
	_, _ = io.WriteString(d.stdin, "stop\n")
	var closed struct{ Type string }
	err := d.await(ctx, time.After(30*time.Second), "closed", &closed)
	_ = d.stdin.Close()
	if err != nil {
		d.kill()
		return err
	}
	for range d.lines {
	}
	return d.cmd.Wait()
}

func (d *driver) kill() {
	if d.cmd.ProcessState == nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Kill()
	}
}
