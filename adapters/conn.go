package adapters

// conn.go: the Redis connection every Redis backend holds. Its API is shared with the
// redis-streams adapter and Redis presence (other files of this package) and is kept stable:
//
//	DialRedis(ConnConfig) (*Conn, error)      connect; fails when Redis does not answer within 3 s
//	(*Conn).Client() redis.UniversalClient     commands; fail fast with ErrRedisDown while down
//	(*Conn).Subscriber() redis.UniversalClient subscriptions and blocking reads (never fail fast)
//	(*Conn).Cluster() bool, Addr() string      what the URL named (Addr never holds a password)
//	(*Conn).Ready() bool                       Redis up and, after an outage, the cluster settled
//	(*Conn).Status() Status                    for /healthz and metrics
//	(*Conn).Failed(err)                        report a failure seen outside Client/Subscriber
//	(*Conn).RunFenced(ctx, *FencedScript, keys, args...) (any, error)
//	(*Conn).Publish(ctx, route, channel, msg) / SPublish(ctx, channel, msg) (int64, error)
//	(*Conn).NumSub(ctx, sharded, channels...) (map[string]int64, error)
//	(*Conn).ForEachMaster(ctx, fn) error
//	(*Conn).HoldRecovery(check) (remove func())
//	(*Conn).Close() error
//	NewFencedScript(body) *FencedScript, Unavailable(err) error, ErrRedisDown
//
// Timings (see doc.go for the bounds they give): the pinger asks Redis the time every 250 ms
// while it is up (every 100 ms while it is down) and gives it 500 ms to answer, so a stopped or
// dead Redis is marked down within 750 ms; a command in flight fails within 900 ms (dials,
// writes and pool waits within 500 ms). While Redis is down, commands on Client fail at once
// with ErrRedisDown.
//
// Fenced calls: a command written to a Redis that is stopped (SIGSTOP) stays in the kernel's
// socket buffer and runs when Redis resumes, long after the caller was told it failed. A
// broadcast answered "unavailable" must never be delivered later, so the calls the adapters
// answer for (broadcasts, joins, requests) go through a Lua script that first compares Redis's
// clock with a deadline the caller set (now + 250 ms, in Redis's time base, which the pinger
// measures): a script that runs late does nothing and answers an error. The caller waits 900 ms
// for the answer, so an answer Redis sent in time is read in time unless this process stalls
// for 650 ms. Subscribers see exactly the PUBLISH/SPUBLISH the script makes, so the wire is
// Node's.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Timings of the Redis connection.
const (
	redisStartTimeout = 3 * time.Second        // the first answer at DialRedis
	redisIOTimeout    = 500 * time.Millisecond // dial, write and pool wait of a command; a ping
	redisReadTimeout  = 900 * time.Millisecond // the answer to a command
	redisFenceWindow  = 250 * time.Millisecond // a fenced script that starts later does nothing
	redisPingUp       = 250 * time.Millisecond // pinger period while Redis is up
	redisPingDown     = 100 * time.Millisecond // pinger period while it is down or settling
	redisSettleMax    = 3 * time.Second        // longest a recovery waits for HoldRecovery checks
	redisSubRetry     = 100 * time.Millisecond // pause between subscriber reconnects while down
)

// ErrRedisDown is returned at once, without touching the network, by commands issued while
// Redis is known to be unreachable, and by fenced calls until the cluster settled after an
// outage. The connection recovers by itself; the adapters answer socketio.ErrUnavailable.
var ErrRedisDown = errors.New("adapters: redis is unreachable")

// errLate is a fenced script that Redis ran after its deadline (it did nothing).
var errLate = fmt.Errorf("%w: redis ran the call after its deadline", ErrRedisDown)

// Unavailable is the error an adapter returns for a cluster call that failed: it is
// socketio.ErrUnavailable (the cluster did not take it) and wraps the cause. nil stays nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", socketio.ErrUnavailable, err)
}

// ConnConfig configures DialRedis.
type ConnConfig struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// (TLS) for one server, and
	// redis+cluster://[user:password@]host:port,host:port,... (or rediss+cluster://, or a
	// redis:// URL with several comma-separated addresses) for a Redis Cluster.
	URL string
	// Logger gets the outage and recovery lines (with component=adapter).
	Logger zerolog.Logger
}

type connState int32

const (
	stateUp       connState = iota
	stateDown               // commands fail fast
	stateSettling           // Redis answers; fenced calls wait for the HoldRecovery checks
)

// Conn is the connection to Redis a backend holds: a client for commands and a separate one for
// subscriptions and blocking reads (so those never starve the commands), and the health of
// Redis as this node sees it. While Redis is down, commands fail fast, a pinger asks until Redis
// answers, and the outage and the recovery are logged once each.
type Conn struct {
	log     zerolog.Logger
	addr    string // host:port list only: the URL may hold a password
	cluster bool
	cmd     redis.UniversalClient
	sub     redis.UniversalClient

	ctx    context.Context
	cancel context.CancelFunc
	pinged chan struct{} // closed when the pinger returned
	kick   chan struct{}

	state     atomic.Int32
	live      atomic.Bool  // the start-up ping answered; failures before are the caller's
	downSince atomic.Int64 // Unix nanoseconds
	outages   atomic.Uint64
	failures  atomic.Uint64

	offsets sync.Map // server addr → Redis clock minus ours, in ms (int64)

	mu     sync.Mutex
	checks map[int]func(context.Context) bool
	nextID int
}

// quietRedis routes go-redis's own log, which prints every failed dial, to debug level once per
// process (it is a package-level setting of go-redis): the outage line says it once.
var quietRedis sync.Once

type debugLogger struct{ log zerolog.Logger }

func (d debugLogger) Printf(_ context.Context, format string, v ...any) {
	d.log.Debug().Msgf(format, v...)
}

// probeKey marks the pinger's own commands, which pass while Redis is known to be down.
type probeKey struct{}

func probeContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, probeKey{}, true)
}

func isProbe(ctx context.Context) bool { return ctx.Value(probeKey{}) != nil }

// DialRedis connects to the Redis (or Redis Cluster) at cfg.URL and fails with a clear error
// when it does not answer within 3 s.
func DialRedis(cfg ConnConfig) (*Conn, error) {
	log := cfg.Logger.With().Str("component", "adapter").Logger()
	quietRedis.Do(func() { redis.SetLogger(debugLogger{log.With().Str("component", "go-redis").Logger()}) })
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		log:    log,
		ctx:    ctx,
		cancel: cancel,
		pinged: make(chan struct{}),
		kick:   make(chan struct{}, 1),
		checks: map[int]func(context.Context) bool{},
	}
	if err := c.open(cfg.URL); err != nil {
		cancel()
		return nil, err
	}
	if err := c.probe(probeContext(ctx), redisStartTimeout); err != nil {
		cancel()
		_ = c.cmd.Close()
		_ = c.sub.Close()
		return nil, fmt.Errorf("adapters: redis at %s is unreachable: %w", c.addr, err)
	}
	c.live.Store(true)
	go c.pinger()
	return c, nil
}

// open builds the two clients from rawURL.
func (c *Conn) open(rawURL string) error {
	addrs, single, err := parseRedisURL(rawURL)
	if err != nil {
		return err
	}
	hooked := func(failFast bool) redis.Hook { return healthHook{c: c, failFast: failFast} }
	if !addrs.cluster {
		c.addr = single.Addr
		tune(single)
		c.cmd = redis.NewClient(single)
		sub := *single
		sub.ReadTimeout = -1 // a subscription waits for messages as long as it takes
		c.sub = redis.NewClient(&sub)
	} else {
		c.cluster = true
		c.addr = strings.Join(addrs.list, ",")
		copts := addrs.clusterOpts
		tuneCluster(copts)
		cmd := redis.NewClusterClient(copts)
		sub := *copts
		sub.ReadTimeout = -1
		subc := redis.NewClusterClient(&sub)
		// The commands of a cluster run on its node clients (ForEachMaster hands them out too):
		// the hooks go there, not on the cluster client, so that each command counts once.
		cmd.OnNewNode(func(n *redis.Client) { n.AddHook(hooked(true)) })
		subc.OnNewNode(func(n *redis.Client) { n.AddHook(hooked(false)) })
		c.cmd, c.sub = cmd, subc
		return nil
	}
	c.cmd.AddHook(hooked(true))
	c.sub.AddHook(hooked(false))
	return nil
}

func tune(o *redis.Options) {
	o.Protocol = 2 // no HELLO, no push notifications: the same on every Redis
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.ContextTimeoutEnabled = true // a shorter context deadline (the pinger's) shortens the wait
	o.DialTimeout = redisIOTimeout
	o.ReadTimeout = redisReadTimeout
	o.WriteTimeout = redisIOTimeout
	o.PoolTimeout = redisIOTimeout
	o.MaxRetries = -1 // a retried PUBLISH could be delivered twice, or late
	o.DialerRetries = 1
}

func tuneCluster(o *redis.ClusterOptions) {
	o.Protocol = 2
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.ContextTimeoutEnabled = true
	o.DialTimeout = redisIOTimeout
	o.ReadTimeout = redisReadTimeout
	o.WriteTimeout = redisIOTimeout
	o.PoolTimeout = redisIOTimeout
	o.MaxRetries = -1
	o.DialerRetries = 1
}

// Client is the client for commands. While Redis is down its commands fail at once with
// ErrRedisDown; every failure it sees counts in Status.
func (c *Conn) Client() redis.UniversalClient { return c.cmd }

// Subscriber is a separate client for subscriptions and blocking reads: its connections never
// time out waiting, and it does not fail fast (a subscription must come back by itself).
func (c *Conn) Subscriber() redis.UniversalClient { return c.sub }

// Cluster reports whether the URL named a Redis Cluster.
func (c *Conn) Cluster() bool { return c.cluster }

// Addr is the host:port (a comma list for a cluster) the URL named, without credentials.
func (c *Conn) Addr() string { return c.addr }

// Ready reports whether calls can go to the cluster now: Redis answers and, after an outage,
// every HoldRecovery check passed.
func (c *Conn) Ready() bool { return connState(c.state.Load()) == stateUp }

// Status is the health of Redis as this node sees it; while settling after an outage it still
// says down.
func (c *Conn) Status() Status {
	st := Status{Redis: "up", Outages: c.outages.Load(), Failures: c.failures.Load()}
	if connState(c.state.Load()) != stateUp {
		st.Redis = "down"
		st.DownSince = time.Unix(0, c.downSince.Load())
	}
	return st
}

// HoldRecovery registers check, which the pinger runs after an outage once Redis answers again:
// the connection is Ready only when every check passed on two rounds in a row (100 ms apart), or
// after 3 s. Backends use it to wait until every node of the cluster listens again, so that
// nothing answered as done right after an outage misses a node that is still resubscribing.
// check runs with a context that passes the fail-fast; remove unregisters it.
func (c *Conn) HoldRecovery(check func(ctx context.Context) bool) (remove func()) {
	c.mu.Lock()
	id := c.nextID
	c.nextID++
	c.checks[id] = check
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.checks, id)
		c.mu.Unlock()
	}
}

// Failed records a failure seen outside Client and Subscriber (a subscription's read error, a
// script's answer); a lost connection marks Redis down.
func (c *Conn) Failed(err error) { c.failed(err) }

// failed records a failed command; the first failure of an outage marks Redis down and logs it.
func (c *Conn) failed(err error) {
	if !c.live.Load() || !isConnError(err) {
		return
	}
	c.failures.Add(1)
	for {
		st := connState(c.state.Load())
		if st == stateDown {
			return
		}
		if !c.state.CompareAndSwap(int32(st), int32(stateDown)) {
			continue
		}
		if st == stateUp {
			c.downSince.Store(time.Now().UnixNano())
			c.outages.Add(1)
			c.log.Error().Err(err).Str("adapter", c.addr).
				Msg("redis unreachable: cluster calls fail with unavailable until it is back")
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
		return
	}
}

// pinger asks Redis the time: slowly while it is up (to notice an outage on an idle node),
// often while it is down (to notice its return), and runs the recovery checks.
func (c *Conn) pinger() {
	defer close(c.pinged)
	pctx := probeContext(c.ctx)
	var settleStart time.Time
	passes := 0
	for {
		wait := redisPingUp
		if connState(c.state.Load()) != stateUp {
			wait = redisPingDown
		}
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
		case <-t.C:
		}
		err := c.probe(pctx, redisIOTimeout)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.failed(err)
			passes = 0
			continue
		}
		switch connState(c.state.Load()) {
		case stateDown:
			if c.state.CompareAndSwap(int32(stateDown), int32(stateSettling)) {
				settleStart, passes = time.Now(), 0
			}
		case stateSettling:
			if c.settled(pctx) {
				passes++
			} else {
				passes = 0
			}
			if passes >= 2 || time.Since(settleStart) >= redisSettleMax {
				if c.state.CompareAndSwap(int32(stateSettling), int32(stateUp)) {
					since := time.Unix(0, c.downSince.Load())
					c.log.Info().Str("adapter", c.addr).Dur("outage", time.Since(since)).Msg("redis reachable again")
				}
			}
		}
	}
}

// settled runs every HoldRecovery check.
func (c *Conn) settled(ctx context.Context) bool {
	c.mu.Lock()
	checks := make([]func(context.Context) bool, 0, len(c.checks))
	for _, f := range c.checks {
		checks = append(checks, f)
	}
	c.mu.Unlock()
	for _, f := range checks {
		cctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
		ok := f(cctx)
		cancel()
		if !ok {
			return false
		}
	}
	return true
}

// probe asks every server (every master of a cluster) the time, giving each timeout to answer,
// and keeps the difference of its clock with ours for the fences.
func (c *Conn) probe(ctx context.Context, timeout time.Duration) error {
	return c.ForEachMaster(ctx, func(ctx context.Context, cl *redis.Client) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		t0 := time.Now()
		now, err := cl.Time(ctx).Result()
		if err != nil {
			return err
		}
		t1 := time.Now()
		// A slow answer says little about the clocks: keep the last good measure.
		if _, known := c.offsets.Load(cl.Options().Addr); !known || t1.Sub(t0) < 50*time.Millisecond {
			mid := t0.Add(t1.Sub(t0) / 2)
			c.offsets.Store(cl.Options().Addr, now.Sub(mid).Milliseconds())
		}
		return nil
	})
}

// ForEachMaster runs fn on the server, or on every master of a cluster (concurrently), and
// returns the first error.
func (c *Conn) ForEachMaster(ctx context.Context, fn func(ctx context.Context, cl *redis.Client) error) error {
	switch cl := c.cmd.(type) {
	case *redis.Client:
		return fn(ctx, cl)
	case *redis.ClusterClient:
		return cl.ForEachMaster(ctx, fn)
	}
	return fmt.Errorf("adapters: unexpected redis client %T", c.cmd)
}

// NumSub counts the subscribers of each channel (PUBSUB NUMSUB, or SHARDNUMSUB when sharded),
// summed over the masters of a cluster as Node's adapters count them.
func (c *Conn) NumSub(ctx context.Context, sharded bool, channels ...string) (map[string]int64, error) {
	out := make(map[string]int64, len(channels))
	if len(channels) == 0 {
		return out, nil
	}
	if connState(c.state.Load()) == stateDown && !isProbe(ctx) {
		return nil, ErrRedisDown
	}
	var mu sync.Mutex
	err := c.ForEachMaster(ctx, func(ctx context.Context, cl *redis.Client) error {
		var m map[string]int64
		var err error
		if sharded {
			m, err = cl.PubSubShardNumSub(ctx, channels...).Result()
		} else {
			m, err = cl.PubSubNumSub(ctx, channels...).Result()
		}
		if err != nil {
			return err
		}
		mu.Lock()
		for k, v := range m {
			out[k] += v
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FencedScript is a Lua script run by RunFenced: it does nothing if Redis reaches it after the
// caller's deadline. Its body sees KEYS and ARGV as the caller passed them, plus the deadline as
// one more, last, ARGV, which it ignores.
type FencedScript struct{ s *redis.Script }

// fencePrelude refuses a script that starts after its deadline (Unix ms, Redis's clock, the
// last argument).
const fencePrelude = `local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[#ARGV]) then
  return redis.error_reply('SWITCHBOARD_LATE ran after its deadline')
end
`

// NewFencedScript returns the fenced script of body.
func NewFencedScript(body string) *FencedScript {
	return &FencedScript{s: redis.NewScript(fencePrelude + body)}
}

var (
	publishScript  = NewFencedScript(`return redis.call('PUBLISH', ARGV[1], ARGV[2])`)
	spublishScript = NewFencedScript(`return redis.call('SPUBLISH', KEYS[1], ARGV[1])`)
)

// RunFenced runs s with keys and args, so that it takes effect only if Redis starts it within
// 250 ms: an error means it did not and will not take effect (but for a fault in the instant
// between Redis running it and answering, or this process stalling 650 ms while the answer
// waits). It waits up to 900 ms for the answer whatever ctx's deadline (an answer given up on
// could not be told from one that did nothing), and fails at once with ErrRedisDown unless
// Ready. In a cluster the script runs on the master of keys[0].
func (c *Conn) RunFenced(ctx context.Context, s *FencedScript, keys []string, args ...any) (any, error) {
	if !c.Ready() && !isProbe(ctx) {
		return nil, ErrRedisDown
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisReadTimeout)
	defer cancel()
	addr := c.addr
	if cl, ok := c.cmd.(*redis.ClusterClient); ok && len(keys) > 0 {
		if m, err := cl.MasterForKey(ctx, keys[0]); err == nil {
			addr = m.Options().Addr
		}
	}
	var offset int64
	if v, ok := c.offsets.Load(addr); ok {
		offset = v.(int64)
	}
	deadline := time.Now().Add(redisFenceWindow).UnixMilli() + offset
	res, err := s.s.Run(ctx, c.cmd, keys, append(args, deadline)...).Result()
	if err != nil && strings.Contains(err.Error(), "SWITCHBOARD_LATE") {
		err = errLate
		c.failed(err)
	}
	return res, err
}

// Publish PUBLISHes msg on channel through a fenced script, and returns how many subscribers got
// it (on that server). route is the key that picks the cluster master that runs it: use one per
// namespace so that the messages of a namespace keep their order through the cluster bus.
func (c *Conn) Publish(ctx context.Context, route, channel string, msg []byte) (int64, error) {
	res, err := c.RunFenced(ctx, publishScript, []string{route}, channel, msg)
	if err != nil {
		return 0, err
	}
	n, _ := res.(int64)
	return n, nil
}

// SPublish SPUBLISHes msg on the shard channel through a fenced script (on the channel's master).
func (c *Conn) SPublish(ctx context.Context, channel string, msg []byte) (int64, error) {
	res, err := c.RunFenced(ctx, spublishScript, []string{channel}, msg)
	if err != nil {
		return 0, err
	}
	n, _ := res.(int64)
	return n, nil
}

// Close stops the pinger and closes both clients. Backends close their subscriptions first.
func (c *Conn) Close() error {
	c.cancel()
	<-c.pinged
	return errors.Join(c.cmd.Close(), c.sub.Close())
}

// isConnError tells a lost connection (or a Redis too slow to answer) from an answer Redis gave
// (a reply error, no value) and from our own cancellation.
func isConnError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return false
	}
	if errors.Is(err, errLate) {
		return true
	}
	if errors.Is(err, ErrRedisDown) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		// A reply from the server, unless it is one of the "server is going away" kinds.
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err) ||
			strings.HasPrefix(err.Error(), "MASTERDOWN")
	}
	return true
}

// healthHook watches every command and dial of a client; on the command client it also fails
// commands fast while Redis is down.
type healthHook struct {
	c        *Conn
	failFast bool
}

func (h healthHook) down(ctx context.Context) bool {
	return h.failFast && connState(h.c.state.Load()) == stateDown && !isProbe(ctx)
}

func (h healthHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.c.failed(err)
		}
		return conn, err
	}
}

func (h healthHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.down(ctx) {
			cmd.SetErr(ErrRedisDown)
			return ErrRedisDown
		}
		err := next(ctx, cmd)
		h.c.failed(err)
		return err
	}
}

func (h healthHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.down(ctx) {
			for _, cmd := range cmds {
				cmd.SetErr(ErrRedisDown)
			}
			return ErrRedisDown
		}
		err := next(ctx, cmds)
		h.c.failed(err)
		return err
	}
}

// Status is the health of what a backend depends on, for /healthz and metrics.
type Status struct {
	// Redis is "up" or "down".
	Redis string `json:"redis"`
	// DownSince is when the current outage began; zero while Redis is up.
	DownSince time.Time `json:"downSince,omitzero"`
	// Outages counts the outages since the start.
	Outages uint64 `json:"outages"`
	// Failures counts the Redis commands and dials that failed.
	Failures uint64 `json:"failures"`
}
