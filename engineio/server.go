// Package engineio is Switchboard's Engine.IO v4 server: sessions, long-polling, websocket, the
// upgrade from one to the other, the heartbeat and CORS, at the cost of as little memory per
// connection as Go allows.
//
// Its shape follows from that cost. A websocket is read by a poller (on Linux an epoll set of
// ours, served by a few goroutines; elsewhere a goroutine per connection parked in the runtime's
// netpoller), so an idle connection holds no goroutine and no buffer. Every heartbeat deadline
// lives in one timer heap (timers.go). Nothing of the handshake request is kept: the layer above
// reads what it needs during Config.Open. Outgoing packets are framed once (Message) and written
// from the sending goroutine with non-blocking system calls, in the order they were sent.
//
// It is one package past 2,000 lines because its parts share a session's lock and state: the
// long-polling and websocket transports, the upgrade that moves a session from one to the other,
// the heartbeat the timer heap fires and the poller that reads the websockets all act on a Conn
// under its mutex. Its files split by concept: server (handshakes, routing, CORS), conn (the
// session), polling, websocket (handshake, writes, reads), wsframe (the frame codec), timers,
// poller_* (per platform), message, packet.
package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server. Zero durations and sizes take the defaults of Node's engine.
type Config struct {
	// PingInterval and PingTimeout are the heartbeat: a ping every interval, a pong expected
	// within the timeout (defaults 25 s and 20 s).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxPayload bounds a websocket message and a long-polling POST body (default 1,000,000).
	MaxPayload int64
	// UpgradeTimeout bounds a polling→websocket upgrade (default 10 s).
	UpgradeTimeout time.Duration
	// BodyTimeout bounds the read of a long-polling POST body (default 10 s).
	BodyTimeout time.Duration
	// WriteTimeout bounds a blocked websocket write to a client that stopped reading (0 = none).
	WriteTimeout time.Duration
	// MaxWriteBuffer bounds the bytes queued for one client before it is disconnected (0 = none).
	MaxWriteBuffer int
	// Transports lists the allowed transports, "polling" and "websocket" (default both).
	Transports []string
	// CORSOrigins are the browser origins allowed on long-polling requests: "*" (any, without
	// credentials), or a list (each allowed with credentials). Empty = none is answered with
	// CORS headers.
	CORSOrigins []string
	// AllowRequest may refuse a handshake (403 with its error's text); nil accepts all.
	AllowRequest func(r *http.Request) error
	// Open is called for every new session, before the client hears of it; r is the handshake
	// request, valid only during the call. It returns the session's Receiver.
	Open func(c *Conn, r *http.Request) Receiver
	// OnWriteTimeout and OnSlowClient are told when a client is dropped for those reasons
	// (for metrics); nil = not told.
	OnWriteTimeout func()
	OnSlowClient   func()
}

func (c *Config) withDefaults() {
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1_000_000
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = 10 * time.Second
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{"polling", "websocket"}
	}
	if c.OnWriteTimeout == nil {
		c.OnWriteTimeout = func() {}
	}
	if c.OnSlowClient == nil {
		c.OnSlowClient = func() {}
	}
}

func (c *Config) onWriteTimeout() { c.OnWriteTimeout() }
func (c *Config) onSlowClient()   { c.OnSlowClient() }

// Server serves Engine.IO sessions over HTTP. Mount it at the engine's path (/socket.io/).
type Server struct {
	cfg       Config
	polling   bool
	websocket bool
	anyOrigin bool
	origins   map[string]bool

	timers *timers
	poller *poller

	shards [sessionShards]sessionShard
	seed   maphash.Seed
	count  atomic.Int64

	closing    atomic.Bool
	lingers    sync.WaitGroup
	lingerStop chan struct{}
}

const sessionShards = 32

type sessionShard struct {
	mu sync.RWMutex
	m  map[string]*Conn
}

// NewServer returns a Server; cfg.Open is required.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Open == nil {
		panic("engineio: NewServer expects Config.Open")
	}
	cfg.withDefaults()
	s := &Server{cfg: cfg, seed: maphash.MakeSeed(), origins: map[string]bool{}, lingerStop: make(chan struct{})}
	for _, t := range cfg.Transports {
		switch t {
		case "polling":
			s.polling = true
		case "websocket":
			s.websocket = true
		default:
			return nil, fmt.Errorf("engineio: unknown transport %q", t)
		}
	}
	for _, o := range cfg.CORSOrigins {
		if o == "*" {
			s.anyOrigin = true
		}
		s.origins[o] = true
	}
	for i := range s.shards {
		s.shards[i].m = map[string]*Conn{}
	}
	p, err := newPoller()
	if err != nil {
		return nil, fmt.Errorf("engineio: start poller: %w", err)
	}
	s.poller = p
	s.timers = newTimers(func(c *Conn, kind timerKind) { c.heartbeat(kind) })
	return s, nil
}

// Count is the number of open sessions.
func (s *Server) Count() int { return int(s.count.Load()) }

// Conn returns the open session sid, or nil.
func (s *Server) Conn(sid string) *Conn {
	c := s.lookup(sid)
	if c == nil || c.Closed() {
		return nil
	}
	return c
}

// Conns lists the open sessions.
func (s *Server) Conns() []*Conn {
	var out []*Conn
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for _, c := range sh.m {
			out = append(out, c)
		}
		sh.mu.RUnlock()
	}
	return out
}

// Engine.IO's errors (Server.errors in Node's engine), answered as JSON with 400 (403 for
// forbidden).
type engineError struct {
	code    int
	message string
	status  int
}

var (
	errUnknownTransport = &engineError{0, "Transport unknown", http.StatusBadRequest}
	errUnknownSID       = &engineError{1, "Session ID unknown", http.StatusBadRequest}
	errBadMethod        = &engineError{2, "Bad handshake method", http.StatusBadRequest}
	errBadRequest       = &engineError{3, "Bad request", http.StatusBadRequest}
	errUnsupported      = &engineError{5, "Unsupported protocol version", http.StatusBadRequest}
	errMalformed        = &engineError{3, "Bad request: the payload does not decode", http.StatusBadRequest}
	errTooLarge         = &engineError{3, "Bad request: the payload is larger than maxPayload", http.StatusRequestEntityTooLarge}
	errTimeout          = &engineError{3, "Bad request: the body was not received in time", http.StatusRequestTimeout}
)

// refuse answers an engine error.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *engineError) {
	h := w.Header()
	s.cors(h, r)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	fmt.Fprintf(w, `{"code":%d,"message":%q}`, e.code, e.message)
}

// ServeHTTP serves the engine's requests: handshakes, polls, posts and websocket upgrades.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r.URL.RawQuery)
	if r.Method == http.MethodOptions {
		s.preflight(w, r)
		return
	}
	if q.eio != "4" {
		s.refuse(w, r, errUnsupported)
		return
	}
	ws := q.transport == "websocket"
	if !(ws && s.websocket) && !(q.transport == "polling" && s.polling) {
		s.refuse(w, r, errUnknownTransport)
		return
	}
	if !validHeaderValue(r.Header.Get("Origin")) {
		s.refuse(w, r, errBadRequest)
		return
	}
	if q.sid != "" {
		c := s.lookup(q.sid)
		if c == nil {
			s.refuse(w, r, errUnknownSID)
			return
		}
		switch {
		case ws && isWebsocketUpgrade(r):
			s.serveUpgrade(c, w, r)
		case ws:
			s.refuse(w, r, errBadRequest)
		case r.Method == http.MethodGet:
			s.servePoll(c, w, r)
		case r.Method == http.MethodPost:
			s.servePost(c, w, r)
		default:
			s.refuse(w, r, errBadMethod)
		}
		return
	}
	if r.Method != http.MethodGet {
		s.refuse(w, r, errBadMethod)
		return
	}
	if s.closing.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	if ws && !isWebsocketUpgrade(r) {
		s.refuse(w, r, errBadRequest)
		return
	}
	if s.cfg.AllowRequest != nil {
		if err := s.cfg.AllowRequest(r); err != nil {
			s.refuse(w, r, &engineError{4, err.Error(), http.StatusForbidden})
			return
		}
	}
	if ws {
		s.handshakeWebsocket(w, r)
	} else {
		s.handshakePolling(w, r)
	}
}

// query holds the parameters the engine reads.
type query struct{ eio, transport, sid string }

// parseQuery reads EIO, transport and sid without building url.Values.
func parseQuery(raw string) query {
	var q query
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.IndexByte(v, '%') >= 0 || strings.IndexByte(v, '+') >= 0 {
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
		}
		switch k {
		case "EIO":
			q.eio = v
		case "transport":
			q.transport = v
		case "sid":
			q.sid = v
		}
	}
	return q
}

// validHeaderValue refuses control characters, as Node's checkInvalidHeaderChar does.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func newSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// open hands c to the layer above. If c was closed meanwhile (the layer above, or a goroutine it
// gave c to, may close it before Open returns), OnClose is called now that there is a receiver.
func (s *Server) open(c *Conn, r *http.Request) {
	recv := s.cfg.Open(c, r)
	c.mu.Lock()
	c.recv = recv
	missed := recv != nil && c.state != stateOpen && !c.notified && !c.dispatching
	if missed {
		c.notified = true
	}
	reason := c.reason
	c.mu.Unlock()
	if missed {
		recv.OnClose(c, reason)
	}
}

func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	c := newConn(s, newSessionID(), remoteIP(r))
	c.poll = &polling{}
	s.open(c, r)
	s.register(c)
	open := openMessage(c.id, s.websocket, s.cfg.PingInterval.Milliseconds(), s.cfg.PingTimeout.Milliseconds(), s.cfg.MaxPayload)
	c.mu.Lock()
	if c.state == stateOpen {
		s.timers.schedule(c, timerPing, s.cfg.PingInterval)
	}
	msgs := append([]*Message{open}, c.poll.buf...) // anything the layer above sent in Open
	c.poll.drop()
	c.mu.Unlock()
	s.writePayload(w, r, msgs, false)
}

func (s *Server) handshakeWebsocket(w http.ResponseWriter, r *http.Request) {
	accept, err := checkWebsocketHandshake(r)
	if err != nil {
		s.refuse(w, r, errBadRequest)
		return
	}
	c := newConn(s, newSessionID(), remoteIP(r))
	open := openMessage(c.id, false, s.cfg.PingInterval.Milliseconds(), s.cfg.PingTimeout.Milliseconds(), s.cfg.MaxPayload)
	wt, early := acceptTransport(c, w, accept, open, probeNone)
	if wt == nil {
		return
	}
	c.ws = wt // before Open: the layer above may send as soon as it has the connection
	s.open(c, r)
	s.register(c)
	c.mu.Lock()
	if c.state == stateOpen {
		s.timers.schedule(c, timerPing, s.cfg.PingInterval)
	}
	c.mu.Unlock()
	if err := wt.start(early); err != nil {
		c.closeWith(ReasonTransportError, false)
	}
}

// serveUpgrade takes the websocket of a long-polling session's upgrade.
func (s *Server) serveUpgrade(c *Conn, w http.ResponseWriter, r *http.Request) {
	accept, err := checkWebsocketHandshake(r)
	if err != nil {
		s.refuse(w, r, errBadRequest)
		return
	}
	wt, early := acceptTransport(c, w, accept, nil, probeWaiting)
	if wt == nil {
		return
	}
	c.mu.Lock()
	ok := c.state == stateOpen && c.probe == nil && !c.upgraded && c.poll != nil
	if ok {
		c.probe = wt
	}
	c.mu.Unlock()
	if !ok { // an upgrade is in progress or done: this websocket is not the session's
		wt.shutdown()
		return
	}
	time.AfterFunc(s.cfg.UpgradeTimeout, func() {
		if c.probing() == wt {
			c.probeFailed(wt)
			wt.shutdown()
		}
	})
	if err := wt.start(early); err != nil {
		c.probeFailed(wt)
		wt.shutdown()
	}
}

func (s *Server) shard(sid string) *sessionShard {
	return &s.shards[maphash.String(s.seed, sid)%sessionShards]
}

func (s *Server) register(c *Conn) {
	sh := s.shard(c.id)
	sh.mu.Lock()
	sh.m[c.id] = c
	sh.mu.Unlock()
	s.count.Add(1)
	if c.Closed() { // closed during Open
		s.forget(c)
	}
}

func (s *Server) lookup(sid string) *Conn {
	sh := s.shard(sid)
	sh.mu.RLock()
	c := sh.m[sid]
	sh.mu.RUnlock()
	return c
}

// forget removes a closed session.
func (s *Server) forget(c *Conn) {
	sh := s.shard(c.id)
	sh.mu.Lock()
	_, ok := sh.m[c.id]
	if ok {
		delete(sh.m, c.id)
	}
	sh.mu.Unlock()
	if ok {
		s.count.Add(-1)
	}
}

// pollLinger is how long a closed long-polling session keeps its last packets for the client's
// next poll (Node's polling closeTimeout).
const pollLinger = 30 * time.Second

// clientCloseLinger is how long a session the client closed over long-polling still answers a
// poll (with a noop) that raced the close.
const clientCloseLinger = time.Second

// linger keeps a session closed with packets still due until its next poll takes them (which
// closes c.lingerDone), or pollLinger passed.
func (s *Server) linger(c *Conn, d time.Duration) {
	s.lingers.Add(1)
	go func() {
		defer s.lingers.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-c.lingerDone:
		case <-s.lingerStop:
			c.mu.Lock()
			c.lingering = false
			c.mu.Unlock()
			s.forget(c)
		case <-t.C:
			c.mu.Lock()
			c.lingering = false
			c.mu.Unlock()
			s.forget(c)
		}
	}()
}

// Shutdown closes every session as Close does and waits, until ctx ends, for their last packets
// to go out; then it stops the engine's goroutines. New handshakes are refused from its start.
func (s *Server) Shutdown(ctx interface{ Done() <-chan struct{} }) {
	s.closing.Store(true)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		conns := make([]*Conn, 0, len(sh.m))
		for _, c := range sh.m {
			conns = append(conns, c)
		}
		sh.mu.RUnlock()
		for _, c := range conns {
			c.Close()
		}
	}
	done := make(chan struct{})
	go func() { s.lingers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		close(s.lingerStop) // what was still owed is given up
		<-done
	}
	s.timers.shutdown()
	s.poller.close()
}

// cors sets the CORS headers of a long-polling answer.
func (s *Server) cors(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	switch {
	case s.anyOrigin:
		h["Access-Control-Allow-Origin"] = anyOriginValue
	case origin != "" && s.origins[origin]:
		h.Set("Access-Control-Allow-Origin", origin)
		h["Access-Control-Allow-Credentials"] = trueValue
		h["Vary"] = varyOrigin
	}
}

var (
	anyOriginValue = []string{"*"}
	trueValue      = []string{"true"}
	varyOrigin     = []string{"Origin"}
)

// preflight answers a CORS preflight request.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	s.cors(h, r)
	h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// ErrClosed is returned by Send on a closed connection.
var ErrClosed = errClosed
