package server

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultGCPercent is the garbage collector's target, GOGC, unless GOGC is set: 200 rather than
// Go's 100. Nearly all the memory a connection costs stays live for the connection's life, so
// while connections arrive the collector's work grows with the heap, and at 100 it was about 30%
// of the CPU spent connecting 10,000 clients. At 200, measured side by side (bench/OPTIMISATION.md,
// "Fourth pass"), connections per second rose ~15% and the memory per idle connection ~5%; echo
// and fan-out did not move beyond the noise.
const DefaultGCPercent = 200

// DefaultGCFloorMiB is the smallest heap goal the collector gets (see gcFloor), unless GOGC is set.
const DefaultGCFloorMiB = 64

// TuneRuntime applies cfg's garbage collector settings to the process. GOGC and GOMEMLIMIT in the
// environment (read by getenv) win: the runtime has applied them already, and with GOGC set the
// heap floor is off too.
func TuneRuntime(cfg Config, getenv func(string) string) {
	if getenv("GOGC") == "" {
		theGCFloor.set(cfg.GCPercent, cfg.GCFloorMiB<<20)
	}
	if cfg.MemoryLimitMiB > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimitMiB << 20)
	}
}

// gcFloor keeps the collector's heap goal at floor bytes or more while the live heap is steady.
// The runtime's goal is the live heap plus GOGC percent of it (and of the stacks and globals), at
// least 4 MB × GOGC/100, so a busy server whose live heap is small collects very often: echo with
// 50 clients has ~1.6 MB live and ~150 MB/s of short-lived garbage, which made 25 collections a
// second, and the messages that arrived during one waited for it — p99 latency 2.7 ms against
// 1.7 with no collector at all, 1.3–1.5 with a 64 MB floor (bench/OPTIMISATION.md, "Sixth
// pass"). So after every cycle whose live heap is within a quarter of the previous one's, the
// percent is set to the larger of the configured one and the smallest whose goal reaches the
// floor. While the live heap grows (connections arriving) the configured percent alone paces the
// collector, as it did before the floor: the floor would only move where the cycles fall. Once
// the live heap is a third of the floor (at GOGC 200) nothing changes either; what the floor
// costs is up to floor bytes of garbage in a small heap.
//
// It is the process's (GOGC is): one chain of finalizers, started by the first set, runs adjust
// after every collection for the process's life.
type gcFloor struct {
	start    sync.Once
	percent  atomic.Int64  // the configured GOGC
	floor    atomic.Int64  // bytes; 0: no floor
	applied  atomic.Int64  // the percent last given to the runtime
	lastLive atomic.Uint64 // the live heap after the previous cycle; 0 before the first
}

var theGCFloor gcFloor

// runtimeMinHeap is the runtime's smallest heap goal at GOGC=100 (runtime/mgcpacer.go,
// defaultHeapMinimum); at GOGC=p it is runtimeMinHeap × p/100.
const runtimeMinHeap = 4 << 20

// set configures the floor and applies it.
func (g *gcFloor) set(percent int, floor int64) {
	g.percent.Store(int64(percent))
	g.floor.Store(floor)
	g.applied.Store(int64(percent))
	debug.SetGCPercent(percent)
	if floor > 0 {
		g.adjust()
		g.start.Do(g.arm)
	}
}

// gcSentinel is garbage the moment it is made: its finalizer runs after the next collection.
type gcSentinel struct{ _ *int }

// arm has adjust run after the next collection, and arm again.
func (g *gcFloor) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		g.adjust()
		g.arm()
	})
}

// adjust sets the percent for the live heap the last collection found.
func (g *gcFloor) adjust() {
	m := metricsUint("/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes")
	live, roots := m[0], m[1]+m[2] // roots: what the collection scanned besides the heap
	prev := g.lastLive.Swap(live)
	floor := g.floor.Load()
	if floor <= 0 {
		return // off: GOGC is the configured percent (set), or whoever set it since
	}
	if !steady(prev, live) {
		floor = 0
	}
	g.apply(floorPercent(live, roots, floor, g.percent.Load()))
}

// steady reports whether the live heap stayed within a quarter of the previous cycle's.
func steady(prev, live uint64) bool {
	return prev > 0 && live <= prev+prev/4
}

func (g *gcFloor) apply(p int64) {
	if g.applied.Swap(p) != p {
		debug.SetGCPercent(int(p))
	}
}

// floorPercent is the smallest GOGC, not below percent, whose heap goal reaches floor. The
// runtime's goal is the larger of live + (live + roots) × p/100 and its smallest heap,
// runtimeMinHeap × p/100; live and roots are 0 before the first collection.
func floorPercent(live, roots uint64, floor, percent int64) int64 {
	if floor <= 0 {
		return percent
	}
	p := floor * 100 / runtimeMinHeap
	if base := live + roots; base > 0 {
		if uint64(floor) <= live {
			return percent
		}
		p = min(p, int64((uint64(floor)-live)*100/base))
	}
	return max(p, percent)
}

// metricsUint reads runtime/metrics counters or gauges in one read; 0 for a metric the runtime
// does not have.
func metricsUint(names ...string) []uint64 {
	s := make([]metrics.Sample, len(names))
	for i, name := range names {
		s[i].Name = name
	}
	metrics.Read(s)
	out := make([]uint64, len(s))
	for i := range s {
		if s[i].Value.Kind() == metrics.KindUint64 {
			out[i] = s[i].Value.Uint64()
		}
	}
	return out
}
