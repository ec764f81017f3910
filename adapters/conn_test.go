package adapters

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/socketio"
)

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// redisPID is the process id of the redis-server at url, for SIGSTOP and SIGCONT.
func redisPID(t testing.TB, url string) int {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cl := redis.NewClient(o)
	defer cl.Close()
	info, err := cl.Info(t.Context(), "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no process_id in INFO server")
	return 0
}

// pausable is a private redis-server a test can stop (SIGSTOP), resume, kill and restart.
type pausable struct {
	*redistest.Server
	t      testing.TB
	pid    int
	paused bool
}

func startPausable(t testing.TB) *pausable {
	p := &pausable{Server: redistest.Start(t), t: t}
	p.pid = redisPID(t, p.URL())
	t.Cleanup(func() {
		if p.paused {
			_ = syscall.Kill(p.pid, syscall.SIGCONT)
		}
	})
	return p
}

func (p *pausable) pause() {
	p.t.Helper()
	if err := syscall.Kill(p.pid, syscall.SIGSTOP); err != nil {
		p.t.Fatal(err)
	}
	p.paused = true
}

func (p *pausable) resume() {
	p.t.Helper()
	if err := syscall.Kill(p.pid, syscall.SIGCONT); err != nil {
		p.t.Fatal(err)
	}
	p.paused = false
}

func (p *pausable) restart() {
	p.t.Helper()
	p.Restart()
	p.pid = redisPID(p.t, p.URL())
}

func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		cluster bool
		addrs   []string
		user    string
		pass    string
		tls     bool
		err     string
	}{
		{name: "standalone", url: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}},
		{name: "standalone with password", url: "redis://u:secret@h:7000/2", addrs: []string{"h:7000"}, user: "u", pass: "secret"},
		{name: "tls", url: "rediss://h:7000", addrs: []string{"h:7000"}, tls: true},
		{name: "cluster scheme", url: "redis+cluster://a:1,b:2,c:3", cluster: true, addrs: []string{"a:1", "b:2", "c:3"}},
		{name: "cluster scheme one seed", url: "redis+cluster://a:1", cluster: true, addrs: []string{"a:1"}},
		{name: "cluster tls with password", url: "rediss+cluster://u:p@a:1,b:2/?dial_timeout=1s", cluster: true, addrs: []string{"a:1", "b:2"}, user: "u", pass: "p", tls: true},
		{name: "comma list", url: "redis://a:1,b:2", cluster: true, addrs: []string{"a:1", "b:2"}},
		{name: "cluster default port", url: "redis+cluster://a,b:2", cluster: true, addrs: []string{"a:6379", "b:2"}},
		{name: "cluster db 0", url: "redis+cluster://a:1/0", cluster: true, addrs: []string{"a:1"}},
		{name: "cluster db 3", url: "redis+cluster://a:1/3", err: "only database 0"},
		{name: "empty address", url: "redis+cluster://a:1,,b:2", err: "empty address"},
		{name: "no scheme", url: "127.0.0.1:6379", err: "no scheme"},
		{name: "unknown scheme", url: "http://h:1", err: "unknown scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, o, err := parseRedisURL(tt.url)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.cluster != tt.cluster || strings.Join(a.list, ",") != strings.Join(tt.addrs, ",") {
				t.Fatalf("got cluster=%v %v, want %v %v", a.cluster, a.list, tt.cluster, tt.addrs)
			}
			var user, pass string
			var tls bool
			if tt.cluster {
				if strings.Join(a.clusterOpts.Addrs, ",") != strings.Join(tt.addrs, ",") {
					t.Fatalf("cluster options addrs %v", a.clusterOpts.Addrs)
				}
				user, pass, tls = a.clusterOpts.Username, a.clusterOpts.Password, a.clusterOpts.TLSConfig != nil
			} else {
				user, pass, tls = o.Username, o.Password, o.TLSConfig != nil
			}
			if user != tt.user || pass != tt.pass || tls != tt.tls {
				t.Fatalf("user %q pass %q tls %v", user, pass, tls)
			}
		})
	}
}

func TestDialRedisUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	start := time.Now()
	_, err := DialRedis(ConnConfig{URL: srv.URL(), Logger: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "redis at "+srv.Addr()+" is unreachable") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("DialRedis took %v", d)
	}
}

// While Redis is stopped or dead the connection says so within a second, fails commands at
// once, logs the outage once however many commands fail, and recovers by itself.
func TestConnOutageAndRecovery(t *testing.T) {
	for _, fault := range []string{"stopped", "killed"} {
		t.Run(fault, func(t *testing.T) {
			srv := startPausable(t)
			var logs syncBuffer
			c, err := DialRedis(ConnConfig{URL: srv.URL(), Logger: zerolog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			if st := c.Status(); st.Redis != "up" || st.Outages != 0 || !c.Ready() {
				t.Fatalf("status at start: %+v", st)
			}
			ctx := t.Context()

			faultAt := time.Now()
			if fault == "stopped" {
				srv.pause()
			} else {
				srv.Stop()
			}
			waitFor(t, "status down", func() bool { return c.Status().Redis == "down" })
			if d := time.Since(faultAt); d > time.Second {
				t.Fatalf("down noticed after %v, want <= 1s", d)
			}
			for range 50 {
				start := time.Now()
				err := c.Client().Publish(ctx, "x", "y").Err()
				_, ferr := c.Publish(ctx, "x", "x", []byte("y"))
				if !errors.Is(err, ErrRedisDown) || !errors.Is(ferr, ErrRedisDown) || time.Since(start) > 50*time.Millisecond {
					t.Fatalf("publish while down: %v, %v after %v", err, ferr, time.Since(start))
				}
			}
			if !errors.Is(Unavailable(ErrRedisDown), socketio.ErrUnavailable) || !errors.Is(Unavailable(ErrRedisDown), ErrRedisDown) {
				t.Fatalf("Unavailable does not wrap both")
			}
			if st := c.Status(); st.DownSince.IsZero() || st.Outages != 1 || st.Failures == 0 || c.Ready() {
				t.Fatalf("status while down: %+v", st)
			}

			if fault == "stopped" {
				srv.resume()
			} else {
				srv.restart()
			}
			waitFor(t, "ready", c.Ready)
			if st := c.Status(); st.Redis != "up" || st.Outages != 1 || !st.DownSince.IsZero() {
				t.Fatalf("status after recovery: %+v", st)
			}
			if _, err := c.Publish(ctx, "x", "x", []byte("y")); err != nil {
				t.Fatalf("publish after recovery: %v", err)
			}
			if n := logs.count("redis unreachable"); n != 1 {
				t.Fatalf("outage logged %d times, want once", n)
			}
			if n := logs.count("redis reachable again"); n != 1 {
				t.Fatalf("recovery logged %d times, want once", n)
			}
			if n := logs.count(`"component":"adapter"`); n != 2 {
				t.Fatalf("%d lines with component adapter, want 2", n)
			}
		})
	}
}

// A fenced publish sent to a stopped Redis fails, and is not delivered when Redis resumes.
func TestFencedPublishIsNotDeliveredLate(t *testing.T) {
	srv := startPausable(t)
	c := dialTest(t, srv.URL())
	ctx := t.Context()
	ps := c.Subscriber().Subscribe(ctx, "fence")
	t.Cleanup(func() { _ = ps.Close() })
	if _, err := ps.Receive(ctx); err != nil { // the subscribe confirmation
		t.Fatal(err)
	}
	if n, err := c.Publish(ctx, "fence", "fence", []byte("before")); err != nil || n != 1 {
		t.Fatalf("publish before: %d, %v", n, err)
	}
	if m, err := ps.ReceiveMessage(ctx); err != nil || m.Payload != "before" {
		t.Fatalf("got %v, %v", m, err)
	}

	srv.pause()
	start := time.Now()
	_, err := c.Publish(ctx, "fence", "fence", []byte("lost"))
	if err == nil || time.Since(start) > 1100*time.Millisecond {
		t.Fatalf("publish to a stopped redis: %v after %v", err, time.Since(start))
	}
	srv.resume()
	waitFor(t, "ready", c.Ready)
	if _, err := c.Publish(ctx, "fence", "fence", []byte("after")); err != nil {
		t.Fatal(err)
	}
	m, err := ps.ReceiveMessage(ctx)
	if err != nil || m.Payload != "after" {
		t.Fatalf("first message after the outage: %v, %v (want after)", m, err)
	}
}

// After an outage the connection stays not Ready until the recovery checks pass.
func TestHoldRecovery(t *testing.T) {
	srv := startPausable(t)
	c := dialTest(t, srv.URL())
	var calls atomic.Int32
	var pass atomic.Bool
	remove := c.HoldRecovery(func(ctx context.Context) bool {
		if !isProbe(ctx) {
			t.Errorf("check without the probe context")
		}
		calls.Add(1)
		return pass.Load()
	})
	defer remove()
	if calls.Load() != 0 {
		t.Fatalf("check ran while up")
	}
	srv.Stop()
	waitFor(t, "down", func() bool { return !c.Ready() })
	srv.restart()
	waitFor(t, "checks", func() bool { return calls.Load() >= 3 })
	if c.Ready() || c.Status().Redis != "down" {
		t.Fatalf("ready while a check fails")
	}
	if err := c.Client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("commands while settling: %v", err)
	}
	if _, err := c.Publish(t.Context(), "x", "x", []byte("y")); !errors.Is(err, ErrRedisDown) {
		t.Fatalf("fenced call while settling: %v", err)
	}
	pass.Store(true)
	waitFor(t, "ready", c.Ready)
}

func TestNumSub(t *testing.T) {
	srv := redistest.Start(t)
	c := dialTest(t, srv.URL())
	ctx := t.Context()
	for range 2 {
		ps := c.Subscriber().Subscribe(ctx, "a")
		t.Cleanup(func() { _ = ps.Close() })
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		sps := c.Subscriber().SSubscribe(ctx, "s")
		t.Cleanup(func() { _ = sps.Close() })
		if _, err := sps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.NumSub(ctx, false, "a", "b")
	if err != nil || n["a"] != 2 || n["b"] != 0 {
		t.Fatalf("NumSub = %v, %v", n, err)
	}
	n, err = c.NumSub(ctx, true, "s")
	if err != nil || n["s"] != 2 {
		t.Fatalf("NumSub sharded = %v, %v", n, err)
	}
	if r, err := c.SPublish(ctx, "s", []byte("x")); err != nil || r != 2 {
		t.Fatalf("SPublish = %d, %v", r, err)
	}
}
