package server

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
)

// adminCluster is two nodes on one Redis with /admin in development mode, each with its own
// server id.
func adminCluster(t *testing.T, adapter string) (a, b *testServer) {
	t.Helper()
	rds := redistest.Start(t)
	cfg := adminTestConfig(AdminModeDevelopment)
	cfg.Adapter = adapter
	cfg.RedisURL = rds.URL()
	cfg.AdminServerID = "node-a"
	a = startServer(t, cfg)
	cfg.AdminServerID = "node-b"
	b = startServer(t, cfg)
	for _, node := range []*testServer{a, b} {
		waitFor(t, "stats to count both nodes", func() bool {
			res := get("/stats").do(t, node.URL)
			n, _ := res.body["nodes"].(float64)
			return res.status == 200 && n == 2
		})
	}
	return a, b
}

// nextEventName reads the client's next event on "/" and returns its name and arguments.
func nextEventName(t *testing.T, c *rawClient) (string, []any) {
	t.Helper()
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		rest, ok := strings.CutPrefix(msg, "42")
		if !ok || strings.HasPrefix(rest, "/") {
			continue
		}
		var data []any
		if err := json.Unmarshal([]byte(rest), &data); err != nil || len(data) == 0 {
			t.Fatalf("event %q: %v", msg, err)
		}
		name, _ := data[0].(string)
		return name, data[1:]
	}
}

// roomMembers lists the ids of the sockets in room, cluster-wide (the HTTP API of node).
func roomMembers(t *testing.T, node *testServer, room string) []string {
	t.Helper()
	res := expectStatus(t, get("/sockets?room="+room).do(t, node.URL), 200)
	var ids []string
	for _, s := range res["sockets"].([]any) {
		ids = append(ids, field(s, "id").(string))
	}
	sort.Strings(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	sort.Strings(out)
	return out
}

// An admin UI connected to node A sees node B too: B's server_stats, B's sockets in
// all_sockets (with their clientId and transport), B's socket events; a session A gave works on
// B; and the commands sent to A act on B's sockets.
func TestAdminCluster(t *testing.T) {
	for _, adapter := range []string{AdapterRedis, AdapterRedisSharded, AdapterRedisStreams} {
		t.Run(adapter, func(t *testing.T) { testAdminCluster(t, adapter) })
	}
}

func testAdminCluster(t *testing.T, adapter string) {
	a, b := adminCluster(t, adapter)
	ca := mustRawDial(t, a, "/")
	cb := mustRawDial(t, b, "/")

	admin := mustAdmin(t, a)
	session := admin.await("session", nil)[0].(string)
	all := admin.await("all_sockets", nil)[0].([]any)

	t.Run("all_sockets holds both nodes' sockets and no admin socket", func(t *testing.T) {
		got := map[string]any{}
		for _, s := range all {
			if field(s, "nsp") == AdminNamespace {
				t.Errorf("all_sockets lists an admin socket: %v", s)
			}
			got[field(s, "id").(string)] = s
		}
		for _, c := range []*rawClient{ca, cb} {
			s, ok := got[c.sid]
			if !ok {
				t.Fatalf("all_sockets lacks %s: %v", c.sid, all)
			}
			if field(s, "clientId") != c.engine[:12] || field(s, "transport") != "websocket" || field(s, "nsp") != "/" {
				t.Errorf("socket %s as %v, want clientId %s, websocket, /", c.sid, s, c.engine[:12])
			}
			rooms, _ := field(s, "rooms").([]any)
			if len(rooms) == 0 || rooms[0] != c.sid {
				t.Errorf("socket %s rooms %v, want its own id first", c.sid, rooms)
			}
			if _, ok := field(s, "handshake", "issued").(float64); !ok {
				t.Errorf("socket %s has no handshake.issued: %v", c.sid, s)
			}
		}
	})

	t.Run("server_stats from both nodes", func(t *testing.T) {
		seen := map[string]map[string]any{}
		admin.await("server_stats", func(args []any) bool {
			st := args[0].(map[string]any)
			seen[st["serverId"].(string)] = st
			return len(seen) == 2
		})
		for id, st := range seen {
			if id != "node-a" && id != "node-b" {
				t.Errorf("server_stats from %q", id)
			}
			for _, n := range st["namespaces"].([]any) {
				if field(n, "name") == AdminNamespace {
					t.Errorf("%s lists %s", id, AdminNamespace)
				}
			}
		}
	})

	t.Run("the session is in Redis for 24 h", func(t *testing.T) {
		ttl, err := a.backend.Redis().TTL(t.Context(), adminSessionPrefix+session).Result()
		if err != nil || ttl <= adminSessionTTL-time.Minute || ttl > adminSessionTTL {
			t.Fatalf("TTL of %s: %v, %v", adminSessionPrefix+session, ttl, err)
		}
	})
	t.Run("a session from A is good on B", func(t *testing.T) {
		onB, refused := adminDial(t, b, `{"sessionId":"`+session+`"}`)
		if refused != nil {
			t.Fatalf("B refused A's session: %v", refused)
		}
		if ev := onB.next(); ev.name != "config" {
			t.Fatalf("first event on B %s, want config", ev.name)
		}
		onB.close()
	})

	t.Run("B's sockets stream to the admin on A", func(t *testing.T) {
		late := mustRawDial(t, b, "/")
		admin.await("socket_connected", func(args []any) bool { return field(args[0], "id") == late.sid })
		late.close()
		admin.await("socket_disconnected", func(args []any) bool { return len(args) >= 3 && args[1] == late.sid })
	})

	// barrier makes sure c got nothing before an unfiltered emit: its next event is the
	// barrier.
	barrier := func(t *testing.T, c *rawClient, marker string) {
		t.Helper()
		admin.emit("emit", "/", nil, "barrier", marker)
		if name, args := nextEventName(t, c); name != "barrier" || args[0] != marker {
			t.Fatalf("%s got %s %v before the barrier", c.sid, name, args)
		}
	}

	t.Run("emit to a socket id on the other node", func(t *testing.T) {
		admin.emit("emit", "/", cb.sid, "fromadmin", 1, "x")
		if name, args := nextEventName(t, cb); name != "fromadmin" || len(args) < 2 || args[0] != 1.0 || args[1] != "x" {
			t.Fatalf("B's client got %s %v", name, args)
		}
		barrier(t, ca, "1")
		expectEvent(t, cb, "barrier")
	})
	t.Run("emit to everyone", func(t *testing.T) {
		admin.emit("emit", "/", "", "all", true)
		for _, c := range []*rawClient{ca, cb} {
			if name, args := nextEventName(t, c); name != "all" || args[0] != true {
				t.Fatalf("%s got %s %v", c.sid, name, args)
			}
		}
	})
	t.Run("join with a socket id filter", func(t *testing.T) {
		admin.emit("join", "/", "blue", cb.sid)
		waitFor(t, "B's socket in blue", func() bool { return slices.Equal(roomMembers(t, a, "blue"), []string{cb.sid}) })
	})
	t.Run("emit to a room", func(t *testing.T) {
		admin.emit("emit", "/", "blue", "toblue")
		if name, _ := nextEventName(t, cb); name != "toblue" {
			t.Fatalf("B's client got %s", name)
		}
		barrier(t, ca, "2")
		expectEvent(t, cb, "barrier")
	})
	t.Run("join without a filter", func(t *testing.T) {
		admin.emit("join", "/", "everyone")
		want := sortedIDs(ca.sid, cb.sid)
		waitFor(t, "both in everyone", func() bool { return slices.Equal(roomMembers(t, b, "everyone"), want) })
	})
	t.Run("leave with a room filter", func(t *testing.T) {
		admin.emit("leave", "/", "everyone", "blue")
		waitFor(t, "only A's socket in everyone", func() bool { return slices.Equal(roomMembers(t, a, "everyone"), []string{ca.sid}) })
	})
	t.Run("leave without a filter", func(t *testing.T) {
		admin.emit("leave", "/", "blue")
		admin.emit("leave", "/", "everyone", nil)
		waitFor(t, "blue and everyone empty", func() bool {
			return len(roomMembers(t, a, "blue")) == 0 && len(roomMembers(t, a, "everyone")) == 0
		})
	})
	t.Run("unknown namespaces and /admin are not acted on", func(t *testing.T) {
		admin.emit("_disconnect", "/nope", false)
		admin.emit("_disconnect", AdminNamespace, true)
		admin.emit("emit", AdminNamespace, nil, "config", "forged")
		admin.emit("join", 42, "x") // malformed: ignored
		barrier(t, ca, "3")
		expectEvent(t, cb, "barrier")
		if a.IO().Namespace("/nope") != nil {
			t.Fatal("a command created a namespace")
		}
		admin.await("server_stats", nil) // the admin socket is still connected
	})
	t.Run("_disconnect a socket of the other node, its connection kept", func(t *testing.T) {
		admin.emit("_disconnect", "/", false, cb.sid)
		for {
			msg, err := cb.read()
			if err != nil {
				t.Fatalf("waiting for the DISCONNECT: %v", err)
			}
			if msg == "41" {
				break
			}
		}
		waitFor(t, "the socket gone", func() bool { return b.IO().Namespace("/").Len() == 0 })
		if b.IO().Engine().Conn(cb.engine) == nil {
			t.Fatal("close=false closed the connection")
		}
	})
	t.Run("_disconnect with close: the connection goes", func(t *testing.T) {
		admin.emit("_disconnect", "/", true, ca.sid)
		deadline := time.Now().Add(waitTimeout)
		for {
			if _, err := ca.read(); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the connection stayed open")
			}
		}
		waitFor(t, "the connection gone", func() bool { return a.IO().Engine().Conn(ca.engine) == nil })
	})
}
