package e2e

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// floodEvent reads the sequence number and the recovery offset of a "flood" event without
// decoding its 100 KB: the number is the first argument and the offset the last.
var floodSeq = regexp.MustCompile(`^\["flood",(\d+),`)

func floodEvent(p packet) (seq int, offset string, ok bool) {
	head := p.Data
	if len(head) > 64 {
		head = head[:64]
	}
	m := floodSeq.FindSubmatch(head)
	if m == nil {
		return 0, "", false
	}
	seq, _ = strconv.Atoi(string(m[1]))
	s := string(p.Data)
	i := strings.LastIndex(s, `,"`)
	if i < 0 || !strings.HasSuffix(s, `"]`) {
		return 0, "", false
	}
	return seq, s[i+2 : len(s)-2], true
}

// floodClient is a "/" socket in room flood that records the sequence numbers it got, and the
// recovery offset of the last one.
type floodClient struct {
	c        *sioClient
	sid, pid string

	mu     sync.Mutex
	seqs   []int
	offset string
}

func (f *floodClient) onEvent(p packet) {
	if seq, offset, ok := floodEvent(p); ok {
		f.mu.Lock()
		f.seqs = append(f.seqs, seq)
		f.offset = offset
		f.mu.Unlock()
	}
}

func (f *floodClient) last() (int, string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seqs) == 0 {
		return -1, "", 0
	}
	return f.seqs[len(f.seqs)-1], f.offset, len(f.seqs)
}

// joinFlood connects a socket to "/" (with a session to recover when pid is set) and, for a
// new session, subscribes it to room flood.
func joinFlood(t *testing.T, n *node, old *floodClient) *floodClient {
	t.Helper()
	f := &floodClient{}
	c := mustDial(t, n)
	c.OnEvent = f.onEvent
	var auth any
	if old != nil {
		_, offset, _ := old.last()
		auth = map[string]any{"pid": old.pid, "offset": offset}
	}
	r := c.mustConnect("/", auth)
	f.c, f.sid, f.pid = c, r.SID, r.PID
	if old == nil {
		if f.pid == "" {
			t.Fatalf("the CONNECT answer has no pid: is recovery on?")
		}
		c.mustCall("/", "subscribe", map[string]any{"rooms": []string{"flood"}})
	}
	return f
}

// TestRecoveryBufferBounded (issue 22 item 5): a backend emitting about 10 MB/s to a room for 4 s
// (40 MB) keeps the live heap within --recovery-max-mib (8 here) and a margin, where every
// broadcast used to be kept for the whole window (10 MB/s: 1.1 GiB). A session that dropped
// before the flood, whose packets were pushed out, reconnects with recovered: false (a new
// sid, nothing replayed); one that dropped near the end recovers with every event it missed,
// in order, without a gap.
func TestRecoveryBufferBounded(t *testing.T) {
	const (
		maxMiB   = 8
		rate     = 100 // emits a second
		size     = 100 << 10
		duration = 4 * time.Second
		lateDrop = 3500 * time.Millisecond
	)
	n := startNode(t, "--api-keys", apiKey, "--recovery-max-mib", strconv.Itoa(maxMiB))
	pad := strings.Repeat("x", size)
	emit := func(seq int) {
		t.Helper()
		a, err := n.post(context.Background(), "/emit", fmt.Sprintf(`{"rooms":["flood"],"event":"flood","args":[%d,{"pad":%q}]}`, seq, pad))
		if err != nil || a.Status != http.StatusAccepted {
			t.Fatalf("emit %d: %v %d %s", seq, err, a.Status, a.Body)
		}
	}

	early, late := joinFlood(t, n, nil), joinFlood(t, n, nil)
	emit(0)
	waitFor(t, "both sockets got event 0", func() bool {
		a, _, _ := early.last()
		b, _, _ := late.last()
		return a == 0 && b == 0
	})
	early.c.close()
	base := n.heap()

	start := time.Now()
	var peak memStats
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() { // the live heap while the flood runs
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(300 * time.Millisecond):
			}
			if m := n.heap(); m.HeapAlloc > peak.HeapAlloc {
				peak = m
			}
		}
	}()
	seq := 0
	for time.Since(start) < duration {
		seq++
		emit(seq)
		if late.c != nil && time.Since(start) >= lateDrop {
			late.c.close()
			late.c = nil
		}
		pace(context.Background(), start.Add(time.Duration(seq)*time.Second/rate), 0)
	}
	close(stopSampling)
	<-sampled
	t.Logf("%d emits of %d KiB in %v; heap at the start: %v; peak: %v", seq, size>>10, time.Since(start).Round(time.Millisecond), base, peak)
	if limit := base.HeapAlloc + (maxMiB+8)<<20; peak.HeapAlloc > limit {
		t.Errorf("the live heap peaked at %.1f MiB during the flood, want at most %.1f MiB (the start, --recovery-max-mib %d and 8 MiB)", mib(peak.HeapAlloc), mib(limit), maxMiB)
	}

	t.Run("dropped before the flood: not recovered", func(t *testing.T) {
		again := joinFlood(t, n, early)
		if again.sid == early.sid || again.pid == early.pid {
			t.Fatalf("recovered (sid %s, pid %s) although its packets were pushed out of the buffer", again.sid, again.pid)
		}
		emit(seq + 1) // not in the room any more: a new session has no rooms
		if _, _, got := again.last(); got != 0 {
			t.Fatalf("a session that was not recovered got %d flood events", got)
		}
	})
	t.Run("dropped near the end: recovered without a gap", func(t *testing.T) {
		lastSeen, _, _ := late.last()
		again := joinFlood(t, n, late)
		if again.sid != late.sid || again.pid != late.pid {
			t.Fatalf("not recovered (sid %s → %s): it missed %d events, about %d KiB, within the %d MiB bound", late.sid, again.sid, seq-lastSeen, (seq-lastSeen)*size>>10, maxMiB)
		}
		waitFor(t, "every missed event", func() bool { got, _, _ := again.last(); return got >= seq })
		again.mu.Lock()
		defer again.mu.Unlock()
		for i, s := range again.seqs {
			if want := lastSeen + 1 + i; s != want {
				t.Fatalf("recovered events %v…: event %d is %d, want %d (a gap or a duplicate)", again.seqs[:min(len(again.seqs), 10)], i, s, want)
			}
		}
		t.Logf("recovered %d missed events (%d..%d)", len(again.seqs), lastSeen+1, again.seqs[len(again.seqs)-1])
	})
}
