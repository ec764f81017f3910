package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/internal/redistest"
)

// TestHookRoomsTwoNodesOnRedis: with two nodes on Redis, a room is occupied once when its first
// socket of the cluster joins and vacated once when its last one leaves, whichever node they are
// on; under concurrent joins and leaves on both nodes every occupied has its vacated.
func TestHookRoomsTwoNodesOnRedis(t *testing.T) {
	rds := redistest.Start(t)
	b := newTestBackend(t)
	cfg := hookConfig(b, false)
	cfg.Adapter, cfg.RedisURL = "redis", rds.URL()
	nodeA := startServer(t, cfg)
	nodeB := startServer(t, cfg)
	settled := func() bool { return hooksSettled(t, nodeA) && hooksSettled(t, nodeB) }
	roomR := aboutRoom("/", "r")

	onA, onB := mustRawDial(t, nodeA, "/"), mustRawDial(t, nodeB, "/")
	steps := []struct {
		c     *rawClient
		event string
		want  []string
	}{
		{onA, "subscribe", []string{"room.occupied"}},
		{onB, "subscribe", []string{"room.occupied"}},
		{onA, "unsubscribe", []string{"room.occupied"}},
		{onB, "unsubscribe", []string{"room.occupied", "room.vacated"}},
		{onB, "subscribe", []string{"room.occupied", "room.vacated", "room.occupied"}},
		{onA, "subscribe", []string{"room.occupied", "room.vacated", "room.occupied"}},
		{onB, "unsubscribe", []string{"room.occupied", "room.vacated", "room.occupied"}},
		{onA, "unsubscribe", []string{"room.occupied", "room.vacated", "room.occupied", "room.vacated"}},
	}
	for i, st := range steps {
		if r := st.c.call(t, "/", st.event, `{"rooms":["r"]}`, i); errorCode(r) != "" {
			t.Fatalf("step %d %s: %v", i, st.event, r)
		}
		waitFor(t, "both nodes settled", settled)
		if got := eventTypes(b.ackedEvents(roomR)); !equalStrings(got, st.want) {
			t.Fatalf("after step %d (%s on node %s): %v, want %v", i, st.event, map[bool]string{true: "A", false: "B"}[st.c == onA], got, st.want)
		}
	}

	// Concurrent: 8 sockets on each node join and leave room "busy" 10 times each.
	var wg sync.WaitGroup
	for _, node := range []*testServer{nodeA, nodeB} {
		for range 8 {
			c := mustRawDial(t, node, "/")
			wg.Go(func() {
				for i := range 10 {
					c.call(t, "/", "subscribe", `{"rooms":["busy"]}`, 2*i)
					c.call(t, "/", "unsubscribe", `{"rooms":["busy"]}`, 2*i+1)
				}
			})
		}
	}
	wg.Wait()
	waitFor(t, "both nodes settled", settled)
	got := eventTypes(b.ackedEvents(aboutRoom("/", "busy")))
	occupied, vacated := 0, 0
	for _, ty := range got {
		if ty == "room.occupied" {
			occupied++
		} else {
			vacated++
		}
	}
	if occupied == 0 || occupied != vacated {
		t.Errorf("busy: %d occupied, %d vacated: every occupied needs exactly one vacated", occupied, vacated)
	}
	members, err := nodeA.backend.Presence(roomsPresence("/")).Members(t.Context(), "busy")
	if err != nil || len(members) != 0 {
		t.Errorf("busy still counts %d sockets (%v)", len(members), err)
	}
}

func equalStrings(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// childNodeEnv, when set, makes TestHookChildNode run a node from the SWITCHBOARD_* environment
// until it is killed (TestHookNodeKilled's other node: a process of its own to SIGKILL).
const childNodeEnv = "SWITCHBOARD_TEST_CHILD_NODE"

// TestHookChildNode is not a test: it is the process TestHookNodeKilled kills. It prints
// "ADDR <host:port>" once it serves.
func TestHookChildNode(t *testing.T) {
	if os.Getenv(childNodeEnv) == "" {
		t.Skip("run by TestHookNodeKilled")
	}
	cfg, err := LoadConfig(nil, os.Getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", ln.Addr())
	_ = srv.Serve(context.Background(), ln) // until SIGKILL
}

// startChildNode runs TestHookChildNode in a process of its own with env, and returns its URL
// and process.
func startChildNode(t *testing.T, env map[string]string) (string, *os.Process) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHookChildNode$")
	cmd.Env = append(os.Environ(), childNodeEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addr <- a
			}
		}
	}()
	return "http://" + receive(t, "the child node's address", addr), cmd.Process
}

// remoteDial connects a raw client to nsp of a node in another process, with auth.
func remoteDial(t *testing.T, baseURL, nsp, auth string) *rawClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(baseURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := (&websocket.Dialer{HandshakeTimeout: waitTimeout}).Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", baseURL, err)
	}
	c := &rawClient{conn: conn}
	t.Cleanup(c.close)
	if open, err := c.read(); err != nil || !strings.HasPrefix(open, "0") {
		t.Fatalf("engine open: %q %v", open, err)
	}
	if err := c.write("40" + nspPrefix(nsp) + auth); err != nil {
		t.Fatal(err)
	}
	answer, _, err := c.awaitConnect(nsp)
	if err != nil {
		t.Fatal(err)
	}
	c.sid, _ = answer["sid"].(string)
	return c
}

// TestHookNodeKilled: a node killed with SIGKILL never says goodbye; its rooms are vacated and
// its chat members removed by the survivor that reaps its presence (Redis presence: within 8 s of
// its last heartbeat), exactly once, and the chat room hears chat:user-left once.
func TestHookNodeKilled(t *testing.T) {
	rds := redistest.Start(t)
	b := newTestBackend(t)
	cfg := hookConfig(b, false)
	cfg.Adapter, cfg.RedisURL = "redis", rds.URL()
	survivor := startServer(t, cfg)
	survivorStart := time.Now()
	childURL, child := startChildNode(t, map[string]string{
		"SWITCHBOARD_ADAPTER": "redis", "SWITCHBOARD_REDIS_URL": rds.URL(),
		"SWITCHBOARD_HOOK_URL": b.URL(), "SWITCHBOARD_HOOK_SECRET": testHookSecret,
		"SWITCHBOARD_LOG_LEVEL": "warn",
	})

	doomed := remoteDial(t, childURL, "/", "")
	if r := doomed.call(t, "/", "subscribe", `{"rooms":["doomed"]}`, 1); errorCode(r) != "" {
		t.Fatalf("subscribe: %v", r)
	}
	yves := remoteDial(t, childURL, "/chat", `{"name":"Yves"}`)
	yves.call(t, "/chat", "chat:join", `{"room":"lobby"}`, 1)
	watcher := mustHookDial(t, survivor, "/chat", hookDialOptions{auth: `{"name":"Wanda"}`})
	watcher.call(t, "/chat", "chat:join", `{"room":"lobby"}`, 1)
	waitAcked(t, b, "the doomed room occupied", 1, aboutRoom("/", "doomed"))
	waitAcked(t, b, "both members added", 2, aboutChatRoom("lobby"))

	// Redis presence claims a dead node only from a survivor that has beaten cleanly for 6 s.
	if wait := 6500*time.Millisecond - time.Since(survivorStart); wait > 0 {
		time.Sleep(wait) // the survivor's age is the condition: nothing to poll
	}
	if err := child.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	killed := time.Now()

	waitAcked(t, b, "the doomed room vacated", 2, aboutRoom("/", "doomed"))
	waitAcked(t, b, "Yves removed", 3, aboutChatRoom("lobby"))
	waitAcked(t, b, "the user rooms vacated", 2, func(e map[string]any) bool {
		return e["type"] == "room.vacated" && (e["room"] == "user:"+doomed.sid || e["room"] == "user:"+yves.sid)
	})
	took := time.Since(killed)
	left := watcher.readEvent(t, "/chat", "chat:user-left")
	var ev struct {
		Room string `json:"room"`
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	if err := json.Unmarshal(left[0], &ev); err != nil || ev.Room != "lobby" || ev.User.Name != "Yves" {
		t.Errorf("chat:user-left = %s", left[0])
	}
	// The bound: 8 s from the dead node's last heartbeat, which was at most 2 s before the kill.
	if took > 10*time.Second {
		t.Errorf("the dead node's rooms were vacated %v after the kill, want within 8 s of its last heartbeat", took)
	}
	t.Logf("vacated %v after SIGKILL", took.Round(100*time.Millisecond))

	// Exactly once: nothing more comes of it (the watcher's own message arrives with no second
	// chat:user-left before it; the backend has each event once).
	if before, _ := watcher.untilAckAfter(t, "/chat", "chat:send", `{"room":"lobby","text":"still here"}`, 2); !equalStrings(before, []string{"chat:message"}) {
		t.Errorf("before its own message's ack the watcher got %v, want its chat:message alone", before)
	}
	waitFor(t, "the survivor settled", func() bool { return hooksSettled(t, survivor) })
	want := map[string][]string{
		"doomed": {"room.occupied", "room.vacated"},
		"lobby":  {"chat.member_added Yves", "chat.member_added Wanda", "chat.member_removed Yves"},
	}
	if got := eventTypes(b.ackedEvents(aboutRoom("/", "doomed"))); !equalStrings(got, want["doomed"]) {
		t.Errorf("doomed: %v, want %v", got, want["doomed"])
	}
	if got := eventTypes(b.ackedEvents(aboutChatRoom("lobby"))); !equalStrings(got, want["lobby"]) {
		t.Errorf("lobby: %v, want %v", got, want["lobby"])
	}
	if got := b.ackedEvents(aboutRoom("/chat", "lobby")); len(got) != 1 {
		t.Errorf("/chat lobby: %v, want occupied only (Wanda is still there)", eventTypes(got))
	}
}
