package server

import (
	"flag"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are the abuse and capacity bounds of one node. Every one of them is a setting (flag and
// SWITCHBOARD_* variable); 0 turns a count or rate limit off.
type Limits struct {
	// MaxConnections bounds the Engine.IO connections of this node; a handshake beyond it gets 503.
	MaxConnections int
	// ConnRate and ConnBurst bound new connections per second per client IP (a token bucket);
	// a handshake beyond it gets 429.
	ConnRate  float64
	ConnBurst int
	// EventRate and EventBurst bound the events per second one socket may send (a token bucket);
	// an event beyond it is dropped and its ack gets rate_limited.
	EventRate  float64
	EventBurst int
	// EventAbuse is how many rate-limited events a socket may send within abuseWindow before it
	// is disconnected; 0 never disconnects.
	EventAbuse int
	// MaxRoomsPerSocket bounds the rooms a socket may be in (its own id room and user room not
	// counted); a subscribe, chat:join or relay:join beyond it gets forbidden.
	MaxRoomsPerSocket int
	// WriteTimeout bounds how long one websocket write may block on a client that stops reading;
	// past it the connection is dropped.
	WriteTimeout time.Duration
	// MaxWriteBuffer bounds the bytes queued for one connection while its transport is busy (a
	// websocket write in progress, or no long-polling request waiting); each packet counts its
	// encoded size. Beyond it the connection is dropped.
	MaxWriteBuffer int64
}

// setupLimits builds the node's guards from its configuration; New calls it once the Socket.IO
// server exists.
func (s *Server) setupLimits() {
	l := s.cfg.Limits
	s.admission = &admission{
		max:     l.MaxConnections,
		clients: s.io.Connections,
		refused: s.metrics.Limited,
	}
	if l.ConnRate > 0 {
		s.admission.perIP = newIPLimiter(l.ConnRate, l.ConnBurst, time.Now)
	}
	s.guard = &eventGuard{limits: l, metrics: s.metrics, log: s.log.With().Str("component", "limits").Logger()}
}

// abuseWindow is the period EventAbuse counts rejected events over.
const abuseWindow = 10 * time.Second

// DefaultLimits returns defaults that a single node on a default Linux box (ulimit -n raised to
// 20,000 or more) serves without being the bottleneck, and that no well-behaved client reaches.
func DefaultLimits() Limits {
	return Limits{
		MaxConnections:    18_000,
		ConnRate:          0, // off: behind a load balancer every client shares its address
		ConnBurst:         40,
		EventRate:         1000,
		EventBurst:        2000,
		EventAbuse:        5000,
		MaxRoomsPerSocket: 100,
		WriteTimeout:      10 * time.Second,
		MaxWriteBuffer:    8 << 20,
	}
}

// flags registers the limit settings on fs.
func (l *Limits) flags(fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConnections, "max-connections", l.MaxConnections, "Engine.IO connections per node; 0 = unlimited")
	fs.Float64Var(&l.ConnRate, "conn-rate", l.ConnRate, "new connections per second per client IP; 0 = unlimited")
	fs.IntVar(&l.ConnBurst, "conn-burst", l.ConnBurst, "burst of new connections per client IP")
	fs.Float64Var(&l.EventRate, "event-rate", l.EventRate, "events per second per socket; 0 = unlimited")
	fs.IntVar(&l.EventBurst, "event-burst", l.EventBurst, "burst of events per socket")
	fs.IntVar(&l.EventAbuse, "event-abuse", l.EventAbuse, "rate-limited events within 10s that disconnect a socket; 0 = never")
	fs.IntVar(&l.MaxRoomsPerSocket, "max-rooms-per-socket", l.MaxRoomsPerSocket, "rooms one socket may be in; 0 = unlimited")
	fs.DurationVar(&l.WriteTimeout, "write-timeout", l.WriteTimeout, "longest blocked websocket write before the connection is dropped")
	fs.Int64Var(&l.MaxWriteBuffer, "max-write-buffer", l.MaxWriteBuffer, "bytes queued per connection before it is dropped; 0 = unlimited")
}

// validate checks the limits; bad builds the ConfigError.
func (l Limits) validate(bad func(setting, format string, args ...any) error) error {
	nonNegative := []struct {
		setting string
		value   float64
	}{
		{"max-connections", float64(l.MaxConnections)},
		{"conn-rate", l.ConnRate},
		{"event-rate", l.EventRate},
		{"event-abuse", float64(l.EventAbuse)},
		{"max-rooms-per-socket", float64(l.MaxRoomsPerSocket)},
		{"max-write-buffer", float64(l.MaxWriteBuffer)},
	}
	for _, v := range nonNegative {
		if v.value < 0 {
			return bad(v.setting, "must be 0 (unlimited) or more")
		}
	}
	if l.ConnRate > 0 && l.ConnBurst < 1 {
		return bad("conn-burst", "must be at least 1 when --conn-rate is set")
	}
	if l.EventRate > 0 && l.EventBurst < 1 {
		return bad("event-burst", "must be at least 1 when --event-rate is set")
	}
	if l.WriteTimeout <= 0 {
		return bad("write-timeout", "must be positive")
	}
	return nil
}

// admission refuses Engine.IO handshakes beyond the connection limits. It only looks at
// handshakes (requests without a sid): the requests of an established session always pass.
type admission struct {
	max     int
	clients func() int // the engine's current connection count
	perIP   *ipLimiter // nil when --conn-rate is 0
	refused func(limit string)

	mu       sync.Mutex
	inFlight int // handshakes being served
}

// middleware wraps the Engine.IO handler. A refused handshake gets the Engine.IO error JSON
// ({"code": 4, "message": …}) with 503 (node full) or 429 (too fast) and a Retry-After header;
// socket.io-client reports it as connect_error and retries with its backoff.
func (a *admission) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "sid=") {
			next.ServeHTTP(w, r)
			return
		}
		if a.perIP != nil && !a.perIP.allow(clientIP(r)) {
			a.refused("conn_rate")
			refuseHandshake(w, http.StatusTooManyRequests, "too many connections from this address")
			return
		}
		if !a.reserve() {
			a.refused("max_connections")
			refuseHandshake(w, http.StatusServiceUnavailable, "server is at its connection limit")
			return
		}
		defer a.release()
		next.ServeHTTP(w, r)
	})
}

// reserve takes a slot for one handshake. A handshake in flight counts against the limit until
// its handler returns (by then the engine counts its connection, if it made one), so the limit
// is never exceeded; for the instant between the two it counts twice, which can only refuse a
// handshake early, never admit one too many.
func (a *admission) reserve() bool {
	if a.max <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clients()+a.inFlight >= a.max {
		return false
	}
	a.inFlight++
	return true
}

func (a *admission) release() {
	if a.max <= 0 {
		return
	}
	a.mu.Lock()
	a.inFlight--
	a.mu.Unlock()
}

// refuseHandshake answers a handshake with the Engine.IO error shape.
func refuseHandshake(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Retry-After", "1")
	writeJSON(w, status, map[string]any{"code": 4, "message": message})
}

// clientIP is the peer address of r. Forwarded headers are not trusted: behind a proxy or load
// balancer every client shares its address, so raise --conn-rate there or turn it off.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ipLimiter is one token bucket per client IP. An entry is dropped once it has been idle long
// enough for its bucket to be full again, which loses nothing (a new bucket starts full), so the
// map holds at most the addresses seen within the last refill period.
type ipLimiter struct {
	rate  rate.Limit
	burst int
	idle  time.Duration // time for an empty bucket to refill
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*ipBucket
	lastSweep time.Time
}

type ipBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(perSecond float64, burst int, now func() time.Time) *ipLimiter {
	idle := time.Duration(float64(burst) / perSecond * float64(time.Second))
	if idle < time.Second {
		idle = time.Second
	}
	return &ipLimiter{
		rate:    rate.Limit(perSecond),
		burst:   burst,
		idle:    idle,
		now:     now,
		buckets: make(map[string]*ipBucket),
	}
}

// allow takes one token from ip's bucket.
func (l *ipLimiter) allow(ip string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.idle {
		l.sweep(now)
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &ipBucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}

// sweep drops the buckets idle for a whole refill period. Callers hold mu.
func (l *ipLimiter) sweep(now time.Time) {
	for ip, b := range l.buckets {
		if now.Sub(b.seen) >= l.idle {
			delete(l.buckets, ip)
		}
	}
	l.lastSweep = now
}

// size is the number of addresses tracked, for tests.
func (l *ipLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// formatLimit renders a limit for logs and docs: 0 is "unlimited".
func formatLimit(v float64) string {
	if v == 0 {
		return "unlimited"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
