// Command benchrun is Switchboard's side-by-side benchmark against Node's socket.io: it builds the
// switchboard binary and the load generator, then for every scenario and repetition starts each
// server fresh on core 0 (taskset -c 0), runs the load generator on core 1 (taskset -c 1) over
// loopback, and writes every figure as median [min–max] with the Switchboard/Node ratio to
// bench/RESULTS.md. Run it from the repository root (make bench, make bench-quick).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		quick   bool
		reps    int
		out     string
		only    string
		workdir string
		binary  string
		port    int
		redis   string
	)
	flag.BoolVar(&quick, "quick", false, "small sizes and one repetition, for iterating")
	flag.IntVar(&reps, "reps", 3, "repetitions of every case (at least 3 for RESULTS.md)")
	flag.StringVar(&out, "out", "bench/RESULTS.md", "report file")
	flag.StringVar(&only, "only", "", "comma list of case ids to run (e.g. echo,fanout-api-1000); empty = all")
	flag.StringVar(&workdir, "workdir", ".build/bench", "binaries and server logs")
	flag.StringVar(&binary, "switchboard", "", "benchmark this switchboard binary instead of building the working tree")
	flag.IntVar(&port, "port", 3100, "first of six loopback ports: Switchboard, Node, pprof, the second node of each (cluster cases), the hook cases' app backend")
	flag.StringVar(&redis, "redis-url", "redis://127.0.0.1:6379/0", "Redis for the cluster cases (fanout-redis-…); only pub/sub is used, nothing is stored")
	flag.Parse()
	if quick && !isSet("reps") {
		reps = 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, quick, reps, out, only, workdir, binary, port, redis); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(ctx context.Context, quick bool, reps int, out, only, workdir, binary string, port int, redisURL string) error {
	started := time.Now()
	if err := raiseFileLimit(20000); err != nil {
		return err
	}
	workdir, err := filepath.Abs(workdir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(workdir, 0o755); err != nil {
		return err
	}
	env, err := prepare(ctx, workdir, binary, port, redisURL)
	if err != nil {
		return err
	}
	cases := defaultCases(quick)
	if only != "" {
		cases = filterCases(cases, strings.Split(only, ","))
		if len(cases) == 0 {
			return fmt.Errorf("-only %q matches no case", only)
		}
	}
	machine := describeMachine()
	logf("%s; %d cases × %d repetitions × 2 servers", machine.summary(), len(cases), reps)

	results := map[string]map[string][]outcome{}
	for _, c := range cases {
		results[c.ID] = map[string][]outcome{}
		for rep := range reps {
			order := servers
			if rep%2 == 1 { // alternate who goes first, so that drift on the machine hits both
				order = []serverKind{servers[1], servers[0]}
			}
			for _, s := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if c.NodeWould != "" && s.Name != "switchboard" {
					continue // a case of Switchboard's alone
				}
				o := runOnce(ctx, env, s, c, rep)
				results[c.ID][s.Name] = append(results[c.ID][s.Name], o)
				logf("%-16s %-11s rep %d: %s", c.ID, s.Name, rep+1, o.short(c))
			}
		}
	}
	machine.loadEnd = loadAverage()
	rep := report{
		Machine: machine, Env: env, Cases: cases, Reps: reps, Quick: quick,
		Results: results, Started: started, Took: time.Since(started),
	}
	if err := os.WriteFile(out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s in %s", out, time.Since(started).Round(time.Second))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// raiseFileLimit lifts the soft descriptor limit for this process and the servers and load
// generator it starts (they inherit it).
func raiseFileLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	if lim.Cur < want {
		logf("warning: the descriptor limit is %d (< %d): the 10,000-connection cases will fail", lim.Cur, want)
	}
	return nil
}
