package namespaces

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
)

// sharedRedis is a client of a private redis-server; each test uses its own key prefix.
func sharedRedis(t *testing.T) *redis.Client {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func TestRedisHistoryAppendAndBefore(t *testing.T) {
	rdb := sharedRedis(t)
	h := NewRedisHistory(rdb, "test-"+rand.Text(), 3)
	ctx := t.Context()
	for i := 1; i <= 5; i++ {
		var delivered Message
		got, err := h.Append(ctx, Message{Room: "r", Text: fmt.Sprint("m", i), TS: int64(i)},
			func(m Message) error { delivered = m; return nil })
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if got.ID != strconv.Itoa(i) || delivered != got {
			t.Fatalf("Append %d: got %+v delivered %+v", i, got, delivered)
		}
	}
	if _, err := h.Append(ctx, Message{Room: "other"}, func(Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ids := func(ms []Message) string {
		s := ""
		for _, m := range ms {
			s += m.ID + ","
		}
		return s
	}
	cases := []struct {
		name, before string
		limit        int
		want         string
	}{
		{"newest", "", 50, "3,4,5,"},
		{"limit keeps the newest", "", 2, "4,5,"},
		{"before", "5", 50, "3,4,"},
		{"before the oldest kept", "3", 50, ""},
		{"before an unknown newer id", "99", 1, "5,"},
		{"not an id", "x", 50, ""},
		{"zero limit", "", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.Before(ctx, "r", tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != tc.want {
				t.Fatalf("Before(%q, %d) = %s, want %s", tc.before, tc.limit, ids(got), tc.want)
			}
		})
	}
	got, _ := h.Before(ctx, "other", "", 10)
	if ids(got) != "1," {
		t.Fatalf("rooms are independent: got %s", ids(got))
	}
}

// Two nodes (two clients, two histories) append to one room at once: ids are unique and every
// deliver, whichever node calls it, happens in id order and never overlaps another.
func TestRedisHistoryClusterOrder(t *testing.T) {
	rdb := sharedRedis(t)
	other := redis.NewClient(rdb.Options())
	t.Cleanup(func() { _ = other.Close() })
	prefix := "test-" + rand.Text()
	nodes := []*RedisHistory{NewRedisHistory(rdb, prefix, 100), NewRedisHistory(other, prefix, 100)}

	var mu sync.Mutex
	var order []int
	busy := false
	deliver := func(m Message) error {
		mu.Lock()
		if busy {
			t.Error("deliver calls overlap")
		}
		busy = true
		id, _ := strconv.Atoi(m.ID)
		order = append(order, id)
		mu.Unlock()
		mu.Lock()
		busy = false
		mu.Unlock()
		return nil
	}
	const perSender = 25
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Go(func() {
			h := nodes[s%2]
			for range perSender {
				if _, err := h.Append(context.Background(), Message{Room: "busy"}, deliver); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(order) != 4*perSender {
		t.Fatalf("delivered %d, want %d", len(order), 4*perSender)
	}
	for i, id := range order {
		if id != i+1 {
			t.Fatalf("delivery %d had id %d: order %v", i, id, order)
		}
	}
	msgs, err := nodes[1].Before(t.Context(), "busy", "", 100)
	if err != nil || len(msgs) != 100 || msgs[0].ID != "1" || msgs[99].ID != "100" {
		t.Fatalf("history after the race: %d messages, err %v", len(msgs), err)
	}
}

func TestRedisHistoryKeepsNone(t *testing.T) {
	rdb := sharedRedis(t)
	h := NewRedisHistory(rdb, "test-"+rand.Text(), 0)
	m, err := h.Append(t.Context(), Message{Room: "r"}, func(Message) error { return nil })
	if err != nil || m.ID != "1" {
		t.Fatalf("Append: %+v %v", m, err)
	}
	if got, err := h.Before(t.Context(), "r", "", 10); err != nil || len(got) != 0 {
		t.Fatalf("Before: %v %v", got, err)
	}
}
