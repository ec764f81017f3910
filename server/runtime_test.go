package server

import (
	"math"
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
	cfg.GCPercent, cfg.MemoryLimitMiB = 300, 64

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
