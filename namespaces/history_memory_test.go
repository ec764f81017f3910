package namespaces

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func appendN(t *testing.T, h *MemoryHistory, room string, n int) []Message {
	t.Helper()
	out := make([]Message, n)
	for i := range n {
		m, err := h.Append(t.Context(), Message{Room: room, Text: fmt.Sprint(i + 1), TS: int64(i)}, func(Message) error { return nil })
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		out[i] = m
	}
	return out
}

func ids(msgs []Message) string {
	s := ""
	for i, m := range msgs {
		if i > 0 {
			s += ","
		}
		s += m.ID
	}
	return s
}

func TestMemoryHistoryIDsAndBounds(t *testing.T) {
	h := NewMemoryHistory(5, 10)
	msgs := appendN(t, h, "r", 8)
	if got := ids(msgs); got != "1,2,3,4,5,6,7,8" {
		t.Fatalf("ids = %s, want 1..8", got)
	}
	tests := []struct {
		name   string
		room   string
		before string
		limit  int
		want   string
	}{
		{"newest, kept bound", "r", "", 50, "4,5,6,7,8"},
		{"newest, limited", "r", "", 2, "7,8"},
		{"before the newest", "r", "8", 50, "4,5,6,7"},
		{"before, limited", "r", "7", 2, "5,6"},
		{"before an id above the newest", "r", "100", 3, "6,7,8"},
		{"before the oldest kept", "r", "4", 50, ""},
		{"before a dropped id", "r", "2", 50, ""},
		{"before 0", "r", "0", 50, ""},
		{"unknown room", "nope", "", 50, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Before(t.Context(), tt.room, tt.before, tt.limit)
			if err != nil {
				t.Fatalf("Before: %v", err)
			}
			if got == nil {
				t.Fatalf("Before returned nil, want an empty list")
			}
			if ids(got) != tt.want {
				t.Fatalf("Before(%q, %d) = [%s], want [%s]", tt.before, tt.limit, ids(got), tt.want)
			}
		})
	}
	if _, err := h.Before(t.Context(), "r", "x1", 5); !errors.As(err, new(*Error)) {
		t.Fatalf("Before with a non-numeric id = %v, want a client error", err)
	}
}

func TestMemoryHistoryKeepsNone(t *testing.T) {
	h := NewMemoryHistory(0, 10)
	delivered := 0
	for i := range 3 {
		m, err := h.Append(t.Context(), Message{Room: "r"}, func(Message) error { delivered++; return nil })
		if err != nil || m.ID != strconv.Itoa(i+1) {
			t.Fatalf("Append = %+v, %v; want id %d", m, err, i+1)
		}
	}
	got, _ := h.Before(t.Context(), "r", "", 50)
	if len(got) != 0 || delivered != 3 {
		t.Fatalf("kept %d messages and delivered %d, want none kept and 3 delivered", len(got), delivered)
	}
}

func TestMemoryHistoryTimestampsNeverGoBack(t *testing.T) {
	h := NewMemoryHistory(5, 10)
	a, _ := h.Append(t.Context(), Message{Room: "r", TS: 100}, func(Message) error { return nil })
	b, _ := h.Append(t.Context(), Message{Room: "r", TS: 90}, func(Message) error { return nil })
	if a.TS != 100 || b.TS != 100 {
		t.Fatalf("ts = %d, %d; want 100, 100", a.TS, b.TS)
	}
}

func TestMemoryHistoryEvictsLeastRecentlyUsedRoom(t *testing.T) {
	h := NewMemoryHistory(10, 2)
	appendN(t, h, "a", 3)
	appendN(t, h, "b", 1)
	if _, err := h.Before(t.Context(), "a", "", 10); err != nil { // a is now the most recently used
		t.Fatal(err)
	}
	appendN(t, h, "c", 1) // evicts b
	if h.Len() != 2 {
		t.Fatalf("rooms = %d, want 2", h.Len())
	}
	if got, _ := h.Before(t.Context(), "b", "", 10); len(got) != 0 {
		t.Fatalf("b still holds %d messages after eviction", len(got))
	}
	if got, _ := h.Before(t.Context(), "a", "", 10); ids(got) != "1,2,3" {
		t.Fatalf("a = [%s], want it kept", ids(got))
	}
	// A room created after an eviction starts above the highest id of any evicted room (b's 1).
	if got, _ := h.Before(t.Context(), "c", "", 10); ids(got) != "2" {
		t.Fatalf("c = [%s], want [2]", ids(got))
	}
	// b comes back (evicting a, which reached 3): its ids never repeat the ones it handed out.
	if m := appendN(t, h, "b", 1)[0]; m.ID != "4" {
		t.Fatalf("b's next id = %s, want 4", m.ID)
	}
}

func TestMemoryHistoryCancelledContext(t *testing.T) {
	h := NewMemoryHistory(5, 10)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Append(ctx, Message{Room: "r"}, func(Message) error { t.Error("delivered"); return nil }); err == nil {
		t.Fatal("Append with a cancelled context succeeded")
	}
}

// TestMemoryHistoryConcurrentAppends has many senders in a few rooms: each room's deliveries
// come in id order, never overlap, and its ids are 1..n without gaps.
func TestMemoryHistoryConcurrentAppends(t *testing.T) {
	const rooms, senders, each = 3, 8, 50
	h := NewMemoryHistory(1000, 10)
	type roomState struct {
		busy      atomic.Int32
		delivered []string
	}
	state := make([]*roomState, rooms)
	for i := range state {
		state[i] = &roomState{}
	}
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				r := (s + i) % rooms
				st := state[r]
				_, err := h.Append(t.Context(), Message{Room: fmt.Sprint("room", r)}, func(m Message) error {
					if st.busy.Add(1) != 1 {
						t.Errorf("room %d: overlapping deliveries", r)
					}
					st.delivered = append(st.delivered, m.ID)
					st.busy.Add(-1)
					return nil
				})
				if err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for r, st := range state {
		for i, id := range st.delivered {
			if id != strconv.Itoa(i+1) {
				t.Fatalf("room %d: delivery %d has id %s, want %d", r, i, id, i+1)
			}
		}
		total += len(st.delivered)
	}
	if total != senders*each {
		t.Fatalf("delivered %d, want %d", total, senders*each)
	}
}

func TestNewMemoryHistoryPanicsOnBadBounds(t *testing.T) {
	for _, tt := range []struct{ perRoom, maxRooms int }{{-1, 10}, {10, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewMemoryHistory(%d, %d) did not panic", tt.perRoom, tt.maxRooms)
				}
			}()
			NewMemoryHistory(tt.perRoom, tt.maxRooms)
		}()
	}
}
