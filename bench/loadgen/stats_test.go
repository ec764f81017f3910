package loadgen

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of even count is the lower middle (nearest rank)", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 is the max", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the min", hundred, 0.001, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.samples, tt.p); got != tt.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarizeSorts(t *testing.T) {
	l := Summarize([]time.Duration{5, 1, 4, 2, 3})
	if l.N != 5 || l.P50 != 3 || l.P99 != 5 || l.Max != 5 {
		t.Fatalf("Summarize = %+v", l)
	}
	if z := Summarize(nil); z != (Latency{}) {
		t.Fatalf("Summarize(nil) = %+v", z)
	}
}

func TestSeqTrackerLongRuns(t *testing.T) {
	for _, n := range []int{1, 2, 3, 31, 32, 33, 60, 100, 1000, 4097} {
		var in, rev SeqTracker
		for i := range n {
			in.Observe(i)
			rev.Observe(n - 1 - i)
		}
		if in.Lost(n) != 0 || in.OutOfOrder != 0 || in.Distinct() != n {
			t.Errorf("%d in order: lost %d, out of order %d, distinct %d", n, in.Lost(n), in.OutOfOrder, in.Distinct())
		}
		if rev.Lost(n) != 0 || rev.OutOfOrder != n-1 || rev.Distinct() != n {
			t.Errorf("%d reversed: lost %d, out of order %d, distinct %d", n, rev.Lost(n), rev.OutOfOrder, rev.Distinct())
		}
	}
}

func TestSeqTracker(t *testing.T) {
	tests := []struct {
		name                  string
		arrivals              []int
		published             int
		lost, ooo, dups, dist int
	}{
		{name: "in order, complete", arrivals: []int{0, 1, 2, 3}, published: 4},
		{name: "a gap is lost", arrivals: []int{0, 1, 3}, published: 4, lost: 1, dist: 3},
		{name: "the tail is lost", arrivals: []int{0, 1}, published: 4, lost: 2, dist: 2},
		{name: "nothing arrived", published: 3, lost: 3},
		{name: "late arrival is out of order, not lost", arrivals: []int{0, 2, 1, 3}, published: 4, ooo: 1},
		{name: "several behind the max", arrivals: []int{3, 0, 1, 2}, published: 4, ooo: 3},
		{name: "duplicates are counted once", arrivals: []int{0, 1, 1, 2, 0}, published: 3, dups: 2, dist: 3},
		{name: "sequence numbers beyond published are not losses", arrivals: []int{0, 1, 2, 9}, published: 3, dist: 4},
		{name: "negative sequence numbers are ignored", arrivals: []int{-1, 0}, published: 1, dist: 1},
		{name: "large jump grows the table", arrivals: []int{1000, 0}, published: 1001, lost: 999, ooo: 1, dist: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr SeqTracker
			for _, s := range tt.arrivals {
				tr.Observe(s)
			}
			wantDist := tt.dist
			if wantDist == 0 && tt.lost == 0 && tt.dups == 0 {
				wantDist = len(tt.arrivals)
			}
			if got := tr.Lost(tt.published); got != tt.lost {
				t.Errorf("Lost = %d, want %d", got, tt.lost)
			}
			if tr.OutOfOrder != tt.ooo {
				t.Errorf("OutOfOrder = %d, want %d", tr.OutOfOrder, tt.ooo)
			}
			if tr.Duplicates != tt.dups {
				t.Errorf("Duplicates = %d, want %d", tr.Duplicates, tt.dups)
			}
			if got := tr.Distinct(); got != wantDist {
				t.Errorf("Distinct = %d, want %d", got, wantDist)
			}
		})
	}
}

func TestSeqTrackerLostOf(t *testing.T) {
	tests := []struct {
		name     string
		arrivals []int
		seqs     []int
		lost     int
	}{
		{name: "everything arrived", arrivals: []int{2, 0, 1}, seqs: []int{0, 1, 2}},
		{name: "gaps that were never sent are not lost", arrivals: []int{0, 3}, seqs: []int{0, 3}},
		{name: "a missing one in the middle", arrivals: []int{0, 2}, seqs: []int{0, 1, 2}, lost: 1},
		{name: "beyond the highest arrival", arrivals: []int{0}, seqs: []int{0, 5, 6}, lost: 2},
		{name: "nothing arrived", seqs: []int{0, 1}, lost: 2},
		{name: "duplicates count once", arrivals: []int{1, 1, 1}, seqs: []int{1}},
		{name: "negative numbers are ignored", arrivals: []int{0}, seqs: []int{-1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr SeqTracker
			for _, s := range tt.arrivals {
				tr.Observe(s)
			}
			if got := tr.LostOf(tt.seqs); got != tt.lost {
				t.Fatalf("LostOf(%v) after %v = %d, want %d", tt.seqs, tt.arrivals, got, tt.lost)
			}
		})
	}
}
