package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// machine describes where the numbers were taken.
type machine struct {
	cpu, kernel, memory string
	cores               int
	loadStart, loadEnd  string
	fileLimit           string
}

func describeMachine() machine {
	m := machine{cores: runtime.NumCPU(), cpu: "unknown", loadStart: loadAverage()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m.memory = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	if out, err := exec.Command("sh", "-c", "ulimit -n").Output(); err == nil {
		m.fileLimit = strings.TrimSpace(string(out))
	}
	return m
}

func (m machine) summary() string {
	return fmt.Sprintf("%d × %s, Linux %s, load average %s", m.cores, m.cpu, m.kernel, m.loadStart)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// versions lists what was measured, in report order.
func versions(ctx context.Context, env *environment) [][2]string {
	var v [][2]string
	commit := "unknown"
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	}
	if env.switchboard != filepath.Join(env.workdir, "switchboard") {
		commit = "prebuilt " + env.switchboard + ", benchmark tool at " + commit
	}
	v = append(v, [2]string{"Switchboard", "commit " + commit + ", built with " + runtime.Version()})
	// The library versions linked into the binary under test.
	if out, err := exec.CommandContext(ctx, "go", "version", "-m", env.switchboard).Output(); err == nil {
		for line := range strings.Lines(string(out)) {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "dep" && (f[1] == "github.com/zishang520/socket.io/servers/socket/v3" || f[1] == "github.com/zishang520/socket.io/servers/engine/v3") {
				v = append(v, [2]string{f[1], f[2]})
			}
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/gorilla/websocket" {
				v = append(v, [2]string{"load generator: " + d.Path, d.Version})
			}
		}
	}
	if out, err := exec.CommandContext(ctx, env.node, "--version").Output(); err == nil {
		v = append(v, [2]string{"Node.js", strings.TrimSpace(string(out))})
	}
	for _, pkg := range []string{"socket.io", "engine.io", "ws", "@socket.io/redis-adapter", "redis", "socket.io-client", "engine.io-client"} {
		if ver := nodePackageVersion(env.root, pkg); ver != "" {
			v = append(v, [2]string{"npm " + pkg, ver})
		}
	}
	if ver := redisVersion(env.redisURL); ver != "" {
		v = append(v, [2]string{"Redis (cluster cases)", ver})
	}
	return v
}

// redisVersion asks the Redis at rawURL for its version (INFO server); "" when it does not
// answer or needs a password.
func redisVersion(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" || u.User != nil {
		return ""
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("INFO server\r\n")); err != nil {
		return ""
	}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
		if err != nil {
			return ""
		}
	}
}

// nodePackageVersion reads the installed version of pkg as the reference server resolves it.
func nodePackageVersion(root, pkg string) string {
	dirs := []string{filepath.Join(root, "bench", "node_modules", pkg), filepath.Join(root, "client-js", "node_modules", pkg)}
	if matches, _ := filepath.Glob(filepath.Join(root, "node_modules", ".pnpm", pkg+"@*", "node_modules", pkg)); len(matches) > 0 {
		dirs = append(dirs, matches...)
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "package.json"))
		if err != nil {
			continue
		}
		var p struct{ Version string }
		if json.Unmarshal(b, &p) == nil && p.Version != "" {
			return p.Version
		}
	}
	return ""
}
