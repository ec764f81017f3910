package server

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestTuneRuntime(t *testing.T) {
	gogc := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gogc)
		debug.SetMemoryLimit(limit)
	})
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg := DefaultConfig()
	cfg.GCPercent, cfg.MemoryLimitMiB, cfg.GCFloorMiB = 300, 64, 0 // the floor: TestGCFloorRaisesTheGoal

	tests := []struct {
		name      string
		env       map[string]string
		wantGC    int
		wantLimit int64
	}{
		{"the settings apply", nil, 300, 64 << 20},
		{"GOGC and GOMEMLIMIT win", map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}, 100, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			TuneRuntime(cfg, env(tc.env))
			eq(t, debug.SetGCPercent(100), tc.wantGC)
			eq(t, debug.SetMemoryLimit(math.MaxInt64), tc.wantLimit)
		})
	}
}

func TestFloorPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		live, roots uint64
		floor       int64
		want        int64
	}{
		{"no floor", 2 * mib, mib, 0, 200},
		{"before the first collection the runtime's smallest heap is the floor", 0, 0, 64 * mib, 1600},
		{"a small heap: the smallest heap rules", 2 * mib, mib, 64 * mib, 1600},
		{"a mid-size heap: the goal reaches the floor", 10 * mib, 2 * mib, 64 * mib, 450},
		{"a third of the floor: the configured percent", 30 * mib, 0, 64 * mib, 200},
		{"past the floor", 100 * mib, 8 * mib, 64 * mib, 200},
		{"a floor below the runtime's own smallest heap", 0, 0, 4 * mib, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eq(t, floorPercent(tc.live, tc.roots, tc.floor, 200), tc.want)
		})
	}
}

func TestSteady(t *testing.T) {
	tests := []struct {
		name       string
		prev, live uint64
		want       bool
	}{
		{"first cycle", 0, 1000, false},
		{"same", 1000, 1000, true},
		{"shrank", 1000, 400, true},
		{"grew a quarter", 1000, 1250, true},
		{"grew more", 1000, 1251, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eq(t, steady(tc.prev, tc.live), tc.want)
		})
	}
}

// TestGCFloorRaisesTheGoal runs the floor in this process: after collections of a steady heap
// the runtime's goal is the floor, and turning it off gives the configured percent back.
func TestGCFloorRaisesTheGoal(t *testing.T) {
	gogc := debug.SetGCPercent(100)
	noEnv := func(string) string { return "" }
	cfg := DefaultConfig()
	t.Cleanup(func() {
		off := cfg
		off.GCFloorMiB = 0
		TuneRuntime(off, noEnv)
		debug.SetGCPercent(gogc)
	})
	cfg.GCFloorMiB = 512
	TuneRuntime(cfg, noEnv)
	goal := func() uint64 { return metricsUint("/gc/heap/goal:bytes")[0] }
	waitFor(t, "the heap goal to reach the floor", func() bool {
		runtime.GC()
		return goal() >= 500<<20
	})
	if g := goal(); g > 520<<20 {
		t.Fatalf("heap goal %d MiB, want the 512 MiB floor", g>>20)
	}

	cfg.GCFloorMiB = 0
	TuneRuntime(cfg, noEnv)
	eq(t, metricsUint("/gc/gogc:percent")[0], uint64(DefaultGCPercent))
}
