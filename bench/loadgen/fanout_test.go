package loadgen

import (
	"slices"
	"testing"
	"time"
)

func TestSpread(t *testing.T) {
	tests := []struct {
		name     string
		n, nodes int
		want     [][]int
	}{
		{"even split", 4, 2, [][]int{{0, 2}, {1, 3}}},
		{"odd count puts the extra on the first node", 5, 2, [][]int{{0, 2, 4}, {1, 3}}},
		{"fewer members than nodes", 1, 2, [][]int{{0}, nil}},
		{"one node", 3, 1, [][]int{{0, 1, 2}}},
		{"three nodes", 7, 3, [][]int{{0, 3, 6}, {1, 4}, {2, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spread(tt.n, tt.nodes)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("spread(%d, %d) = %v, want %v", tt.n, tt.nodes, got, tt.want)
			}
		})
	}
	// 1,000 members on two nodes: 500 each, every index once.
	halves := spread(1000, 2)
	all := slices.Sorted(slices.Values(slices.Concat(halves...)))
	if len(halves[0]) != 500 || len(halves[1]) != 500 || len(all) != 1000 || all[0] != 0 || all[999] != 999 || len(slices.Compact(all)) != 1000 {
		t.Fatalf("spread(1000, 2) does not split into two halves of distinct members")
	}
}

// TestDeliveriesHandler: a member's handler counts every frame, consumes every event, and counts
// a delivery (with its arrival time) only where the event was one of the run's messages.
func TestDeliveriesHandler(t *testing.T) {
	base := time.Unix(1000, 0)
	tests := []struct {
		name                 string
		frame                Frame
		consumed, stamped    bool
		delivered, lastAtSec int64
	}{
		{"stamped event", Frame{SIO: sioEvent, Data: []byte(`["tick","bseq:1:2"]`)}, true, true, 1, 3},
		{"presence event", Frame{SIO: sioEvent, Data: []byte(`["chat:user-joined",{}]`)}, true, false, 0, 0},
		{"ack", Frame{SIO: sioAck, Data: []byte(`[{"data":{}}]`)}, false, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &deliveries{base: base}
			var got []byte
			var gotAt time.Duration
			h := d.handler(func(data []byte, now time.Duration) bool {
				got, gotAt = data, now
				return tt.stamped
			})
			if consumed := h(tt.frame, base.Add(3*time.Second)); consumed != tt.consumed {
				t.Fatalf("consumed %v, want %v", consumed, tt.consumed)
			}
			if sawEvent := got != nil; sawEvent != (tt.frame.SIO == sioEvent) || (sawEvent && gotAt != 3*time.Second) {
				t.Fatalf("stamped got %q at %v", got, gotAt)
			}
			if d.frames.Load() != 1 || d.delivered.Load() != tt.delivered || time.Duration(d.lastAt.Load()) != time.Duration(tt.lastAtSec)*time.Second {
				t.Fatalf("frames %d, delivered %d, lastAt %v; want 1, %d, %ds", d.frames.Load(), d.delivered.Load(), time.Duration(d.lastAt.Load()), tt.delivered, tt.lastAtSec)
			}
		})
	}
}
