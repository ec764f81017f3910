package server

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	eio "github.com/zishang520/socket.io/clients/engine/v3"
	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// waitTimeout bounds every wait in these tests; nothing sleeps, everything waits for an event.
const waitTimeout = 10 * time.Second

// testConfig is DefaultConfig on a free loopback port with quiet logs and a short drain that
// starts at once (no load balancer to warn).
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.LogLevel = zerolog.WarnLevel
	cfg.ShutdownGrace = 5 * time.Second
	cfg.DrainDelay = 0
	return cfg
}

// testServer is a node serving on 127.0.0.1:0 until the test ends.
type testServer struct {
	*Server
	URL  string
	stop func() error // cancels Serve and returns its result; safe to call more than once
}

func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(cfg.LogLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var result error
	stopped := false
	ts := &testServer{Server: srv, URL: "http://" + ln.Addr().String()}
	ts.stop = func() error {
		if !stopped {
			cancel()
			select {
			case result = <-done:
			case <-time.After(cfg.ShutdownGrace + waitTimeout):
				t.Errorf("Serve did not return after shutdown")
			}
			stopped = true
		}
		return result
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	waitFor(t, "readiness", func() bool {
		res, err := http.Get(ts.URL + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return ts
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(waitTimeout, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually polls cond until it holds (true) or d has passed (false).
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// receive waits for one value on ch.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// transportSets are the ways the Go client reaches the server. Polling-only is left to the
// socket.io-client tests in client-js: the Go client v3.0.6 sends its next long-polling GET only
// after a heartbeat, so every ack would take a ping interval (the server answers at once; the
// stock JS client shows it).
var transportSets = map[string][]eio.TransportCtor{
	"websocket":       {&eio.WebSocketBuilder{}},
	"polling-upgrade": {&eio.PollingBuilder{}, &eio.WebSocketBuilder{}},
}

type dialOptions struct {
	nsp        string
	transports []eio.TransportCtor // websocket when nil
	auth       map[string]any      // handshake auth, e.g. {"name": "ada"} or {"token": ...}
	header     http.Header         // extra request headers, e.g. Authorization
	reconnect  bool
	// connects, when set, counts the namespace connects the server answered, those of attempts
	// given up afterwards (a stalled upgrade, see connectOnce) included: the server counted them.
	connects *atomic.Int64
}

// dial connects the library's Go client and waits for "connect"; a connect_error fails the test.
func dial(t *testing.T, url string, o dialOptions) *sio.Socket {
	t.Helper()
	s, cerr := tryConnect(t, url, o)
	if cerr != nil {
		t.Fatalf("connect_error: %s %v", cerr.Message, cerr.Data)
	}
	return s
}

// connectResult is what a connection attempt ended with.
type connectResult struct {
	err *types.ExtendedError // nil when connected
}

// tryConnect connects the Go client with auth and extra headers and returns the socket and, when
// refused, the connect_error.
//
// The Go client v3.0.6 has two start-up races (clients/socket/v3): Manager.Open subscribes to the
// engine's "open" only after engine.NewSocket started opening, so a fast open can be missed and
// the manager stays "opening"; and Socket.Connect, when the engine opens while it runs, sends
// CONNECT twice (once from the "open" event, once because it then sees the manager open), which
// any Socket.IO server, Node's included, answers by closing the connection. So the manager is
// opened first and waited for, and only then the socket connects (exactly one CONNECT); an open
// that is never reported is given up after a while and made again with a new client, at most
// three times. The server's answer is checked on the attempt that gets one.
func tryConnect(t *testing.T, url string, o dialOptions) (*sio.Socket, *types.ExtendedError) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, res, ok := connectOnce(t, url, o, attempt < 3)
		if ok {
			return s, res.err
		}
		t.Logf("Go client attempt %d: the engine open went unreported, or the upgrade probe's answer was missed; trying again", attempt)
	}
}

// upgradeStall is how long a polling→websocket upgrade of the Go client may take before the
// attempt counts as one whose probe answer the client missed (see connectOnce).
const upgradeStall = 3 * time.Second

func connectOnce(t *testing.T, url string, o dialOptions, mayRetry bool) (*sio.Socket, connectResult, bool) {
	t.Helper()
	opts := sio.DefaultOptions()
	opts.SetForceNew(true)
	opts.SetReconnection(o.reconnect)
	transports := o.transports
	if transports == nil {
		transports = []eio.TransportCtor{&eio.WebSocketBuilder{}}
	}
	opts.SetTransports(types.NewSet(transports...))
	if o.auth != nil {
		opts.SetAuth(o.auth)
	}
	if o.header != nil {
		opts.SetExtraHeaders(o.header)
	}
	opts.SetAutoConnect(false)
	nsp := o.nsp
	if nsp == "" {
		nsp = "/"
	}

	manager := sio.NewManager(url, opts)
	opened := make(chan error, 1)
	manager.Open(func(err error) { opened <- err })
	wait := waitTimeout
	if mayRetry {
		wait = 1500 * time.Millisecond
	}
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("engine open: %v", err)
		}
	case <-time.After(wait):
		if !mayRetry {
			t.Fatalf("timed out waiting for the engine to open")
		}
		manager.Engine().Close()
		return nil, connectResult{}, false
	}

	s := manager.Socket(nsp, opts)
	t.Cleanup(func() { s.Disconnect() })
	// abandon ends an attempt that stalled on one of the Go client's defects (below): fatal on
	// the last attempt, else the client is closed and tryConnect makes a new one.
	abandon := func(what string) (*sio.Socket, connectResult, bool) {
		if !mayRetry {
			t.Fatalf("timed out waiting for %s", what)
		}
		s.Disconnect()
		manager.Engine().Close()
		return nil, connectResult{}, false
	}
	done := make(chan connectResult, 1)
	_ = s.Once("connect", func(...any) { done <- connectResult{} })
	_ = s.Once("connect_error", func(args ...any) {
		e, ok := args[0].(*types.ExtendedError)
		if !ok {
			t.Errorf("connect_error argument %#v is not an ExtendedError", args[0])
			e = types.NewExtendedError("?", nil)
		}
		done <- connectResult{err: e}
	})
	s.Connect()
	// Over polling the Go client queues its CONNECT behind its pending GET (one queue for both),
	// which the server answers at the next ping (25 s) unless an upgrade releases it first; with
	// the upgrade's probe answer missed (below), the CONNECT waits for that ping. Such an attempt
	// is given up after upgradeStall + 1 s and made again with a new client.
	connectWait := waitTimeout
	if len(transports) > 1 && mayRetry {
		connectWait = upgradeStall + time.Second
	}
	var res connectResult
	select {
	case res = <-done:
	case <-time.After(connectWait):
		return abandon("connect or connect_error")
	}
	if res.err == nil && o.connects != nil {
		o.connects.Add(1)
	}
	if res.err == nil && len(transports) > 1 {
		// polling→websocket: hand the socket over once upgraded. The Go client's long-polling
		// sends its next GET only after a heartbeat, so an ack due while it still polls could
		// take a whole ping interval to arrive (polling-only is tested with socket.io-client).
		// The Go client also registers its listener for the probe's answer only after sending
		// the probe (clients/engine/v3 socket-with-upgrade.go _probe: Send, then Once("packet")):
		// when the server's "3probe" comes back first, the client never upgrades and keeps
		// polling. A healthy upgrade takes milliseconds; one that has not happened after
		// upgradeStall is that lost answer, and the attempt is made again with a new client.
		upgraded := func() bool { return s.Io().Engine().Transport().Name() == "websocket" }
		if !eventually(upgradeStall, upgraded) {
			return abandon("the upgrade to websocket")
		}
	}
	return s, res, true
}

// call emits event with payload and waits for the ack's first argument.
func call(t *testing.T, s *sio.Socket, event string, payload any) map[string]any {
	t.Helper()
	type reply struct {
		args []any
		err  error
	}
	got := make(chan reply, 1)
	if err := s.Emit(event, payload, socket.Ack(func(args []any, err error) { got <- reply{args, err} })); err != nil {
		t.Fatalf("emit %s: %v", event, err)
	}
	r := receive(t, event+" ack", got)
	args := r.args
	if len(args) != 1 {
		t.Fatalf("%s ack: want 1 argument, got %v (%v)", event, args, r.err)
	}
	m, ok := args[0].(map[string]any)
	if !ok {
		t.Fatalf("%s ack: want an object, got %#v", event, args[0])
	}
	return m
}
