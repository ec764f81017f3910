package server

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestAdminAuth(t *testing.T) {
	ts := startServer(t, adminTestConfig(AdminModeProduction))
	var session string
	t.Run("right credentials: a session after CONNECT, then config", func(t *testing.T) {
		c := mustAdmin(t, ts)
		ev := c.next()
		if ev.name != "session" || len(ev.args) != 1 {
			t.Fatalf("first event %s %v, want session <id>", ev.name, ev.args)
		}
		session, _ = ev.args[0].(string)
		if !sessionIDPattern.MatchString(session) {
			t.Fatalf("session id %q is not 16 hex characters", session)
		}
		if ev := c.next(); ev.name != "config" {
			t.Fatalf("then %s %v, want config", ev.name, ev.args)
		}
	})
	refused := []struct{ name, auth string }{
		{"wrong password", adminLogin("admin", "wrong")},
		{"wrong user", adminLogin("root", adminPassword)},
		{"empty form", adminLogin("", "")},
		{"no auth", `{}`},
		{"password not a string", `{"username":"admin","password":1}`},
		{"unknown session", `{"sessionId":"0123456789abcdef"}`},
		{"null session (the UI's first load)", `{"sessionId":null}`},
		{"session not a string", `{"sessionId":12}`},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			_, e := adminDial(t, ts, tc.auth)
			if e == nil {
				t.Fatal("connected")
			}
			if len(e) != 1 || e["message"] != "invalid credentials" {
				t.Fatalf("CONNECT_ERROR %v, want exactly {message: invalid credentials}", e)
			}
		})
	}
	t.Run("session reused: no new session", func(t *testing.T) {
		c, e := adminDial(t, ts, `{"sessionId":"`+session+`"}`)
		if e != nil {
			t.Fatalf("session %s refused: %v", session, e)
		}
		if ev := c.next(); ev.name != "config" {
			t.Fatalf("first event %s %v, want config (no new session)", ev.name, ev.args)
		}
	})
	t.Run("a bad session with the right credentials", func(t *testing.T) {
		c, e := adminDial(t, ts, `{"sessionId":"ffffffffffffffff","username":"admin","password":"`+adminPassword+`"}`)
		if e != nil {
			t.Fatalf("refused: %v", e)
		}
		if ev := c.next(); ev.name != "session" {
			t.Fatalf("first event %s, want a new session", ev.name)
		}
	})
}

func TestAdminConfig(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{AdminModeProduction, []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS"}},
		{AdminModeDevelopment, []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ts := startServer(t, adminTestConfig(tc.mode))
			c := mustAdmin(t, ts)
			args := c.await("config", nil)
			cfg, _ := args[0].(map[string]any)
			var got []string
			for _, f := range cfg["supportedFeatures"].([]any) {
				got = append(got, f.(string))
			}
			if !slices.Equal(got, tc.want) || len(cfg) != 1 {
				t.Fatalf("config %v, want supportedFeatures %v only", cfg, tc.want)
			}
			all := false
			for i := 0; i < 2 && !all; i++ { // all_sockets follows config, or nothing does
				ev := c.next()
				all = ev.name == "all_sockets"
			}
			if all != (tc.mode == AdminModeDevelopment) {
				t.Fatalf("all_sockets sent: %v in %s mode", all, tc.mode)
			}
		})
	}
}

func TestAdminOffWithoutHash(t *testing.T) {
	ts := startServer(t, apiConfig())
	_, e := adminDial(t, ts, adminLogin("admin", adminPassword))
	if e == nil || e["message"] != "Invalid namespace" {
		t.Fatalf("CONNECT /admin without --admin-password-hash: %v, want Invalid namespace", e)
	}
}

func TestAdminConfigFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		setting string // "" = accepted
	}{
		{"server id with a hash", []string{"--admin-password-hash", adminTestHash(), "--admin-server-id", "eu-1"}, ""},
		{"server id without a hash", []string{"--admin-server-id", "eu-1"}, "admin-server-id"},
		{"development without a hash", []string{"--admin-mode", "development"}, "admin-mode"},
		{"not a bcrypt hash", []string{"--admin-password-hash", "secret"}, "admin-password-hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(tc.args, func(string) string { return "" }, io.Discard)
			if tc.setting == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.AdminServerID != "eu-1" {
					t.Fatalf("AdminServerID %q", cfg.AdminServerID)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.setting) {
				t.Fatalf("error %v, want one about --%s", err, tc.setting)
			}
		})
	}
}

func TestAdminStatsShape(t *testing.T) {
	cfg := adminTestConfig(AdminModeProduction)
	cfg.AdminServerID = "solo"
	ts := startServer(t, cfg)
	client := mustRawDial(t, ts, "/")
	_ = client
	c := mustAdmin(t, ts)
	args := c.await("server_stats", func(args []any) bool {
		// the first stats may predate the connections
		n, _ := field(args[0], "clientsCount").(float64)
		return n >= 2
	})
	st := args[0].(map[string]any)
	for _, k := range []string{"serverId", "hostname", "pid", "uptime", "clientsCount", "pollingClientsCount", "aggregatedEvents", "namespaces"} {
		if _, ok := st[k]; !ok {
			t.Errorf("server_stats lacks %s: %v", k, st)
		}
	}
	if st["serverId"] != "solo" {
		t.Errorf("serverId %v", st["serverId"])
	}
	if up, _ := st["uptime"].(float64); up <= 0 || up > 600 {
		t.Errorf("uptime %v s", st["uptime"])
	}
	if st["clientsCount"] != 2.0 || st["pollingClientsCount"] != 0.0 {
		t.Errorf("clientsCount %v pollingClientsCount %v, want 2 websocket connections", st["clientsCount"], st["pollingClientsCount"])
	}
	names := map[string]float64{}
	for _, n := range st["namespaces"].([]any) {
		names[field(n, "name").(string)] = field(n, "socketsCount").(float64)
	}
	if _, ok := names[AdminNamespace]; ok {
		t.Errorf("server_stats lists %s: %v", AdminNamespace, names)
	}
	if names["/"] != 1 || len(names) != len(ts.nsps) {
		t.Errorf("namespaces %v, want the product's with / holding 1 socket", names)
	}
	// The aggregated events count what happened since the previous stats: the connections are
	// in some server_stats' rawConnection, and packets went both ways.
	seen := map[string]float64{}
	add := func(st any) {
		for _, e := range field(st, "aggregatedEvents").([]any) {
			ts, _ := field(e, "timestamp").(float64)
			if ts <= 0 || int64(ts)%1000 != 0 {
				t.Errorf("aggregated event timestamp %v is not a whole second in ms", ts)
			}
			seen[field(e, "type").(string)] += field(e, "count").(float64)
		}
	}
	add(st)
	client.close()
	args = c.await("server_stats", func(args []any) bool {
		add(args[0])
		return seen["rawDisconnection"] > 0
	})
	if seen["packetsIn"] == 0 || seen["bytesOut"] == 0 || seen["packetsOut"] == 0 || seen["bytesIn"] == 0 {
		t.Errorf("aggregated events %v lack traffic", seen)
	}
	for _, e := range field(args[0], "aggregatedEvents").([]any) {
		if field(e, "type") == "rawDisconnection" && field(e, "subType") == nil {
			t.Errorf("rawDisconnection without subType: %v", e)
		}
	}
}

// An admin UI's connection is not a product connection, and /admin is in no product list: the
// HTTP API, /api/v1/stats, the landing page, the metrics.
func TestAdminHiddenFromTheProduct(t *testing.T) {
	ts := startServer(t, adminTestConfig(AdminModeDevelopment))
	mustRawDial(t, ts, "/")
	c := mustAdmin(t, ts)
	c.emit("join", "/", "seen", nil) // admin activity that would show in per-namespace metrics
	waitFor(t, "the join", func() bool { return ts.IO().Namespace("/").Local().RoomSize("seen") == 1 })

	stats := expectStatus(t, get("/stats").do(t, ts.URL), 200)
	if _, ok := field(stats, "namespaces").(map[string]any)[AdminNamespace]; ok {
		t.Errorf("/api/v1/stats lists %s: %v", AdminNamespace, stats)
	}
	if stats["connections"] != 1.0 {
		t.Errorf("/api/v1/stats connections %v, want 1 (the admin socket is not counted)", stats["connections"])
	}
	for _, call := range []apiCall{
		get("/sockets?namespace=/admin"),
		post("/emit", `{"namespace":"/admin","event":"config","data":1}`),
		post("/sockets/disconnect", `{"namespace":"/admin"}`),
		post("/sockets/join", `{"namespace":"/admin","join":["x"]}`),
	} {
		if res := call.do(t, ts.URL); res.status != http.StatusBadRequest {
			t.Errorf("%s %s: %d %s, want 400 (not a namespace)", call.method, call.path, res.status, res.raw)
		}
	}

	res, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(page), `"`+AdminNamespace+`"`) || strings.Contains(string(page), "/admin\"") {
		t.Errorf("the landing page names %s", AdminNamespace)
	}
	if got := ts.productConnections(); got != 1 || ts.IO().Connections() != 2 {
		t.Errorf("landing connections %d (engine %d), want 1 of 2", got, ts.IO().Connections())
	}

	res, err = http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(metrics), `namespace="/admin"`) {
		t.Errorf("/metrics has /admin series:\n%s", grepLines(string(metrics), "/admin"))
	}
	if !strings.Contains(string(metrics), `switchboard_sockets_connected{namespace="/",transport="websocket"} 1`) {
		t.Errorf("/metrics does not count the product socket:\n%s", grepLines(string(metrics), "sockets_connected"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAdminSessionsInMemory(t *testing.T) {
	m := newMemoryAdminSessions(time.Hour, 3)
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := m.save(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]bool{"a": false, "b": true, "c": true, "d": true, "e": false} {
		if got, _ := m.exists(ctx, id); got != want {
			t.Errorf("exists(%s) = %v, want %v (bounded to 3, the oldest goes)", id, got, want)
		}
	}
	expired := newMemoryAdminSessions(-time.Second, 3)
	_ = expired.save(ctx, "x")
	if got, _ := expired.exists(ctx, "x"); got {
		t.Error("an expired session is accepted")
	}
}
