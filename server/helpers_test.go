package server

import (
	"context"
	"errors"
	"net"
	"net/http"
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

// testConfig is DefaultConfig on a free loopback port with quiet logs and a short drain.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.LogLevel = zerolog.WarnLevel
	cfg.ShutdownGrace = 5 * time.Second
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
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	transports []eio.TransportCtor
	auth       map[string]any
	reconnect  bool
}

// dial connects the library's Go client and waits for "connect" (or fails on connect_error).
//
// The Go client v3.0.6 has a start-up race: Manager.Open creates the engine socket, which starts
// connecting at once, and only then subscribes to its "open" event; when the handshake wins, the
// manager never sees "open" and the socket never sends its CONNECT packet (the server then holds
// an engine client without a socket). dial gives such an attempt a few seconds and starts a new
// client; a server that does not answer still fails the test after the last attempt.
func dial(t *testing.T, url string, o dialOptions) *sio.Socket {
	t.Helper()
	const attempts = 3
	for i := 1; ; i++ {
		s, err := dialOnce(t, url, o, waitTimeout/attempts)
		if err == nil {
			return s
		}
		if _, refused := err.(connectErr); refused || i == attempts {
			t.Fatalf("dial %s: %v", o.nsp, err)
		}
		t.Logf("dial %s: %v; retrying with a new client", o.nsp, err)
	}
}

var errNoConnect = errors.New("timed out waiting for connect")

func dialOnce(t *testing.T, url string, o dialOptions, timeout time.Duration) (*sio.Socket, error) {
	t.Helper()
	opts := sio.DefaultOptions()
	opts.SetForceNew(true)
	opts.SetReconnection(o.reconnect)
	if o.transports != nil {
		opts.SetTransports(types.NewSet(o.transports...))
	}
	if o.auth != nil {
		opts.SetAuth(o.auth)
	}
	nsp := o.nsp
	if nsp == "" {
		nsp = "/"
	}
	connected := make(chan error, 1)
	s, err := sio.Connect(url+nsp, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	report := func(err error) {
		select {
		case connected <- err:
		default:
		}
	}
	_ = s.Once("connect", func(...any) { report(nil) })
	_ = s.Once("connect_error", func(args ...any) { report(connectError(args)) })
	// Connect starts at once: the socket may be connected before the listeners above were added.
	if s.Connected() {
		report(nil)
	}
	select {
	case err := <-connected:
		if err != nil {
			s.Disconnect()
			return nil, err
		}
		t.Cleanup(func() { s.Disconnect() })
		return s, nil
	case <-time.After(timeout):
		s.Disconnect()
		return nil, errNoConnect
	}
}

type connectErr struct{ args []any }

func (e connectErr) Error() string { return "connect_error" }

func connectError(args []any) error { return connectErr{args} }

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
