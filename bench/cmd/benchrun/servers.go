package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/bench/loadgen"
)

// Cores: the server runs alone on serverCore, the load generator on loadCore.
const (
	serverCore = "0"
	loadCore   = "1"
	apiKey     = "benchkey"
)

// Ports, as offsets from -port: Switchboard, Node, Switchboard's pprof listener, then the second
// node of each for the cluster cases (peerOffset above the first), then the hook cases' backend.
const (
	switchboardOffset = 0
	nodeOffset        = 1
	pprofOffset       = 2
	peerOffset        = 3
	hookOffset        = 5
)

// serverKind is one of the two servers under test.
type serverKind struct {
	Name, Label string
	offset      int  // port offset of its first node
	pprof       bool // has a pprof listener (goroutine counts)
	command     func(env *environment, l launch) []string
}

// launch is how one process of a server is started.
type launch struct {
	addr, pprofAddr string   // pprofAddr empty: no pprof listener
	redis           bool     // share rooms with the other node through env.redisURL
	msgpack         bool     // clients speak socket.io-msgpack-parser
	flags           []string // Switchboard only: the case's own flags (benchCase.Flags)
}

var servers = []serverKind{
	{
		Name: "switchboard", Label: "Switchboard", offset: switchboardOffset, pprof: true,
		command: func(env *environment, l launch) []string {
			// --event-rate 0: Node has no per-socket event limit, and the echo cases' clients
			// (over 1,000 events a second each) would otherwise measure rate_limited answers and,
			// past --event-abuse, disconnections.
			args := []string{env.switchboard, "--addr", l.addr, "--api-keys", apiKey, "--log-level", "warn", "--log-format", "json", "--event-rate", "0"}
			if l.pprofAddr != "" {
				args = append(args, "--pprof-addr", l.pprofAddr)
			}
			if l.redis {
				args = append(args, "--adapter", "redis", "--redis-url", env.redisURL)
			}
			return append(args, l.flags...)
		},
	},
	{
		Name: "node", Label: "Node socket.io", offset: nodeOffset,
		command: func(env *environment, l launch) []string {
			args := []string{env.node, env.nodeServer, "--addr", l.addr, "--api-keys", apiKey}
			if l.redis {
				args = append(args, "--redis", env.redisURL)
			}
			if l.msgpack {
				args = append(args, "--parser", "msgpack")
			}
			return args
		},
	},
}

// environment is what prepare built and found.
type environment struct {
	root, workdir        string
	switchboard, loadgen string
	node, nodeServer     string
	port                 int    // the first of the six loopback ports the servers listen on
	redisURL             string // for the cluster cases
	versions             [][2]string
	// nodeClients is bench/node/clients.js, the stock socket.io-client driver; clientsMissing
	// says why it cannot run (the client package is not installed), empty when it can.
	nodeClients, clientsMissing string
}

// addr is the loopback address at port offset.
func (env *environment) addr(offset int) string {
	return "127.0.0.1:" + strconv.Itoa(env.port+offset)
}

// prepare builds the switchboard binary and the load generator and checks the Node reference.
// A prebuilt binary (-switchboard) is used as it is.
func prepare(ctx context.Context, workdir, binary string, port int, redisURL string) (*environment, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	env := &environment{
		root: root, workdir: workdir, port: port, redisURL: redisURL,
		switchboard: filepath.Join(workdir, "switchboard"),
		loadgen:     filepath.Join(workdir, "loadgen"),
		nodeServer:  filepath.Join(root, "bench", "node", "server.js"),
		nodeClients: filepath.Join(root, "bench", "node", "clients.js"),
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return nil, fmt.Errorf("run from the repository root: %w", err)
	}
	builds := [][2]string{{env.switchboard, "."}, {env.loadgen, "./bench/cmd/loadgen"}}
	if binary != "" {
		if env.switchboard, err = filepath.Abs(binary); err != nil {
			return nil, err
		}
		builds = builds[1:]
	}
	for _, b := range builds {
		logf("go build -o %s %s", b[0], b[1])
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
		}
	}
	if env.node, err = exec.LookPath("node"); err != nil {
		return nil, fmt.Errorf("node is needed for the reference server: %w", err)
	}
	for _, pkg := range []string{"socket.io", "@socket.io/redis-adapter", "redis", "socket.io-msgpack-parser"} {
		if _, err := os.Stat(filepath.Join(root, "bench", "node_modules", pkg)); err != nil {
			return nil, fmt.Errorf("bench/node_modules/%s is missing: run pnpm install --frozen-lockfile (make bench does)", pkg)
		}
	}
	// The driver loads the socket.io-client that client-js depends on (see clients.js).
	if _, err := os.Stat(filepath.Join(root, "client-js", "node_modules", "socket.io-client")); err != nil {
		env.clientsMissing = "client-js/node_modules/socket.io-client is missing: run pnpm install --frozen-lockfile (make bench does)"
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, fmt.Errorf("taskset (util-linux) is needed to pin the processes: %w", err)
	}
	env.versions = versions(ctx, env)
	return env, nil
}

// outcome is one run of one case on one server.
type outcome struct {
	Result loadgen.Result
	Err    string
}

func (o outcome) short(c benchCase) string {
	switch {
	case o.Err != "":
		return "error: " + o.Err
	case o.Result.NA != "":
		return "n/a: " + o.Result.NA
	}
	var parts []string
	for _, m := range c.Metrics[:min(3, len(c.Metrics))] {
		if v, ok := o.Result.Metrics[m.Key]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s", m.Key, format(v, m.Digits)))
		}
	}
	return strings.Join(parts, " ")
}

// runOnce starts s fresh (two nodes on Redis for a cluster case), runs case c against it and
// stops it.
func runOnce(ctx context.Context, env *environment, s serverKind, c benchCase, rep int) outcome {
	if c.NodeClients && env.clientsMissing != "" {
		return outcome{Err: env.clientsMissing}
	}
	flags := c.Flags
	var backend *os.Process
	if c.HookBackend {
		p, err := startHookBackend(ctx, env, filepath.Join(env.workdir, fmt.Sprintf("hook-backend-%s-%d.log", c.ID, rep+1)))
		if err != nil {
			return outcome{Err: err.Error()}
		}
		backend = p
		defer stopServer(backend)
		flags = append(slices.Clip(flags), "--hook-url", "http://"+env.addr(hookOffset)+"/hooks", "--hook-secret", hookSecret)
	}
	first := launch{addr: env.addr(s.offset), redis: c.Cluster, msgpack: c.Msgpack, flags: flags}
	if c.Pprof && s.pprof {
		first.pprofAddr = env.addr(pprofOffset)
	}
	nodes := []launch{first}
	if c.Cluster {
		nodes = append(nodes, launch{addr: env.addr(s.offset + peerOffset), redis: true, msgpack: c.Msgpack, flags: flags})
	}
	var (
		procs []*os.Process
		logs  []string
	)
	defer func() {
		for _, p := range procs {
			stopServer(p)
		}
	}()
	for i, l := range nodes {
		name := fmt.Sprintf("%s-%s-%d", s.Name, c.ID, rep+1)
		if len(nodes) > 1 {
			name += "-" + string(rune('a'+i))
		}
		logPath := filepath.Join(env.workdir, name+".log")
		proc, err := startServer(ctx, env, s, l, logPath)
		if err != nil {
			return outcome{Err: err.Error()}
		}
		procs, logs = append(procs, proc), append(logs, logPath)
	}

	args := []string{"-c", loadCore, env.loadgen, "-scenario", c.Scenario, "-addr", first.addr,
		"-pid", strconv.Itoa(procs[0].Pid), "-api-key", apiKey}
	for i, l := range nodes[1:] {
		args = append(args, "-peer", l.addr, "-peer-pid", strconv.Itoa(procs[i+1].Pid))
	}
	if c.Cluster {
		// Redis pub/sub channels are shared by every client of the Redis (databases do not
		// separate them): a room of its own keeps other runs' messages away from the members.
		args = append(args, "-room", fmt.Sprintf("bench-%d-%s-%d", os.Getpid(), s.Name, rep+1))
	}
	if first.pprofAddr != "" {
		args = append(args, "-pprof-addr", first.pprofAddr)
	}
	if c.NodeClients {
		args = append(args, "-node", env.node, "-clients", env.nodeClients)
	}
	args = append(args, c.Args...)
	cmd := exec.CommandContext(ctx, "taskset", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return outcome{Err: fmt.Sprintf("loadgen: %v: %s", err, strings.TrimSpace(stderr.String()))}
	}
	var res loadgen.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return outcome{Err: fmt.Sprintf("loadgen output: %v", err)}
	}
	for i, p := range procs {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.Pid)); err != nil {
			return outcome{Err: "the server died during the run; see " + logs[i]}
		}
	}
	return outcome{Result: res}
}

// startServer starts one process of s pinned to the server core and waits until it answers an
// Engine.IO handshake. A port that is already taken fails at once: the handshake would otherwise
// be answered by whatever listens there.
func startServer(ctx context.Context, env *environment, s serverKind, l launch, logPath string) (*os.Process, error) {
	for _, a := range []string{l.addr, l.pprofAddr} {
		if a == "" {
			continue
		}
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			_ = conn.Close()
			return nil, fmt.Errorf("%s: %s is taken by another process (choose other ports with -port)", s.Name, a)
		}
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command("taskset", append([]string{"-c", serverCore}, s.command(env, l)...)...)
	cmd.Dir = env.root
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// taskset execs the server, so the pid is the server's own.
	url := "http://" + l.addr + "/socket.io/?EIO=4&transport=polling"
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("%s exited at start; see %s", s.Name, logPath)
		case <-ctx.Done():
			stopServer(cmd.Process)
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd.Process, nil
			}
		}
		if time.Now().After(deadline) {
			stopServer(cmd.Process)
			return nil, fmt.Errorf("%s did not answer on %s; see %s", s.Name, l.addr, logPath)
		}
	}
}

// startHookBackend starts the hook cases' app backend (loadgen -hook-backend) on the load
// generator's core and waits until it accepts connections.
func startHookBackend(ctx context.Context, env *environment, logPath string) (*os.Process, error) {
	addr := env.addr(hookOffset)
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		_ = conn.Close()
		return nil, fmt.Errorf("hook backend: %s is taken by another process (choose other ports with -port)", addr)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command("taskset", "-c", loadCore, env.loadgen, "-hook-backend", addr, "-hook-secret", hookSecret)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the hook backend: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = conn.Close()
			return cmd.Process, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stopServer(cmd.Process)
			return nil, fmt.Errorf("the hook backend did not listen on %s; see %s", addr, logPath)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // polling a port that is coming up
		}
	}
}

// stopServer asks the server to stop and kills it after 15 s.
func stopServer(p *os.Process) {
	_ = p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) || err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.Kill()
}
