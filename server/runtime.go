package server

import "runtime/debug"

// DefaultGCPercent is the garbage collector's target, GOGC, unless GOGC is set: 200 rather than
// Go's 100. Nearly all the memory a connection costs stays live for the connection's life, so
// while connections arrive the collector's work grows with the heap, and at 100 it was about 30%
// of the CPU spent connecting 10,000 clients. At 200, measured side by side (bench/OPTIMISATION.md,
// "Fourth pass"), connections per second rose ~15% and the memory per idle connection ~5%; echo
// and fan-out did not move beyond the noise.
const DefaultGCPercent = 200

// TuneRuntime applies cfg's garbage collector settings to the process. GOGC and GOMEMLIMIT in the
// environment (read by getenv) win: the runtime has applied them already.
func TuneRuntime(cfg Config, getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if cfg.MemoryLimitMiB > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimitMiB << 20)
	}
}
