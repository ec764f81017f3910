package namespaces

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/socketio"
)

// outageClient is a client of srv with short timeouts, as the adapters' connection has (a
// command gets 900 ms there).
func outageClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// TestRedisHistoryOutage (issue 22 item 3): while Redis is away the history's failures are the
// cluster's unavailability (a chat:send is acked "unavailable", not "internal") but for a store
// failing once the message was delivered (it was done, and a sender told otherwise would send it
// again: both nodes' clients got chat messages acked unavailable), and once Redis
// is back both nodes append at once: a lock request that reached a stopped Redis and ran when it
// resumed used to take the room's lock for its 5 s TTL.
func TestRedisHistoryOutage(t *testing.T) {
	nothing := func(Message) error { return nil }
	for _, fault := range []struct {
		name       string
		start, end func(*redistest.Server)
	}{
		{"SIGSTOP", (*redistest.Server).Pause, (*redistest.Server).Resume},
		{"kill", (*redistest.Server).Stop, (*redistest.Server).Restart},
	} {
		t.Run(fault.name, func(t *testing.T) {
			srv := redistest.Start(t)
			prefix := "test-" + rand.Text()
			a := NewRedisHistory(outageClient(t, srv), prefix, 10)
			b := NewRedisHistory(outageClient(t, srv), prefix, 10)
			for _, h := range []*RedisHistory{a, b} {
				if _, err := h.Append(t.Context(), Message{Room: "r", Text: "before"}, nothing); err != nil {
					t.Fatalf("Append before the outage: %v", err)
				}
			}

			// Redis goes in the instant between the delivery and the store: the send is done.
			m, err := a.Append(t.Context(), Message{Room: "r", Text: "delivered"}, func(Message) error { fault.start(srv); return nil })
			if err != nil || m.ID == "" {
				t.Errorf("Append whose store failed after its delivery: %+v %v, want it done", m, err)
			}
			if _, err := a.Append(t.Context(), Message{Room: "r", Text: "during"}, nothing); !errors.Is(err, socketio.ErrUnavailable) {
				t.Errorf("Append during the outage: %v, want socketio.ErrUnavailable", err)
			}
			if _, err := a.Before(t.Context(), "r", "", 10); !errors.Is(err, socketio.ErrUnavailable) {
				t.Errorf("Before during the outage: %v, want socketio.ErrUnavailable", err)
			}
			fault.end(srv)

			for name, h := range map[string]*RedisHistory{"the other node": b, "the same node": a} {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				start := time.Now()
				var err error
				for { // the first commands after a restart may find the pool's dead connections
					if _, err = h.Append(ctx, Message{Room: "r", Text: "after"}, nothing); err == nil || ctx.Err() != nil {
						break
					}
				}
				cancel()
				if took := time.Since(start); err != nil || took > time.Second {
					t.Errorf("%s's Append after the outage: %v after %v; want it done within 1 s", name, err, took)
				}
			}
		})
	}
}
