package server

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// adminPassword is the admin UI password of these tests; adminTestHash its bcrypt hash at the
// lowest cost (a login costs a millisecond).
const adminPassword = "correct horse"

var adminTestHash = sync.OnceValue(func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
})

// adminTestConfig is apiConfig with /admin in mode.
func adminTestConfig(mode string) Config {
	cfg := apiConfig()
	cfg.AdminPasswordHash = adminTestHash()
	cfg.AdminMode = mode
	return cfg
}

// adminLogin is the auth payload the stock UI sends from its form.
func adminLogin(user, password string) string {
	b, _ := json.Marshal(map[string]any{"username": user, "password": password})
	return string(b)
}

// adminConn is a raw client connected (or refused) on /admin.
type adminConn struct {
	*rawClient
	t *testing.T
}

// adminDial opens a connection and sends CONNECT /admin with the JSON auth; it returns the
// client and the CONNECT_ERROR's payload when refused (nil when connected).
func adminDial(t *testing.T, ts *testServer, auth string) (*adminConn, map[string]any) {
	t.Helper()
	c := mustRawDial(t, ts, "")
	if err := c.write("40" + AdminNamespace + "," + auth); err != nil {
		t.Fatal(err)
	}
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for the CONNECT answer: %v", err)
		}
		if rest, ok := strings.CutPrefix(msg, "40"+AdminNamespace+","); ok {
			var answer map[string]any
			if err := json.Unmarshal([]byte(rest), &answer); err != nil {
				t.Fatalf("CONNECT answer %q: %v", msg, err)
			}
			c.sid, _ = answer["sid"].(string)
			return &adminConn{rawClient: c, t: t}, nil
		}
		if rest, ok := strings.CutPrefix(msg, "44"+AdminNamespace+","); ok {
			var e map[string]any
			if err := json.Unmarshal([]byte(rest), &e); err != nil {
				t.Fatalf("CONNECT_ERROR %q: %v", msg, err)
			}
			return &adminConn{rawClient: c, t: t}, e
		}
		t.Fatalf("before the CONNECT answer: %q", msg)
	}
}

// mustAdmin connects to /admin with the right credentials.
func mustAdmin(t *testing.T, ts *testServer) *adminConn {
	t.Helper()
	c, refused := adminDial(t, ts, adminLogin("admin", adminPassword))
	if refused != nil {
		t.Fatalf("admin login refused: %v", refused)
	}
	return c
}

// adminMsg is one event the admin socket received.
type adminMsg struct {
	name string
	args []any
}

// next reads the admin socket's next event.
func (c *adminConn) next() adminMsg {
	c.t.Helper()
	for {
		msg, err := c.read()
		if err != nil {
			c.t.Fatalf("reading the admin socket: %v", err)
		}
		rest, ok := strings.CutPrefix(msg, "42"+AdminNamespace+",")
		if !ok {
			continue
		}
		var data []any
		if err := json.Unmarshal([]byte(rest), &data); err != nil || len(data) == 0 {
			c.t.Fatalf("admin event %q: %v", msg, err)
		}
		name, _ := data[0].(string)
		return adminMsg{name, data[1:]}
	}
}

// await reads events until one named name for which match (nil: any) holds, and returns its
// arguments; the others are skipped. It fails after waitTimeout.
func (c *adminConn) await(name string, match func(args []any) bool) []any {
	c.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		ev := c.next()
		if ev.name == name && (match == nil || match(ev.args)) {
			return ev.args
		}
	}
	c.t.Fatalf("no matching %s within %s", name, waitTimeout)
	return nil
}

// emit sends an event of the admin protocol with JSON arguments.
func (c *adminConn) emit(args ...any) {
	c.t.Helper()
	b, err := json.Marshal(args)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.write("42" + AdminNamespace + "," + string(b)); err != nil {
		c.t.Fatal(err)
	}
}

// expectEvent reads client messages until an event named name arrives on the root namespace
// and returns its arguments.
func expectEvent(t *testing.T, c *rawClient, name string) []any {
	t.Helper()
	for {
		msg, err := c.read()
		if err != nil {
			t.Fatalf("waiting for %s: %v", name, err)
		}
		rest, ok := strings.CutPrefix(msg, "42")
		if !ok || strings.HasPrefix(rest, "/") {
			continue
		}
		var data []any
		if err := json.Unmarshal([]byte(rest), &data); err != nil || len(data) == 0 {
			t.Fatalf("event %q: %v", msg, err)
		}
		if data[0] == name {
			return data[1:]
		}
	}
}

// field digs into a decoded JSON value along keys.
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
