package loadgen

import (
	"slices"
	"time"
)

// Latency summarises a set of latency samples.
type Latency struct {
	N   int
	P50 time.Duration
	P99 time.Duration
	Max time.Duration
}

// Percentile returns the nearest-rank percentile p (0 < p ≤ 100) of sorted samples, 0 when empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.999999999) // ceil
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize sorts samples in place and returns their p50, p99 and max.
func Summarize(samples []time.Duration) Latency {
	slices.Sort(samples)
	l := Latency{N: len(samples), P50: Percentile(samples, 50), P99: Percentile(samples, 99)}
	if len(samples) > 0 {
		l.Max = samples[len(samples)-1]
	}
	return l
}

// SeqTracker follows one receiver's sequence numbers from one publisher (0, 1, 2, …) to count
// what was lost, reordered or duplicated. It is used by one goroutine.
type SeqTracker struct {
	seen       []bool
	next       int // one past the highest sequence number seen
	Received   int // every message, duplicates included
	OutOfOrder int // messages that arrived after a higher sequence number
	Duplicates int
}

// Observe records the arrival of seq.
func (t *SeqTracker) Observe(seq int) {
	if seq < 0 {
		return
	}
	t.Received++
	if seq >= len(t.seen) {
		n := max(seq+1, 2*len(t.seen))
		t.seen = slices.Grow(t.seen, n-len(t.seen))[:n]
	}
	if t.seen[seq] {
		t.Duplicates++
		return
	}
	t.seen[seq] = true
	if seq < t.next-1 {
		t.OutOfOrder++
	}
	t.next = max(t.next, seq+1)
}

// Distinct is the number of different sequence numbers seen.
func (t *SeqTracker) Distinct() int { return t.Received - t.Duplicates }

// Lost is how many of the published sequence numbers 0..published-1 never arrived.
func (t *SeqTracker) Lost(published int) int {
	got := 0
	for i := 0; i < published && i < len(t.seen); i++ {
		if t.seen[i] {
			got++
		}
	}
	return published - got
}

// LostOf is how many of seqs never arrived, for publishers whose sequence numbers have gaps (the
// numbers of failed calls, which nobody should receive, are left out of seqs).
func (t *SeqTracker) LostOf(seqs []int) int {
	lost := 0
	for _, s := range seqs {
		if s >= 0 && (s >= len(t.seen) || !t.seen[s]) {
			lost++
		}
	}
	return lost
}
