package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds every wait of these tests: a server that never answers fails the test
// instead of hanging the run.
const waitTimeout = 15 * time.Second

// apiKey is the API key every node that serves the API is started with.
const apiKey = "e2e-key"

// bin is the binary under test, set by TestMain.
var bin string

// TestMain builds the binary once unless SWITCHBOARD_BIN names one.
func TestMain(m *testing.M) {
	bin = os.Getenv("SWITCHBOARD_BIN")
	var dir string
	if bin == "" {
		var err error
		dir, err = os.MkdirTemp("", "switchboard-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		bin = filepath.Join(dir, "switchboard")
		build := exec.Command("go", "build", "-o", bin, "github.com/switchboard/switchboard")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build the binary:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

// node is one running switchboard process.
type node struct {
	t      testing.TB
	cmd    *exec.Cmd
	URL    string // http://127.0.0.1:port
	Addr   string // 127.0.0.1:port
	pprof  string // host:port of --pprof-addr
	exited chan struct{}
	stderr *lockedBuffer

	mu   sync.Mutex
	logs []map[string]any
}

// lockedBuffer collects a process's stderr for the failure report.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr is a loopback address nothing listens on now, for --pprof-addr (the binary does not
// report the port it got for :0 on every version).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNode runs the binary on 127.0.0.1:0 with args (and --pprof-addr) and waits until it logs
// "listening". The node is killed when the test ends.
func startNode(t testing.TB, args ...string) *node {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n, early := tryStart(t, args)
		if early == "" {
			return n
		}
		// The pprof port was free when picked, but another process may have taken it since.
		if attempt == 3 || !strings.Contains(early, "address already in use") {
			t.Fatalf("%s %s exited with %v before listening: %s", bin, strings.Join(args, " "), n.cmd.ProcessState, early)
		}
	}
}

// tryStart starts the node once; early tells why it exited before listening ("" if it did not).
func tryStart(t testing.TB, args []string) (n *node, early string) {
	t.Helper()
	n = &node{t: t, pprof: freeAddr(t), exited: make(chan struct{}), stderr: &lockedBuffer{}}
	all := append([]string{"--addr", "127.0.0.1:0", "--log-format", "json", "--pprof-addr", n.pprof}, args...)
	n.cmd = exec.Command(bin, all...)
	n.cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	n.cmd.Stderr = n.stderr
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var entry map[string]any
			if json.Unmarshal(sc.Bytes(), &entry) != nil {
				continue
			}
			n.mu.Lock()
			n.logs = append(n.logs, entry)
			n.mu.Unlock()
			if entry["message"] == "listening" {
				addr, _ := entry["addr"].(string)
				select {
				case listening <- addr:
				default:
				}
			}
		}
		_ = n.cmd.Wait() // after the last read: Wait closes the pipe
		close(n.exited)
	}()
	t.Cleanup(n.kill)
	select {
	case addr := <-listening:
		n.Addr, n.URL = addr, "http://"+addr
		return n, ""
	case <-n.exited:
		n.mu.Lock()
		logs, _ := json.Marshal(n.logs)
		n.mu.Unlock()
		return n, string(logs) + " " + n.stderr.String()
	case <-time.After(waitTimeout):
		t.Fatalf("the node did not log listening within %v: %s", waitTimeout, n.stderr.String())
		return n, ""
	}
}

// kill ends the process if it still runs (the test's cleanup): at once, as the drain delay
// would hold every test for seconds; the tests of shutdown signal the node themselves.
func (n *node) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// signal sends sig to the process.
func (n *node) signal(sig os.Signal) {
	n.t.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		n.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits until the process exits and gives its exit code.
func (n *node) wait() int {
	n.t.Helper()
	select {
	case <-n.exited:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(waitTimeout + 10*time.Second):
		n.t.Fatalf("the node did not exit")
		return -1
	}
}

// logsMatching gives the log entries whose message matches re, in order.
func (n *node) logsMatching(re string) []map[string]any {
	rx := regexp.MustCompile(re)
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []map[string]any
	for _, e := range n.logs {
		if msg, _ := e["message"].(string); rx.MatchString(msg) {
			out = append(out, e)
		}
	}
	return out
}

// memStats is what the runtime reports of its heap, after a full collection.
type memStats struct {
	HeapAlloc, HeapInuse, TotalAlloc, Sys uint64
}

func (m memStats) String() string {
	return fmt.Sprintf("heap %.1f MiB (in use %.1f MiB, sys %.1f MiB, allocated in all %.1f MiB)",
		mib(m.HeapAlloc), mib(m.HeapInuse), mib(m.Sys), mib(m.TotalAlloc))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// heap collects garbage in the process (the heap profile's gc=1) and reads its MemStats from
// the profile's text form. It collects twice: what a sync.Pool dropped survives one collection
// in the pool's victim cache.
func (n *node) heap() memStats {
	n.t.Helper()
	n.get("http://" + n.pprof + "/debug/pprof/heap?gc=1")
	body := n.get("http://" + n.pprof + "/debug/pprof/heap?gc=1&debug=1")
	var m memStats
	fields := map[string]*uint64{"HeapAlloc": &m.HeapAlloc, "HeapInuse": &m.HeapInuse, "TotalAlloc": &m.TotalAlloc, "Sys": &m.Sys}
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		if p := fields[name]; ok && p != nil {
			*p, _ = strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		}
	}
	if m.HeapAlloc == 0 {
		n.t.Fatalf("no HeapAlloc in the heap profile")
	}
	return m
}

// goroutines is the process's goroutine count.
func (n *node) goroutines() int {
	n.t.Helper()
	body := n.get("http://" + n.pprof + "/debug/pprof/goroutine?debug=1")
	var total int
	if _, err := fmt.Sscanf(body, "goroutine profile: total %d", &total); err != nil {
		n.t.Fatalf("goroutine profile: %v", err)
	}
	return total
}

// fds is how many descriptors the process holds.
func (n *node) fds() int {
	n.t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.cmd.Process.Pid))
	if err != nil {
		n.t.Fatalf("read the process's descriptors: %v", err)
	}
	return len(entries)
}

// get fetches a URL (a new connection each time) and gives the body; anything but 200 fails.
func (n *node) get(url string) string {
	n.t.Helper()
	status, body, err := httpGet(url)
	if err != nil || status != http.StatusOK {
		n.t.Fatalf("GET %s: %d %v %s", url, status, err, body)
	}
	return body
}

// plainClient opens a new connection per request, so that no kept-alive connection of the
// test's own counts among the node's descriptors or hides whether the node still accepts.
var plainClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitTimeout}

func httpGet(url string) (int, string, error) {
	res, err := plainClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// metric is the sum of every series of a metric whose labels contain all of labels
// (`name="value"` pairs), from /metrics.
func (n *node) metric(name string, labels ...string) float64 {
	n.t.Helper()
	var sum float64
	for _, line := range strings.Split(n.get(n.URL+"/metrics"), "\n") {
		i := strings.LastIndexByte(line, ' ') // label values may hold spaces
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		series, value := line[:i], line[i+1:]
		if series != name && !strings.HasPrefix(series, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && match {
			sum += v
		}
	}
	return sum
}

// apiAnswer is an HTTP API answer.
type apiAnswer struct {
	Status int
	Body   string
	Took   time.Duration
}

// code is the error code of an error answer.
func (a apiAnswer) code() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal([]byte(a.Body), &e)
	return e.Error.Code
}

// apiClient keeps connections alive, as a backend's pool does.
var apiClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: waitTimeout}

// post calls the HTTP API with the test key.
func (n *node) post(ctx context.Context, path, body string) (apiAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL+"/api/v1"+path, strings.NewReader(body))
	if err != nil {
		return apiAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	res, err := apiClient.Do(req)
	if err != nil {
		return apiAnswer{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return apiAnswer{Status: res.StatusCode, Body: string(b), Took: time.Since(start)}, err
}

// mustPost is post whose transport error fails the test.
func (n *node) mustPost(path, body string) apiAnswer {
	n.t.Helper()
	a, err := n.post(context.Background(), path, body)
	if err != nil {
		n.t.Fatalf("POST %s: %v", path, err)
	}
	return a
}

// waitFor polls cond until it holds or waitTimeout passed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, waitTimeout, what, cond)
}

// waitForWithin polls cond until it holds or limit passed.
func waitForWithin(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
}
