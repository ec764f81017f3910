package server

import (
	"context"
	"encoding/json"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// landingText fetches the landing page and returns it unescaped, as a reader sees it.
func landingText(t *testing.T, url string) string {
	t.Helper()
	res, body := fetch(t, "GET", url+"/")
	if res.StatusCode != 200 || !strings.Contains(body, landingMarker) {
		t.Fatalf("GET / = %d %q, want the landing page", res.StatusCode, body)
	}
	return html.UnescapeString(body)
}

func TestLandingPage(t *testing.T) {
	tests := []struct {
		name     string
		config   func(*Config)
		demo     bool     // a built demo in --web-dir
		want     []string // in the page, unescaped
		wantNot  []string
		snippetJ bool // the snippet sends auth.token
	}{
		{
			name: "defaults, no demo built",
			want: []string{
				`<dd id="version">` + Version + `</dd>`,
				`<dd id="adapter">memory</dd>`,
				`<code>/</code>, <code>/chat</code>`,
				`<dd id="connections">0 on this node</dd>`,
				`none (any client may connect)`,
				`href="/api/v1/openapi.json"`, `href="/metrics"`,
				`off until <code>--api-keys</code> is set`,
				`the demo page is not built`,
				`the admin UI (<code>@socket.io/admin-ui</code>) is not installed`,
			},
			wantNot: []string{`href="/demo/"`, `href="/admin-ui/"`},
		},
		{
			name: "demo built",
			demo: true,
			want: []string{`<a href="/demo/">the demo page</a>`, `<dd id="adapter">memory</dd>`, `io("URL/chat")`},
		},
		{
			name:     "JWT and API keys",
			config:   func(c *Config) { c.JWTSecret = testSecret; c.APIKeys = []string{testAPIKey} },
			want:     []string{`a JWT in <code>auth.token</code>`, `Authorization: Bearer &lt;api key&gt;`, `io("URL/chat", { auth: { token } })`},
			wantNot:  []string{testSecret, testAPIKey, `off until`},
			snippetJ: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no client-js/dist nor admin UI from the repository
			cfg := testConfig()
			if tt.config != nil {
				tt.config(&cfg)
			}
			if tt.demo {
				cfg.WebDir = t.TempDir()
				writePage(t, cfg.WebDir)
			}
			ts := startServer(t, cfg)
			page := landingText(t, ts.URL)
			// The Go client sends the listener's address as Host, so that is the snippet's URL.
			snippet := "import { io } from \"socket.io-client\";"
			rootLine := `const root = io("` + ts.URL + `/"`
			chatLine := `const chat = io("` + ts.URL + `/chat"`
			for _, s := range []string{snippet, rootLine, chatLine, `root.emit("subscribe", { rooms: ["news"] }`, `chat.emit("chat:join", { room: "lobby" }`} {
				if !strings.Contains(page, s) {
					t.Errorf("the snippet lacks %q:\n%s", s, page)
				}
			}
			if got := strings.Contains(page, "auth: { token }"); got != tt.snippetJ {
				t.Errorf("snippet sends auth.token = %v, want %v", got, tt.snippetJ)
			}
			for _, s := range tt.want {
				s = strings.ReplaceAll(s, "URL", ts.URL)
				if !strings.Contains(page, html.UnescapeString(s)) {
					t.Errorf("page lacks %q:\n%s", s, page)
				}
			}
			for _, s := range tt.wantNot {
				if strings.Contains(page, s) {
					t.Errorf("page holds %q:\n%s", s, page)
				}
			}
		})
	}
}

func TestLandingConnections(t *testing.T) {
	ts := startServer(t, testConfig())
	if page := landingText(t, ts.URL); !strings.Contains(page, "0 on this node") {
		t.Fatalf("before any client: %s", page)
	}
	if res, body := fetch(t, "GET", ts.URL+"/socket.io/?EIO=4&transport=polling"); res.StatusCode != 200 {
		t.Fatalf("handshake = %d %q", res.StatusCode, body)
	}
	waitFor(t, "the page to count the Engine.IO connection", func() bool {
		return strings.Contains(landingText(t, ts.URL), "1 on this node")
	})
}

func TestLandingEscapes(t *testing.T) {
	l := Landing{
		Version:     "<b>v</b>",
		Adapter:     `"><script>alert(1)</script>`,
		Namespaces:  []string{"/", "/x<i>"},
		Connections: func() int { return 7 },
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = `evil"host'&<x>`
	w := httptest.NewRecorder()
	serveLanding(w, r, l, "")
	body := w.Body.String()
	for _, raw := range []string{"<b>v</b>", "<script>alert(1)</script>", "<i>", `evil"host`, "<x>"} {
		if strings.Contains(body, raw) {
			t.Errorf("page holds %q unescaped", raw)
		}
	}
	for _, escaped := range []string{"&lt;b&gt;v&lt;/b&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;", "/x&lt;i&gt;", "evil\\&#34;host&#39;&amp;&lt;x&gt;", "7 on this node"} {
		if !strings.Contains(body, escaped) {
			t.Errorf("page lacks %q:\n%s", escaped, body)
		}
	}
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("answer = %d, Cache-Control %q", w.Code, w.Header().Get("Cache-Control"))
	}
}

func TestClientSnippet(t *testing.T) {
	tests := []struct {
		name string
		nsps []string
		jwt  bool
		want []string
	}{
		{name: "anonymous", nsps: []string{"/", "/chat"}, want: []string{`const root = io("http://h:1/");`, `const chat = io("http://h:1/chat");`}},
		{name: "JWT", nsps: []string{"/", "/chat"}, jwt: true, want: []string{`const token = "`, `io("http://h:1/", { auth: { token } });`, `io("http://h:1/chat", { auth: { token } });`}},
		{name: "a namespace that is no identifier", nsps: []string{"/9-lives"}, want: []string{`const root9_lives = io("http://h:1/9-lives");`, `root9_lives.on("connect"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clientSnippet("http://h:1", tt.nsps, tt.jwt)
			for _, s := range tt.want {
				if !strings.Contains(got, s) {
					t.Errorf("snippet lacks %q:\n%s", s, got)
				}
			}
			if !tt.jwt && strings.Contains(got, "token") {
				t.Errorf("anonymous snippet mentions a token:\n%s", got)
			}
		})
	}
}

func TestAdminUILink(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	if dir := AdminUIDir(); dir != "" {
		t.Fatalf("AdminUIDir() = %q before the package is installed", dir)
	}
	dist := filepath.Join(wd, "client-js", "node_modules", "@socket.io", "admin-ui", "ui", "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if dir := AdminUIDir(); dir != "" {
		t.Fatalf("AdminUIDir() = %q for a dist without index.html", dir)
	}
	if err := os.WriteFile(filepath.Join(dist, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := AdminUIDir(); dir == "" {
		t.Fatal("AdminUIDir() is empty with the package installed")
	}
	ts := startServer(t, testConfig())
	if page := landingText(t, ts.URL); !strings.Contains(page, `<a href="/admin-ui/">the admin UI</a>`) {
		t.Fatalf("no link to the installed admin UI:\n%s", page)
	}
}

func TestListenURL(t *testing.T) {
	tests := []struct {
		name, addr, want string
	}{
		{name: "every IPv4 interface", addr: "0.0.0.0:3000", want: "http://localhost:3000/"},
		{name: "every interface", addr: "[::]:3000", want: "http://localhost:3000/"},
		{name: "loopback", addr: "127.0.0.1:4100", want: "http://127.0.0.1:4100/"},
		{name: "IPv6 loopback", addr: "[::1]:3000", want: "http://[::1]:3000/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, err := net.ResolveTCPAddr("tcp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := listenURL(addr); got != tt.want {
				t.Fatalf("listenURL(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

// lineWriter hands every log line to a channel; zerolog writes one line per Write.
type lineWriter chan []byte

func (w lineWriter) Write(p []byte) (int, error) {
	select {
	case w <- append([]byte(nil), p...):
	default: // a test that stopped reading does not block the server
	}
	return len(p), nil
}

func TestListeningLogURL(t *testing.T) {
	lines := make(lineWriter, 64)
	cfg := testConfig()
	srv, err := New(cfg, zerolog.New(lines).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	want := "http://" + ln.Addr().String() + "/"
	timeout := time.After(waitTimeout)
	for {
		select {
		case line := <-lines:
			var entry struct{ Message, URL string }
			if err := json.Unmarshal(line, &entry); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			if entry.Message != "listening" {
				continue
			}
			if entry.URL != want {
				t.Fatalf("listening line's url = %q, want %q (%s)", entry.URL, want, line)
			}
			if res, body := fetch(t, "GET", entry.URL); res.StatusCode != http.StatusOK || !strings.Contains(body, landingMarker) {
				t.Fatalf("GET %s = %d, want the landing page", entry.URL, res.StatusCode)
			}
			return
		case <-timeout:
			t.Fatal("no listening line logged")
		}
	}
}
