package adapters

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedisCluster runs a Redis Cluster of three masters (redis-server --cluster-enabled yes,
// then redis-cli --cluster create) on free loopback ports, stopped when the test ends, and
// returns its redis+cluster:// URL.
func startRedisCluster(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (make setup installs it): %v", bin, err)
		}
	}
	dir := t.TempDir()
	var addrs []string
	for len(addrs) < 3 {
		port := 20000 + rand.IntN(10000)
		if !portFree(port) || !portFree(port+10000) {
			continue
		}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
			"--dir", dir, "--save", "", "--appendonly", "no", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		waitFor(t, "redis-server on "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				_ = c.Close()
			}
			return err == nil
		})
		addrs = append(addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		waitFor(t, "the cluster ok on "+addr, func() bool {
			info, err := c.ClusterInfo(context.Background()).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// TestRedisClusterPresenceAndStreams runs presence and the streams adapter on a Redis Cluster
// of three masters: a room's keys in one slot (each script in one slot), rooms spread over the
// masters, a dead node reaped; broadcasts, requests and recovery across two nodes.
func TestRedisClusterPresenceAndStreams(t *testing.T) {
	url := startRedisCluster(t)
	t.Run("presence", func(t *testing.T) {
		ctx := t.Context()
		dead, live, log, _ := watchedPair(t, url)
		d := dead.Presence("chat")
		masters := map[string]bool{}
		cl := live.node.conn.Client().(*redis.ClusterClient)
		for i := range 12 {
			room := fmt.Sprintf("room-%d", i)
			for _, p := range []*RedisPresence{d, live, d} {
				if _, err := p.Join(ctx, room, "m-"+room, nil); err != nil {
					t.Fatal(err)
				}
			}
			ch, err := d.Join(ctx, room, "only-dead", nil)
			if err != nil || !ch.Member || ch.Room {
				t.Fatalf("join %s: %+v, %v", room, ch, err)
			}
			m, err := cl.MasterForKey(ctx, live.keys(room, "")[0])
			if err != nil {
				t.Fatal(err)
			}
			masters[m.Options().Addr] = true
		}
		if len(masters) < 2 {
			t.Errorf("the rooms' keys sit on %d masters, want them spread", len(masters))
		}
		dead.halt()
		waitFor(t, "the dead node's members reported", func() bool { return len(log.list()) == 12 })
		for i := range 12 {
			room := fmt.Sprintf("room-%d", i)
			infos, err := live.Members(ctx, room)
			if err != nil || len(infos) != 1 {
				t.Errorf("%s: %d members, %v; want the live node's one", room, len(infos), err)
			}
			if ch, err := live.Leave(ctx, room, "m-"+room); err != nil || !ch.Member || !ch.Room {
				t.Errorf("%s: last leave %+v, %v", room, ch, err)
			}
		}
		for _, e := range log.list() {
			if !strings.Contains(e, " only-dead  true false") {
				t.Errorf("unexpected OnExpired %q", e)
			}
		}
	})
	t.Run("streams", func(t *testing.T) {
		a, b := twoStreamsNodes(t, url, time.Minute, nil)
		ca := dial(t, a.url, "")
		cb := dial(t, b.url, "")
		a.socket(ca.sid).Join("r")
		if err := b.nsp.To("r").Emit("e", 1); err != nil {
			t.Fatal(err)
		}
		ca.waitEvent("e", 1)
		got, err := a.nsp.All().FetchSockets(t.Context())
		if err != nil || len(got) != 2 {
			t.Errorf("fetch: %d, %v", len(got), err)
		}
		offset := ca.dropKept(t, a, "e")
		if err := a.nsp.To("r").Emit("missed", 2); err != nil {
			t.Fatal(err)
		}
		r := dialAuth(t, b.url, "", map[string]any{"pid": ca.pid, "offset": offset})
		if r.sid != ca.sid {
			t.Fatalf("not recovered on the cluster")
		}
		r.waitEvent("missed", 1)
		marker(t, a, 1, cb, r)
	})
}
