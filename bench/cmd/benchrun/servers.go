package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// serverKind is one of the two servers under test.
type serverKind struct {
	Name, Label string
	Addr        string
	PprofAddr   string
	command     func(env *environment, pprof bool) []string
}

var servers = []serverKind{
	{
		Name: "switchboard", Label: "Switchboard", Addr: "127.0.0.1:3100", PprofAddr: "127.0.0.1:3102",
		command: func(env *environment, pprof bool) []string {
			args := []string{env.switchboard, "--addr", "127.0.0.1:3100", "--api-keys", apiKey, "--log-level", "warn", "--log-format", "json"}
			if pprof {
				args = append(args, "--pprof-addr", "127.0.0.1:3102")
			}
			return args
		},
	},
	{
		Name: "node", Label: "Node socket.io",
		Addr: "127.0.0.1:3101",
		command: func(env *environment, _ bool) []string {
			return []string{env.node, env.nodeServer, "--addr", "127.0.0.1:3101", "--api-keys", apiKey}
		},
	},
}

// environment is what prepare built and found.
type environment struct {
	root, workdir        string
	switchboard, loadgen string
	node, nodeServer     string
	versions             [][2]string
}

// prepare builds the switchboard binary and the load generator and checks the Node reference.
// A prebuilt binary (-switchboard) is used as it is.
func prepare(ctx context.Context, workdir, binary string) (*environment, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	env := &environment{
		root: root, workdir: workdir,
		switchboard: filepath.Join(workdir, "switchboard"),
		loadgen:     filepath.Join(workdir, "loadgen"),
		nodeServer:  filepath.Join(root, "bench", "node", "server.js"),
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
	if _, err := os.Stat(filepath.Join(root, "bench", "node_modules", "socket.io")); err != nil {
		return nil, fmt.Errorf("bench/node_modules/socket.io is missing: run pnpm install --frozen-lockfile (make bench does)")
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

// runOnce starts s fresh, runs case c against it and stops it.
func runOnce(ctx context.Context, env *environment, s serverKind, c benchCase, rep int) outcome {
	logPath := filepath.Join(env.workdir, fmt.Sprintf("%s-%s-%d.log", s.Name, c.ID, rep+1))
	proc, err := startServer(ctx, env, s, c.Pprof, logPath)
	if err != nil {
		return outcome{Err: err.Error()}
	}
	defer stopServer(proc)

	args := append([]string{"-c", loadCore, env.loadgen, "-scenario", c.Scenario, "-addr", s.Addr,
		"-pid", strconv.Itoa(proc.Pid), "-api-key", apiKey}, c.Args...)
	if c.Pprof && s.PprofAddr != "" {
		args = append(args, "-pprof-addr", s.PprofAddr)
	}
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
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", proc.Pid)); err != nil {
		return outcome{Err: "the server died during the run; see " + logPath}
	}
	return outcome{Result: res}
}

// startServer starts s pinned to the server core and waits until it answers an Engine.IO
// handshake.
func startServer(ctx context.Context, env *environment, s serverKind, pprof bool, logPath string) (*os.Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command("taskset", append([]string{"-c", serverCore}, s.command(env, pprof)...)...)
	cmd.Dir = env.root
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "NODE_ENV=production")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// taskset execs the server, so the pid is the server's own.
	url := "http://" + s.Addr + "/socket.io/?EIO=4&transport=polling"
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
			return nil, fmt.Errorf("%s did not answer on %s; see %s", s.Name, s.Addr, logPath)
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
