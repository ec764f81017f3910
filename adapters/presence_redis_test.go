package adapters

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/socketio"
)

// fastPresence are timings short enough for tests, long enough for a loaded machine under -race.
var fastPresence = PresenceOptions{Heartbeat: 100 * time.Millisecond, Timeout: 500 * time.Millisecond}

// presenceNodeForTest is a presence node on its own connection (a node of its own), closed (or
// left halted) when the test ends.
func presenceNodeForTest(t testing.TB, url, prefix string, opts PresenceOptions) *PresenceNode {
	t.Helper()
	opts.Prefix = prefix
	n := NewPresenceNode(dialTest(t, url), opts)
	t.Cleanup(func() { n.halt() })
	return n
}

// expiredLog collects OnExpired calls, from any number of nodes.
type expiredLog struct {
	mu  sync.Mutex
	got []string // "node room member info member? room?"
}

func (l *expiredLog) listen(node string, p *RedisPresence) {
	p.OnExpired(func(room, member string, info []byte, ch socketio.PresenceChange) {
		l.mu.Lock()
		l.got = append(l.got, fmt.Sprintf("%s %s %s %s %v %v", node, room, member, info, ch.Member, ch.Room))
		l.mu.Unlock()
	})
}

func (l *expiredLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// watchedPair starts two presence nodes on url under a new prefix: subject, and a watcher whose
// "chat" presence's OnExpired calls log collects (as "watcher ...").
func watchedPair(t *testing.T, url string) (subject *PresenceNode, watcher *RedisPresence, log *expiredLog, prefix string) {
	prefix = uniquePrefix(t)
	log = &expiredLog{}
	subject = presenceNodeForTest(t, url, prefix, fastPresence)
	watcher = presenceNodeForTest(t, url, prefix, fastPresence).Presence("chat")
	log.listen("watcher", watcher)
	return subject, watcher, log, prefix
}

// withoutNode drops the node name of each entry, sorted.
func withoutNode(entries []string) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		_, rest, _ := strings.Cut(e, " ")
		out[i] = rest
	}
	sort.Strings(out)
	return out
}

// presenceKeys lists the keys under prefix but the node registry's.
func presenceKeys(t testing.TB, c *Conn, prefix string) []string {
	t.Helper()
	keys, err := c.Client().Keys(t.Context(), prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool {
		return strings.HasPrefix(k, prefix+":presence-nodes:") || strings.HasPrefix(k, prefix+":presence-dead:")
	})
	sort.Strings(keys)
	return keys
}

// memberInfos is what Members gives for room, as sorted strings.
func memberInfos(t testing.TB, p socketio.Presence, room string) []string {
	t.Helper()
	infos, err := p.Members(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, b := range infos {
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

func TestPresenceExactlyOnce(t *testing.T) {
	cases := []struct {
		name             string
		members, sockets int // sockets per member per node
	}{
		{"one member, many sockets", 1, 40},
		{"many members", 8, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := uniquePrefix(t)
			nodes := []*RedisPresence{
				presenceNodeForTest(t, localRedis, prefix, PresenceOptions{}).Presence("chat"),
				presenceNodeForTest(t, localRedis, prefix, PresenceOptions{}).Presence("chat"),
			}
			type result struct {
				member string
				ch     socketio.PresenceChange
				err    error
			}
			run := func(op func(p *RedisPresence, member string) (socketio.PresenceChange, error)) []result {
				var wg sync.WaitGroup
				out := make(chan result, len(nodes)*tc.members*tc.sockets)
				start := make(chan struct{})
				for _, p := range nodes {
					for m := range tc.members {
						for range tc.sockets {
							wg.Add(1)
							go func() {
								defer wg.Done()
								<-start
								member := fmt.Sprintf("m%d", m)
								ch, err := op(p, member)
								out <- result{member, ch, err}
							}()
						}
					}
				}
				close(start)
				wg.Wait()
				close(out)
				var all []result
				for r := range out {
					all = append(all, r)
				}
				return all
			}
			check := func(what string, all []result) {
				t.Helper()
				members, rooms := map[string]int{}, 0
				for _, r := range all {
					if r.err != nil {
						t.Fatalf("%s %s: %v", what, r.member, r.err)
					}
					if r.ch.Member {
						members[r.member]++
					}
					if r.ch.Room {
						rooms++
						if !r.ch.Member {
							t.Errorf("%s: the room changed without its member changing", what)
						}
					}
				}
				for m := range tc.members {
					if n := members[fmt.Sprintf("m%d", m)]; n != 1 {
						t.Errorf("%s: member m%d changed %d times, want once", what, m, n)
					}
				}
				if rooms != 1 {
					t.Errorf("%s: the room changed %d times, want once", what, rooms)
				}
			}
			ctx := t.Context()
			check("join", run(func(p *RedisPresence, m string) (socketio.PresenceChange, error) {
				return p.Join(ctx, "lobby", m, []byte("info-"+m))
			}))
			for i, p := range nodes {
				got := memberInfos(t, p, "lobby")
				want := []string{}
				for m := range tc.members {
					want = append(want, fmt.Sprintf("info-m%d", m))
				}
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("node %d: Members = %q, want %q", i, got, want)
				}
			}
			check("leave", run(func(p *RedisPresence, m string) (socketio.PresenceChange, error) {
				return p.Leave(ctx, "lobby", m)
			}))
			if keys := presenceKeys(t, nodes[0].node.conn, prefix); len(keys) != 0 {
				t.Errorf("keys left after every socket left: %q", keys)
			}
			if infos, _ := nodes[1].Members(ctx, "lobby"); len(infos) != 0 {
				t.Errorf("Members after every socket left = %q", infos)
			}
		})
	}
}

// TestPresenceChurn joins and leaves one member's sockets over and over from two nodes: the
// member's arrivals and departures alternate, as seen in the order Redis ran them, whatever the
// interleaving.
func TestPresenceChurn(t *testing.T) {
	prefix := uniquePrefix(t)
	nodes := []*RedisPresence{
		presenceNodeForTest(t, localRedis, prefix, PresenceOptions{}).Presence("chat"),
		presenceNodeForTest(t, localRedis, prefix, PresenceOptions{}).Presence("chat"),
	}
	ctx := t.Context()
	var mu sync.Mutex
	arrivals, departures := 0, 0
	// counted counts a change of the member in n; false on an error.
	counted := func(n *int) func(socketio.PresenceChange, error) bool {
		return func(ch socketio.PresenceChange, err error) bool {
			if err != nil {
				t.Error(err)
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			if ch.Member {
				*n++
			}
			return true
		}
	}
	var wg sync.WaitGroup
	for _, p := range nodes {
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					if !counted(&arrivals)(p.Join(ctx, "busy", "u", nil)) || !counted(&departures)(p.Leave(ctx, "busy", "u")) {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if arrivals == 0 || arrivals != departures {
		t.Errorf("arrivals %d, departures %d: want equal and more than 0", arrivals, departures)
	}
	if keys := presenceKeys(t, nodes[0].node.conn, prefix); len(keys) != 0 {
		t.Errorf("keys left: %q", keys)
	}
}

func TestPresenceMembersInfo(t *testing.T) {
	prefix := uniquePrefix(t)
	a := presenceNodeForTest(t, localRedis, prefix, PresenceOptions{}).Presence("chat")
	b := presenceNodeForTest(t, localRedis, prefix, PresenceOptions{}).Presence("chat")
	other := a.node.Presence("other")
	ctx := t.Context()
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"first info", func() error { _, err := a.Join(ctx, "r", "u1", []byte("v1")); return err }, []string{"v1"}},
		{"newest info wins", func() error { _, err := b.Join(ctx, "r", "u1", []byte("v2")); return err }, []string{"v2"}},
		{"nil info keeps it", func() error { _, err := a.Join(ctx, "r", "u1", nil); return err }, []string{"v2"}},
		{"a member without info", func() error { _, err := b.Join(ctx, "r", "u2", nil); return err }, []string{"", "v2"}},
		{"another name is apart", func() error { _, err := other.Join(ctx, "r", "u3", []byte("x")); return err }, []string{"", "v2"}},
		{"one socket of u1 leaves", func() error { _, err := a.Leave(ctx, "r", "u1"); return err }, []string{"", "v2"}},
		{"u2 leaves", func() error { _, err := b.Leave(ctx, "r", "u2"); return err }, []string{"v2"}},
		{"a leave of nothing changes nothing", func() error {
			ch, err := b.Leave(ctx, "r", "nobody")
			if ch != (socketio.PresenceChange{}) {
				return fmt.Errorf("change %+v", ch)
			}
			return err
		}, []string{"v2"}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := memberInfos(t, b, "r"); !slices.Equal(got, st.want) {
			t.Errorf("%s: Members = %q, want %q", st.name, got, st.want)
		}
	}
	if _, err := a.Join(ctx, "", "u", nil); err == nil {
		t.Error("Join with an empty room: no error")
	}
}

// TestPresenceDeadNode stops a node's heartbeat without any cleanup, as a killed process: the
// survivors remove its members within the bound and report each departure exactly once.
func TestPresenceDeadNode(t *testing.T) {
	prefix := uniquePrefix(t)
	ctx := t.Context()
	var log expiredLog
	dead := presenceNodeForTest(t, localRedis, prefix, fastPresence)
	var survivors []*RedisPresence
	for i := range 2 {
		p := presenceNodeForTest(t, localRedis, prefix, fastPresence).Presence("chat")
		log.listen(fmt.Sprintf("s%d", i), p)
		survivors = append(survivors, p)
	}
	d := dead.Presence("chat")
	log.listen("dead", d)
	joins := []struct {
		p            *RedisPresence
		room, member string
	}{
		{d, "solo", "a1"}, {d, "solo", "a1"}, // two sockets, one member: one departure
		{d, "shared", "a2"},
		{d, "shared", "both"}, {survivors[0], "shared", "both"},
		{survivors[1], "shared", "b1"},
	}
	for _, j := range joins {
		if _, err := j.p.Join(ctx, j.room, j.member, []byte("i-"+j.member)); err != nil {
			t.Fatal(err)
		}
	}
	deadID := dead.ID()
	killed := time.Now()
	dead.halt()
	waitFor(t, "the dead node's counts reaped", func() bool {
		n, err := dead.conn.Client().Exists(ctx, dead.nodeKey(deadID)).Result()
		return err == nil && n == 0 && len(log.list()) >= 2
	})
	took := time.Since(killed)
	if bound := fastPresence.Timeout + fastPresence.Heartbeat + time.Second; took > bound {
		t.Errorf("reaped %v after the node stopped, want within %v", took, bound)
	}
	got := log.list()
	want := []string{"shared a2 i-a2 true false", "solo a1 i-a1 true true"}
	if !slices.Equal(withoutNode(got), want) {
		t.Errorf("OnExpired calls = %q, want %q (once each, on one survivor)", got, want)
	}
	for _, e := range got {
		if strings.HasPrefix(e, "dead ") {
			t.Errorf("the dead node reported %q", e)
		}
	}
	if members, want := memberInfos(t, survivors[0], "shared"), []string{"i-b1", "i-both"}; !slices.Equal(members, want) {
		t.Errorf("shared members after the reap = %q, want %q", members, want)
	}
	// The dead node's late Leaves (a process that was only paused) change nothing.
	if ch, err := d.Leave(ctx, "solo", "a1"); err != nil || ch != (socketio.PresenceChange{}) {
		t.Errorf("Leave of a reaped socket = %+v, %v; want no change", ch, err)
	}
	if ch, err := survivors[0].Leave(ctx, "shared", "both"); err != nil || !ch.Member || ch.Room {
		t.Errorf("survivor's Leave of both = %+v, %v; want the member gone, the room still held", ch, err)
	}
	if ch, err := survivors[1].Leave(ctx, "shared", "b1"); err != nil || !ch.Member || !ch.Room {
		t.Errorf("last Leave = %+v, %v; want member and room gone", ch, err)
	}
	if keys := presenceKeys(t, dead.conn, prefix); len(keys) != 0 {
		t.Errorf("keys left: %q", keys)
	}
	if got := log.list(); len(got) != 2 {
		t.Errorf("OnExpired calls after the survivors' Leaves = %q", got)
	}
}

// TestPresenceFence pauses a node (no heartbeat) until it is taken for dead, then lets it go on:
// its old sockets stay gone (their Leaves change nothing), and what it joins from then on counts
// under a new id that the others see.
func TestPresenceFence(t *testing.T) {
	ctx := t.Context()
	paused, other, log, prefix := watchedPair(t, localRedis)
	p := paused.Presence("chat")
	if _, err := p.Join(ctx, "r", "old", nil); err != nil {
		t.Fatal(err)
	}
	oldID := paused.ID()
	paused.skipBeats.Store(true)
	waitFor(t, "the paused node reaped", func() bool { return len(log.list()) == 1 })
	if ch, err := p.Join(ctx, "r", "new", []byte("n")); err != nil || !ch.Member || !ch.Room {
		t.Fatalf("Join after the fence = %+v, %v; want the room occupied again", ch, err)
	}
	paused.skipBeats.Store(false)
	if paused.ID() == oldID {
		t.Fatal("the node kept the id it was taken for dead under")
	}
	if ch, err := p.Leave(ctx, "r", "old"); err != nil || ch != (socketio.PresenceChange{}) {
		t.Errorf("Leave of a socket reported gone = %+v, %v; want no change", ch, err)
	}
	infos, err := other.Members(ctx, "r")
	if err != nil || len(infos) != 1 || string(infos[0]) != "n" {
		t.Errorf("Members = %q, %v; want the new member", infos, err)
	}
	if ch, err := p.Leave(ctx, "r", "new"); err != nil || !ch.Member || !ch.Room {
		t.Errorf("Leave of the new member = %+v, %v", ch, err)
	}
	if got := log.list(); !slices.Equal(withoutNode(got), []string{"r old  true true"}) {
		t.Errorf("OnExpired calls = %q", got)
	}
	waitFor(t, "the old id's keys gone", func() bool { return len(presenceKeys(t, paused.conn, prefix)) == 0 })
}

// TestPresenceRedisOutage: a Leave that fails while Redis is stopped is done once Redis is back,
// and its departure reported through OnExpired; a Join that failed counted nothing.
func TestPresenceRedisOutage(t *testing.T) {
	srv := startPausable(t)
	prefix := uniquePrefix(t)
	ctx := t.Context()
	var log expiredLog
	n := presenceNodeForTest(t, srv.URL(), prefix, fastPresence)
	p := n.Presence("chat")
	log.listen("n", p)
	watcher := presenceNodeForTest(t, srv.URL(), prefix, fastPresence).Presence("chat")
	if _, err := p.Join(ctx, "r", "u", []byte("x")); err != nil {
		t.Fatal(err)
	}
	srv.pause()
	if _, err := p.Leave(ctx, "r", "u"); !errors.Is(err, socketio.ErrUnavailable) {
		t.Fatalf("Leave while Redis is stopped: %v, want ErrUnavailable", err)
	}
	waitFor(t, "Redis marked down", func() bool { return !n.conn.Ready() })
	if _, err := p.Join(ctx, "r", "v", nil); !errors.Is(err, socketio.ErrUnavailable) {
		t.Fatalf("Join while Redis is down: %v, want ErrUnavailable", err)
	}
	srv.resume()
	waitFor(t, "the owed Leave done", func() bool { return len(log.list()) == 1 })
	if got := log.list(); got[0] != "n r u x true true" {
		t.Errorf("OnExpired = %q", got)
	}
	infos, err := watcher.Members(ctx, "r")
	if err != nil || len(infos) != 0 {
		t.Errorf("Members after the outage = %q, %v; want none (the failed Join counted nothing)", infos, err)
	}
}

// presenceChildEnv runs TestPresenceChildProcess as the child of TestPresenceKilledProcess.
const presenceChildEnv = "SWITCHBOARD_PRESENCE_CHILD"

// TestPresenceChildProcess is the body of the child process TestPresenceKilledProcess kills; run
// on its own it does nothing.
func TestPresenceChildProcess(t *testing.T) {
	prefix := os.Getenv(presenceChildEnv)
	if prefix == "" {
		return
	}
	n := NewPresenceNode(dialTest(t, localRedis), PresenceOptions{Prefix: prefix, Heartbeat: fastPresence.Heartbeat, Timeout: fastPresence.Timeout})
	p := n.Presence("chat")
	for _, j := range [][2]string{{"k1", "child"}, {"k2", "child"}, {"k2", "shared"}} {
		if _, err := p.Join(t.Context(), j[0], j[1], []byte("c")); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("ready")
	select {} // until killed
}

// TestPresenceKilledProcess kills (SIGKILL) a process counting members: the survivors remove
// them within the bound and report each departure once.
func TestPresenceKilledProcess(t *testing.T) {
	if os.Getenv(presenceChildEnv) != "" {
		return
	}
	prefix := uniquePrefix(t)
	ctx := t.Context()
	var log expiredLog
	var survivors []*RedisPresence
	for i := range 2 {
		p := presenceNodeForTest(t, localRedis, prefix, fastPresence).Presence("chat")
		log.listen(fmt.Sprintf("s%d", i), p)
		survivors = append(survivors, p)
	}
	if _, err := survivors[0].Join(ctx, "k2", "shared", []byte("s")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPresenceChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), presenceChildEnv+"="+prefix)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				return
			}
		}
		ready <- fmt.Errorf("the child ended before it was ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not get ready")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	want := []string{"k1 child c true true", "k2 child c true false"}
	waitFor(t, "the killed process's members reported", func() bool { return len(log.list()) >= len(want) })
	if bound := fastPresence.Timeout + fastPresence.Heartbeat + time.Second; time.Since(killed) > bound {
		t.Errorf("reported %v after the kill, want within %v", time.Since(killed), bound)
	}
	// What is left is the survivor's: its member of k2, and its node set.
	s0 := survivors[0].node
	left := []string{prefix + ":presence-node:{" + s0.ID() + "}", prefix + ":presence:chat:{k2}:i",
		prefix + ":presence:chat:{k2}:m", prefix + ":presence:chat:{k2}:n:" + s0.ID()}
	waitFor(t, "nothing left of the killed process", func() bool {
		return slices.Equal(presenceKeys(t, s0.conn, prefix), left)
	})
	// The child's Join gave the shared member its newest info.
	if infos, err := survivors[1].Members(ctx, "k2"); err != nil || len(infos) != 1 || string(infos[0]) != "c" {
		t.Errorf("k2 members = %q, %v; want the shared member only", infos, err)
	}
	if got := log.list(); !slices.Equal(withoutNode(got), want) {
		t.Errorf("OnExpired calls = %q, want %q", got, want)
	}
}

// TestBackendPresence: the Redis backends' Presence is Redis presence, shared by their nodes;
// memory's stays in the process.
func TestBackendPresence(t *testing.T) {
	for _, name := range []string{"redis", "redis-streams"} {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Name: name, RedisURL: localRedis, Prefix: uniquePrefix(t)}
			var nodes []socketio.Presence
			for range 2 {
				b, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				p := b.Presence("chat")
				if _, ok := p.(*RedisPresence); !ok || b.Presence("chat") != p {
					t.Fatalf("Presence = %T, not the same each time", p)
				}
				nodes = append(nodes, p)
			}
			ctx := t.Context()
			if ch, err := nodes[0].Join(ctx, "r", "u", []byte("i")); err != nil || !ch.Member {
				t.Fatalf("join: %+v, %v", ch, err)
			}
			if ch, err := nodes[1].Join(ctx, "r", "u", nil); err != nil || ch.Member {
				t.Fatalf("the other node's join: %+v, %v", ch, err)
			}
			if infos, err := nodes[1].Members(ctx, "r"); err != nil || len(infos) != 1 || string(infos[0]) != "i" {
				t.Errorf("members: %q, %v", infos, err)
			}
		})
	}
}
