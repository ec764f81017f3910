package adapters

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	sioredis "github.com/zishang520/socket.io/adapters/redis/v3"
)

// Timings of the Redis connection. Short timeouts keep a broadcast from hanging on a dead Redis:
// the library publishes to Redis before it delivers to this node's own sockets.
const (
	redisStartTimeout  = 3 * time.Second
	redisDialTimeout   = 2 * time.Second
	redisIOTimeout     = 3 * time.Second
	redisProbeTimeout  = time.Second
	redisProbeUp       = 2 * time.Second        // how often a healthy connection is checked
	redisProbeDown     = 500 * time.Millisecond // how often a lost one is retried
	redisRedialBackoff = 500 * time.Millisecond // pause before each dial while Redis is down
)

// ErrRedisDown is returned at once, without touching the network, by commands issued while
// Redis is known to be unreachable; the connection recovers by itself when Redis is back.
var ErrRedisDown = errors.New("adapters: redis is unreachable")

// redisConn is the connection a Redis backend holds: a client for commands and one for
// subscriptions and blocking reads (so those never starve the commands), and the health of
// Redis as this node sees it. While Redis is down, commands fail fast, subscriptions redial
// at a slow pace, a prober pings until Redis answers, and the outage is logged once.
type redisConn struct {
	log    zerolog.Logger
	addr   string // host:port only: the URL may hold a password
	prefix string
	cmd    *redis.Client
	sub    *redis.Client
	lib    *sioredis.RedisClient

	ctx    context.Context
	cancel context.CancelFunc
	probed chan struct{} // closed when the prober returned

	live      atomic.Bool // set once the start-up ping answered; failures before are the caller's
	down      atomic.Bool
	downSince atomic.Int64 // Unix nanoseconds
	outages   atomic.Uint64
	failures  atomic.Uint64
	kick      chan struct{}
}

// quietRedis routes go-redis's own log, which prints every failed dial, to debug level once
// per process (it is a package-level setting of go-redis): our outage log says it once.
var quietRedis sync.Once

type debugLogger struct{ log zerolog.Logger }

func (d debugLogger) Printf(_ context.Context, format string, v ...any) {
	d.log.Debug().Msgf(format, v...)
}

// probeKey marks the prober's own commands, which pass while Redis is known to be down.
type probeKey struct{}

// dialRedis connects to the Redis at rawURL and fails with a clear error when it does not
// answer within a few seconds.
func dialRedis(cfg Config) (*redisConn, error) {
	quietRedis.Do(func() {
		redis.SetLogger(debugLogger{cfg.Logger.With().Str("component", "go-redis").Logger()})
	})
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("adapters: parse redis url: %w", err)
	}
	opts.DialTimeout = redisDialTimeout
	opts.ReadTimeout = redisIOTimeout
	opts.WriteTimeout = redisIOTimeout
	opts.PoolTimeout = redisIOTimeout
	opts.MaxRetries = 1
	opts.DialerRetries = 1

	ctx, cancel := context.WithCancel(context.Background())
	c := &redisConn{
		log:    cfg.Logger,
		addr:   opts.Addr,
		prefix: prefixOf(cfg),
		ctx:    ctx,
		cancel: cancel,
		probed: make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
	c.cmd = redis.NewClient(opts)
	c.cmd.AddHook(healthHook{c: c, failFast: true})
	subOpts := *opts
	c.sub = redis.NewClient(&subOpts)
	c.sub.AddHook(healthHook{c: c})

	pingCtx, pingCancel := context.WithTimeout(context.WithValue(ctx, probeKey{}, true), redisStartTimeout)
	defer pingCancel()
	if err := c.cmd.Ping(pingCtx).Err(); err != nil {
		cancel()
		_ = c.cmd.Close()
		_ = c.sub.Close()
		return nil, fmt.Errorf("adapters: redis at %s is unreachable: %w", c.addr, err)
	}

	c.live.Store(true)
	c.lib = sioredis.NewRedisClientWithSub(ctx, c.cmd, c.sub)
	// The library reports subscription and publish failures as "error" events.
	_ = c.lib.On("error", func(args ...any) {
		if len(args) > 0 {
			if err, ok := args[0].(error); ok {
				c.failed(err)
			}
		}
	})
	go c.probe()
	return c, nil
}

// History returns the chat history shared by every node on this Redis, keeping perRoom
// messages per room.
func (c *redisConn) History(perRoom int) *RedisHistory {
	return NewRedisHistory(c.cmd, c.prefix+":chat", perRoom)
}

// failed records a failed command; the first failure of an outage marks Redis down and logs it.
func (c *redisConn) failed(err error) {
	if !c.live.Load() || !isConnError(err) {
		return
	}
	c.failures.Add(1)
	if c.down.CompareAndSwap(false, true) {
		c.downSince.Store(time.Now().UnixNano())
		c.outages.Add(1)
		c.log.Error().Err(err).Str("redis", c.addr).
			Msg("redis unreachable: serving this node's clients only until it is back")
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// recovered marks Redis up again after a successful probe.
func (c *redisConn) recovered() {
	if c.down.CompareAndSwap(true, false) {
		since := time.Unix(0, c.downSince.Load())
		c.log.Info().Str("redis", c.addr).Dur("outage", time.Since(since)).Msg("redis reachable again")
	}
}

// probe pings Redis: slowly while it is up (to notice an outage on an idle node), often while
// it is down (to notice its return).
func (c *redisConn) probe() {
	defer close(c.probed)
	pctx := context.WithValue(c.ctx, probeKey{}, true)
	for {
		wait := redisProbeUp
		if c.down.Load() {
			wait = redisProbeDown
		}
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
			continue
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(pctx, redisProbeTimeout)
		err := c.cmd.Ping(ctx).Err()
		cancel()
		if err == nil {
			c.recovered()
		} else if c.ctx.Err() == nil {
			c.failed(err)
		}
	}
}

// Status implements Reporter for the backends built on the connection.
func (c *redisConn) Status() Status {
	st := Status{Redis: "up", Outages: c.outages.Load(), Failures: c.failures.Load()}
	if c.down.Load() {
		st.Redis = "down"
		st.DownSince = time.Unix(0, c.downSince.Load())
	}
	return st
}

// Close implements Backend: it stops the prober and closes both clients. The server calls it
// after the library closed each namespace's adapter.
func (c *redisConn) Close() error {
	c.cancel()
	<-c.probed
	return errors.Join(c.cmd.Close(), c.sub.Close())
}

// isConnError tells a lost connection from an answer Redis gave (a reply error, no value) and
// from our own cancellation.
func isConnError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) || errors.Is(err, context.Canceled) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, ErrRedisDown) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		// A reply from the server, unless it is one of the "server is going away" kinds.
		return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsClusterDownError(err)
	}
	return true
}

// healthHook watches every command and dial of a client. On the command client it also fails
// commands fast while Redis is down; on both it spaces out dials, so that the library's
// subscription loops, which retry at once, do not spin while Redis is away.
type healthHook struct {
	c        *redisConn
	failFast bool
}

func (h healthHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h.c.down.Load() && ctx.Value(probeKey{}) == nil {
			t := time.NewTimer(redisRedialBackoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.c.failed(err)
		}
		return conn, err
	}
}

func (h healthHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.failFast && h.c.down.Load() && ctx.Value(probeKey{}) == nil {
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
		if h.failFast && h.c.down.Load() && ctx.Value(probeKey{}) == nil {
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

// prefixOf is the configured prefix or Node's default.
func prefixOf(cfg Config) string {
	if cfg.Prefix == "" {
		return "socket.io"
	}
	return cfg.Prefix
}
