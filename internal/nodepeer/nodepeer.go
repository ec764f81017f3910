// Package nodepeer runs a Node.js Socket.IO 4.8 server (client-js/test/peers/cluster-peer.js)
// that joins a cluster through Redis with one of Node's adapters, so that Go tests can check
// that Switchboard's adapters interoperate with it: the test starts a peer, connects clients to
// it (Peer.URL), and drives it with commands (emit, fetchSockets, socketsJoin, serverSideEmit,
// serverCount, the redis-emitter, ...; see the script's header for the list and their
// arguments). What happens on the peer on its own (a serverSideEmit it received, a socket that
// connected, a Redis client error) comes back as Events.
//
// The peer needs node on PATH and client-js/node_modules (`make setup`); a test that starts one
// without them fails with that message. The peer is stopped when the test ends. Start returns
// once the peer serves; its adapter may still be subscribing: WaitServerCount waits for the
// cluster a test expects.
package nodepeer

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Options configures a peer; they are the script's options.
type Options struct {
	// Adapter is "redis" (createAdapter), "sharded" (createShardedAdapter) or "streams"
	// (@socket.io/redis-streams-adapter).
	Adapter string `json:"adapter"`
	// RedisURL names one Redis server; ClusterNodes (host:port) a Redis Cluster instead.
	RedisURL     string   `json:"redisUrl,omitempty"`
	ClusterNodes []string `json:"clusterNodes,omitempty"`
	// Prefix is the adapter's key, channelPrefix and streamName [socket.io].
	Prefix string `json:"prefix,omitempty"`
	// AdapterOptions are passed to the adapter as they are (subscriptionMode, requestsTimeout,
	// publishOnSpecificResponseChannel, ...).
	AdapterOptions map[string]any `json:"adapterOptions,omitempty"`
	// Namespaces are created at start [/].
	Namespaces []string `json:"namespaces,omitempty"`
	// Recovery turns connectionStateRecovery on.
	Recovery bool `json:"recovery,omitempty"`
	// ReconnectDelay makes the peer's Redis clients wait that long before each reconnect (a
	// node slow to come back after an outage); 0 is node-redis's own backoff.
	ReconnectDelay time.Duration `json:"-"`
}

// Timeout bounds the peer's start and each command.
const Timeout = 20 * time.Second

// Peer is a running Node server.
type Peer struct {
	// Port is where it serves Socket.IO on 127.0.0.1; URL is http://127.0.0.1:Port.
	Port int
	URL  string
	// UIDs are the adapter uids of the namespaces created at start.
	UIDs map[string]string

	t      testing.TB
	cmd    *exec.Cmd
	stdin  *json.Encoder
	stderr *syncBuffer
	exited chan struct{}

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan reply
	events  []Event
	more    chan struct{} // signalled when an event arrives
}

// Event is a line the peer printed on its own.
type Event struct {
	// Kind is "sse" (a serverSideEmit reached the peer), "connection", "disconnect" or
	// "redisError" (a Redis client of the peer failed: its adapter may have stopped listening).
	Kind    string `json:"event"`
	Nsp     string `json:"nsp"`
	SID     string `json:"sid"`
	Name    string `json:"name"` // the serverSideEmit's event name
	Args    []any  `json:"args"`
	WithAck bool   `json:"withAck"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Raw is the whole line.
	Raw json.RawMessage `json:"-"`
}

type reply struct {
	ID     int             `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ClientJS is the client-js directory of the repository the test runs in.
func ClientJS() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "client-js"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nodepeer: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start runs a peer with o and waits until it serves; it fails the test when node or the JS
// packages are missing, or when the peer does not start.
func Start(t testing.TB, o Options) *Peer {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("nodepeer: node is not on PATH (Node.js 20 or newer is a prerequisite): %v", err)
	}
	dir, err := ClientJS()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"socket.io", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "@socket.io/redis-streams-adapter", "redis"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("nodepeer: client-js/node_modules/%s is missing: run `make setup`", pkg)
		}
	}
	opts, err := json.Marshal(struct {
		Options
		ReconnectMS int64 `json:"reconnectDelayMs,omitempty"`
	}{o, o.ReconnectDelay.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	p := &Peer{
		t:       t,
		cmd:     exec.Command(node, "test/peers/cluster-peer.js", string(opts)),
		stderr:  &syncBuffer{},
		exited:  make(chan struct{}),
		waiting: map[int]chan reply{},
		more:    make(chan struct{}, 1),
	}
	p.cmd.Dir = dir
	p.cmd.Stderr = p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = json.NewEncoder(stdin)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("nodepeer: start node: %v", err)
	}
	ready := make(chan Event, 1)
	go p.read(stdout, ready)
	t.Cleanup(p.stop)
	select {
	case ev := <-ready:
		var r struct {
			Port int               `json:"port"`
			UIDs map[string]string `json:"uids"`
		}
		if err := json.Unmarshal(ev.Raw, &r); err != nil {
			t.Fatalf("nodepeer: ready line %s: %v", ev.Raw, err)
		}
		p.Port, p.UIDs = r.Port, r.UIDs
		p.URL = fmt.Sprintf("http://127.0.0.1:%d", r.Port)
	case <-p.exited:
		t.Fatalf("nodepeer: the peer exited before it served: %s", p.stderr)
	case <-time.After(Timeout):
		t.Fatalf("nodepeer: the peer did not start within %v: %s", Timeout, p.stderr)
	}
	return p
}

// read dispatches the peer's lines: answers to their callers, events to the list.
func (p *Peer) read(stdout interface{ Read([]byte) (int, error) }, ready chan<- Event) {
	defer close(p.exited)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		var head struct {
			ID    *int   `json:"id"`
			Event string `json:"event"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue
		}
		if head.ID != nil {
			var r reply
			if json.Unmarshal(line, &r) == nil {
				p.mu.Lock()
				ch := p.waiting[r.ID]
				delete(p.waiting, r.ID)
				p.mu.Unlock()
				if ch != nil {
					ch <- r
				}
			}
			continue
		}
		var ev Event
		_ = json.Unmarshal(line, &ev)
		ev.Raw = line
		if ev.Kind == "ready" {
			ready <- ev
			continue
		}
		p.mu.Lock()
		p.events = append(p.events, ev)
		p.mu.Unlock()
		select {
		case p.more <- struct{}{}:
		default:
		}
	}
	_ = p.cmd.Wait()
}

// Call runs one command (args are its fields beside cmd) and returns its result.
func (p *Peer) Call(cmd string, args map[string]any) (json.RawMessage, error) {
	line := map[string]any{}
	for k, v := range args {
		line[k] = v
	}
	ch := make(chan reply, 1)
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.waiting[id] = ch
	line["id"], line["cmd"] = id, cmd
	err := p.stdin.Encode(line)
	p.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("nodepeer: send %s: %w", cmd, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			return nil, fmt.Errorf("nodepeer: %s: %s", cmd, r.Error)
		}
		return r.Result, nil
	case <-p.exited:
		return nil, fmt.Errorf("nodepeer: %s: the peer exited: %s", cmd, p.stderr)
	case <-time.After(Timeout):
		return nil, fmt.Errorf("nodepeer: %s: no answer within %v", cmd, Timeout)
	}
}

// Must is Call that fails the test on an error, and decodes the result into into (unless nil).
func (p *Peer) Must(cmd string, args map[string]any, into any) {
	p.t.Helper()
	res, err := p.Call(cmd, args)
	if err != nil {
		p.t.Fatal(err)
	}
	if into != nil {
		if err := json.Unmarshal(res, into); err != nil {
			p.t.Fatalf("nodepeer: %s: decode %s: %v", cmd, res, err)
		}
	}
}

// WaitServerCount waits until the peer's adapter counts n servers on namespace nsp ("" is /):
// Start returns once the peer serves, but its adapter's subscriptions may still be on their
// way to Redis.
func (p *Peer) WaitServerCount(nsp string, n int) {
	p.t.Helper()
	if nsp == "" {
		nsp = "/"
	}
	deadline := time.Now().Add(Timeout)
	for {
		var got int
		p.Must("serverCount", map[string]any{"nsp": nsp}, &got)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("nodepeer: the server count of %s is %d after %v, want %d", nsp, got, Timeout, n)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// Events returns the events so far.
func (p *Peer) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// WaitEvent waits until an event for which match is true arrived (one already there counts) and
// returns it; it fails the test after Timeout.
func (p *Peer) WaitEvent(what string, match func(Event) bool) Event {
	p.t.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		for _, ev := range p.Events() {
			if match(ev) {
				return ev
			}
		}
		select {
		case <-p.more:
		case <-p.exited:
			p.t.Fatalf("nodepeer: the peer exited waiting for %s: %s", what, p.stderr)
		case <-deadline.C:
			p.t.Fatalf("nodepeer: no %s within %v; events: %v", what, Timeout, p.Events())
		}
	}
}

// Stderr is what the peer wrote on stderr.
func (p *Peer) Stderr() string { return p.stderr.String() }

// stop asks the peer to close and kills it if it does not exit in time.
func (p *Peer) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	done := make(chan struct{})
	go func() {
		_, _ = p.Call("close", nil)
		close(done)
	}()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	<-done
	if p.t.Failed() {
		if s := p.stderr.String(); s != "" {
			p.t.Logf("nodepeer stderr: %s", s)
		}
	}
}

// Bin is binary data in the form commands and results carry it: {"$bin": base64}.
func Bin(b []byte) map[string]any {
	return map[string]any{"$bin": base64.StdEncoding.EncodeToString(b)}
}
