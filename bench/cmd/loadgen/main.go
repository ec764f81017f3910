// Command loadgen runs one benchmark scenario against a Socket.IO server on loopback and prints
// the result as one JSON object. benchrun drives it; run it by hand to iterate on one scenario:
//
//	loadgen -scenario echo -addr 127.0.0.1:3100 -pid $(pgrep -n switchboard) -n 50 -duration 10s
//	loadgen -scenario fanout -addr 127.0.0.1:3100 -pid A -peer 127.0.0.1:3103 -peer-pid B -n 1000
//	loadgen -scenario echo -parser msgpack -addr 127.0.0.1:3100 -pid $(pgrep -n switchboard) -n 50
//	loadgen -scenario connect-polling -addr 127.0.0.1:3100 -pid A -n 5000 -node $(which node) -clients bench/node/clients.js
//	loadgen -scenario relay -keyed -tick 50ms -addr 127.0.0.1:3100 -pid A -n 50 -rate 60 -duration 10s
//	loadgen -hook-backend 127.0.0.1:3105 -hook-secret s   # the app backend of hook-fixed, until killed
//	loadgen -scenario hook-fixed -addr 127.0.0.1:3100 -pid A -n 50 -rate 2000 -duration 10s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/bench/loadgen"
)

func main() {
	var (
		o        loadgen.Options
		scenario string
		timeout  time.Duration
	)
	flag.StringVar(&scenario, "scenario", "", strings.Join(loadgen.Scenarios, ", "))
	flag.StringVar(&o.Addr, "addr", "127.0.0.1:3100", "server host:port (loopback only)")
	flag.IntVar(&o.PID, "pid", 0, "server process id, read from /proc")
	flag.StringVar(&o.PprofAddr, "pprof-addr", "", "server pprof listener, for goroutine counts (churn)")
	flag.IntVar(&o.Sources, "sources", 16, "loopback source addresses 127.0.0.2… to spread connections over")
	flag.IntVar(&o.Concurrency, "concurrency", 50, "connection attempts in flight")
	flag.IntVar(&o.N, "n", 1000, "clients (connect, echo) or room members (fanout, api-emit)")
	flag.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time (echo, api-emit) or publishing time (fanout)")
	flag.DurationVar(&o.Warmup, "warmup", time.Second, "echo, api-emit: unmeasured time before the window")
	flag.IntVar(&o.Rate, "rate", 10, "fanout: messages per second; echo-fixed: acks per second, all clients together; relay: messages per second per player")
	flag.BoolVar(&o.Keyed, "keyed", false, "relay: players publish keyed values (key \"pos\") instead of unkeyed messages")
	flag.DurationVar(&o.Tick, "tick", 0, "relay: the server's --relay-tick, for the share of ticks delivered (0: not reported)")
	flag.StringVar(&o.Node, "node", "node", "connect-polling: the node binary")
	flag.StringVar(&o.Clients, "clients", "bench/node/clients.js", "connect-polling: the stock socket.io-client driver")
	flag.IntVar(&o.Drivers, "drivers", 1, "connect-polling: driver processes sharing the clients")
	flag.StringVar(&o.Via, "via", "api", "fanout: publish through the HTTP API (api) or chat:send (chat)")
	flag.StringVar(&o.APIKey, "api-key", "benchkey", "fanout via api: bearer key")
	flag.StringVar(&o.Room, "room", "bench", "room name")
	flag.IntVar(&o.Cycles, "cycles", 5000, "churn: connect/disconnect cycles")
	flag.IntVar(&o.InFlight, "inflight", 16, "api-emit: API calls in flight, one keep-alive connection each")
	flag.StringVar(&o.Parser, "parser", loadgen.ParserDefault, "the clients' Socket.IO parser: default (JSON) or msgpack (socket.io-msgpack-parser's framing; connect, echo and fanout)")
	flag.Func("peer", "fanout: another node of the cluster, host:port (repeat for more); members are spread over -addr and the peers", func(v string) error {
		o.Peers = append(o.Peers, v)
		return nil
	})
	flag.Func("peer-pid", "process id of a -peer, in the same order (its CPU and RSS are added to the server's)", func(v string) error {
		pid, err := strconv.Atoi(v)
		if err != nil || pid <= 0 {
			return fmt.Errorf("not a process id: %q", v)
		}
		o.PeerPIDs = append(o.PeerPIDs, pid)
		return nil
	})
	flag.DurationVar(&timeout, "timeout", 5*time.Minute, "hard limit for the whole run")
	cpuProfile := flag.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	hookBackend := flag.String("hook-backend", "", "serve the hook-fixed scenario's app backend on this host:port until killed, instead of running a scenario")
	hookSecret := flag.String("hook-secret", "", "-hook-backend: the --hook-secret requests are signed with")
	flag.Parse()
	if *hookBackend != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := loadgen.ServeHookBackend(ctx, *hookBackend, *hookSecret); err != nil {
			fail(err.Error())
		}
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err.Error())
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err.Error())
		}
		defer pprof.StopCPUProfile()
	}

	if o.PID <= 0 {
		fail("-pid is required")
	}
	if len(o.PeerPIDs) != len(o.Peers) {
		fail("every -peer needs its -peer-pid")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := loadgen.Run(ctx, scenario, o)
	if err != nil {
		pprof.StopCPUProfile()
		fail(err.Error())
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "loadgen:", msg)
	os.Exit(1)
}
