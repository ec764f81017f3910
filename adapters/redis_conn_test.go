package adapters

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/internal/redistest"
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

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func TestNewFailsWhenRedisIsUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	for _, name := range []string{"redis", "redis-streams"} {
		_, err := New(Config{Name: name, RedisURL: srv.URL(), Logger: zerolog.Nop()})
		if err == nil || !strings.Contains(err.Error(), "redis at "+srv.Addr()+" is unreachable") {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
}

// While Redis is away the backend says so, fails commands at once, logs the outage once however
// many commands fail, and recovers by itself when Redis is back.
func TestRedisOutageAndRecovery(t *testing.T) {
	for _, name := range []string{"redis", "redis-streams"} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t)
			var logs syncBuffer
			b, err := New(Config{Name: name, RedisURL: srv.URL(), Logger: zerolog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			rep := b.(Reporter)
			var c *redisConn
			switch v := b.(type) {
			case *Redis:
				c = v.redisConn
			case *RedisStreams:
				c = v.redisConn
			}
			if st := rep.Status(); st.Redis != "up" || st.Outages != 0 {
				t.Fatalf("status at start: %+v", st)
			}

			srv.Stop()
			waitUntil(t, "status down", func() bool { return rep.Status().Redis == "down" })
			for range 50 {
				start := time.Now()
				err := c.cmd.Publish(t.Context(), "x", "y").Err()
				if !errors.Is(err, ErrRedisDown) || time.Since(start) > 100*time.Millisecond {
					t.Fatalf("publish while down: %v after %v", err, time.Since(start))
				}
			}
			if st := rep.Status(); st.DownSince.IsZero() || st.Outages != 1 || st.Failures == 0 {
				t.Fatalf("status while down: %+v", st)
			}

			srv.Restart()
			waitUntil(t, "status up", func() bool { return rep.Status().Redis == "up" })
			if err := c.cmd.Publish(t.Context(), "x", "y").Err(); err != nil {
				t.Fatalf("publish after recovery: %v", err)
			}
			if n := logs.count("redis unreachable"); n != 1 {
				t.Fatalf("outage logged %d times, want once", n)
			}
			if n := logs.count("redis reachable again"); n != 1 {
				t.Fatalf("recovery logged %d times, want once", n)
			}
		})
	}
}
