package loadgen

import (
	"slices"
	"testing"
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
