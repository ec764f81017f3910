package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one scenario run.
type Options struct {
	Addr        string        // server host:port (loopback)
	PID         int           // server process, read from /proc
	PprofAddr   string        // host:port of the server's pprof listener, for goroutine counts; optional
	Sources     int           // loopback source addresses to spread connections over
	Concurrency int           // connection attempts in flight
	N           int           // clients (connect, echo) or room members (fanout)
	Duration    time.Duration // measured time (echo, fanout publishing)
	Warmup      time.Duration // echo: unmeasured time before the window
	Rate        int           // fanout: messages per second; echo-fixed: acks per second; relay: per player
	Via         string        // fanout: "api" or "chat"
	APIKey      string        // fanout via api: the bearer key
	Room        string        // the room every scenario uses
	Cycles      int           // churn: connect/disconnect cycles
	InFlight    int           // api-emit: API calls in flight
	// Node and Clients run the stock socket.io-client driver (connect-polling): the node binary
	// and bench/node/clients.js; Drivers is how many of its processes share the N clients.
	Node, Clients string
	Drivers       int
	// Peers are the other nodes of a cluster (host:port, fanout): members are spread round-robin
	// over Addr and Peers; the publisher uses Addr only.
	Peers []string
	// PeerPIDs are the processes of Peers; server CPU and RSS are summed over PID and PeerPIDs.
	PeerPIDs []int
	// Parser is the clients' Socket.IO parser: ParserDefault (or empty) or ParserMsgpack
	// (msgpackScenarios only).
	Parser string
	// Keyed: the relay scenario's players publish keyed values (state, coalesced per tick by
	// Switchboard) instead of unkeyed messages. Tick is the server's --relay-tick, for the
	// share of ticks whose value reached the members (0: not reported).
	Keyed bool
	Tick  time.Duration
}

// dialer returns a Dialer for addr speaking o.Parser.
func (o Options) dialer(addr string) *Dialer {
	d := NewDialer(addr, o.Sources)
	d.Parser = o.Parser
	return d
}

// pids is every server process the run reads.
func (o Options) pids() []int { return append([]int{o.PID}, o.PeerPIDs...) }

// Result is what a scenario measured: Metrics by key, or NA when the server lacks what the
// scenario needs (an endpoint or event that does not exist yet).
type Result struct {
	Scenario string             `json:"scenario"`
	NA       string             `json:"na,omitempty"`
	Metrics  map[string]float64 `json:"metrics"`
	Notes    []string           `json:"notes,omitempty"`
}

func (r *Result) set(key string, v float64) {
	if r.Metrics == nil {
		r.Metrics = map[string]float64{}
	}
	r.Metrics[key] = v
}

// setLatency sets the three figures of latency l, named prefix+"p50_ms", "p99_ms" and "max_ms".
func (r *Result) setLatency(prefix string, l Latency) {
	r.set(prefix+"p50_ms", ms(l.P50))
	r.set(prefix+"p99_ms", ms(l.P99))
	r.set(prefix+"max_ms", ms(l.Max))
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// errNA marks a missing feature: the scenario reports "n/a" instead of failing.
type errNA struct{ reason string }

func (e *errNA) Error() string { return e.reason }

func notAvailable(format string, args ...any) error { return &errNA{fmt.Sprintf(format, args...)} }

// scenarioRun is one scenario Run knows.
type scenarioRun struct {
	name    string
	run     func(context.Context, Options) (Result, error)
	msgpack bool // its clients can speak socket.io-msgpack-parser
}

// scenarioRuns are the scenarios Run knows, in the order Scenarios names them.
var scenarioRuns = []scenarioRun{
	{"connect", runConnect, true},
	{"connect-polling", runConnectPolling, false},
	{"echo", runEcho, true},
	{"echo-fixed", runEchoFixed, false},
	{"hook-fixed", runHookFixed, false},
	{"fanout", runFanout, true},
	{"chat-join", runChatJoin, false},
	{"api-emit", runAPIEmit, false},
	{"churn", runChurn, false},
	{"relay", runRelay, false},
}

// Scenarios are the names Run knows; msgpackScenarios the ones whose clients can speak
// socket.io-msgpack-parser.
var Scenarios, msgpackScenarios = scenarioNames(false), scenarioNames(true)

// scenarioNames are the names of scenarioRuns, of the msgpack ones only where msgpackOnly.
func scenarioNames(msgpackOnly bool) []string {
	var names []string
	for _, s := range scenarioRuns {
		if s.msgpack || !msgpackOnly {
			names = append(names, s.name)
		}
	}
	return names
}

// Run runs the named scenario.
func Run(ctx context.Context, scenario string, o Options) (Result, error) {
	var res Result
	switch o.Parser {
	case "", ParserDefault:
	case ParserMsgpack:
		if !slices.Contains(msgpackScenarios, scenario) {
			return res, fmt.Errorf("loadgen: -parser msgpack runs only %s, not %q", strings.Join(msgpackScenarios, ", "), scenario)
		}
	default:
		return res, fmt.Errorf("loadgen: unknown parser %q (%s or %s)", o.Parser, ParserDefault, ParserMsgpack)
	}
	i := slices.IndexFunc(scenarioRuns, func(s scenarioRun) bool { return s.name == scenario })
	if i < 0 {
		return res, fmt.Errorf("loadgen: unknown scenario %q (%s)", scenario, strings.Join(Scenarios, ", "))
	}
	res, err := scenarioRuns[i].run(ctx, o)
	res.Scenario = scenario
	if na, ok := errors.AsType[*errNA](err); ok {
		res.NA = na.reason
		return res, nil
	}
	return res, err
}

// client is one load-generator connection with a place for the acks of synchronous requests.
type client struct {
	*Conn
	acks chan []byte
}

// request sends ev with ack id and waits for its ack data.
func (c *client) request(ctx context.Context, ev Event, id int64, timeout time.Duration) ([]byte, error) {
	if err := c.Emit(ev, id); err != nil {
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case data := <-c.acks:
		return data, nil
	case <-t.C:
		return nil, notAvailable("no ack within %s", timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dialAll connects n clients to nsp, Concurrency at a time. Each client's frames go to
// frames(i) when it returns a handler; acks of synchronous requests go to the client's acks channel
// unless the handler consumes them (returns true). Failed connections are counted, not returned.
func dialAll(ctx context.Context, o Options, d *Dialer, nsp string, n int, frames func(i int) func(f Frame, at time.Time) bool) ([]*client, int, error) {
	out := make([]*client, n)
	var (
		failures atomic.Int64
		firstErr error
		errOnce  sync.Once
	)
	parallel(ctx, n, o.Concurrency, func(i int) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		conn, err := d.Connect(cctx, nsp, nil)
		cancel()
		if err != nil {
			failures.Add(1)
			errOnce.Do(func() { firstErr = err })
			return
		}
		c := &client{Conn: conn, acks: make(chan []byte, 1)}
		var h func(f Frame, at time.Time) bool
		if frames != nil {
			h = frames(i)
		}
		conn.Start(func(f Frame, at time.Time) {
			if h != nil && h(f, at) {
				return
			}
			if f.SIO == sioAck {
				select {
				case c.acks <- append([]byte(nil), f.Data...):
				default:
				}
			}
		})
		out[i] = c
	})
	ok := out[:0]
	for _, c := range out {
		if c != nil {
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 && firstErr != nil {
		if errors.Is(firstErr, ErrRefused) {
			return nil, int(failures.Load()), notAvailable("connecting to %s: %v", nsp, firstErr)
		}
		return nil, int(failures.Load()), fmt.Errorf("loadgen: no connection succeeded: %w", firstErr)
	}
	return ok, int(failures.Load()), nil
}

// closeAll disconnects every client, Concurrency at a time, and waits for their read loops.
func closeAll(o Options, cs []*client) {
	parallel(context.Background(), len(cs), o.Concurrency, func(i int) {
		cs[i].Close()
		<-cs[i].Done()
	})
}

// parallel calls fn(0) … fn(n-1) on conc goroutines and returns when they are done; it stops
// handing out work once ctx is cancelled.
func parallel(ctx context.Context, n, conc int, fn func(i int)) {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(max(conc, 1), max(n, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

func roomsPayload(room string) []byte { return fmt.Appendf(nil, `{"rooms":[%q]}`, room) }

func perUnit(d time.Duration, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// sampleAt waits until t and reads the server's /proc (summed over its processes).
func sampleAt(ctx context.Context, pids []int, t time.Time) (ProcSample, error) {
	select {
	case <-time.After(time.Until(t)):
	case <-ctx.Done():
		return ProcSample{}, ctx.Err()
	}
	return ReadProcs(pids)
}
