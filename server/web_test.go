package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

const pageMarker = "<title>switchboard test page</title>"

// writePage writes a small built page (index.html, a hashed asset, an empty folder) into dir.
func writePage(t *testing.T, dir string) {
	t.Helper()
	for name, body := range map[string]string{
		"index.html":           "<!doctype html>" + pageMarker,
		"assets/main-abc12.js": "console.log('hi')",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// noRedirect returns redirects as answers instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetch(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// landingMarker is in the landing page (landing/index.html) and nowhere else.
const landingMarker = "<title>Switchboard "

func TestWebPage(t *testing.T) {
	dir := t.TempDir()
	writePage(t, dir)
	cfg := testConfig()
	cfg.WebDir = dir
	ts := startServer(t, cfg)

	tests := []struct {
		name, method, path string
		status             int
		page               bool   // the answer is the demo's index.html
		landing            bool   // the answer is the landing page
		contains           string // when set, the body holds it
		cache              string // when set, the Cache-Control header
		location           string // when set, the Location header
	}{
		{name: "landing page at /", method: "GET", path: "/", status: 200, landing: true, contains: `href="/demo/"`, cache: "no-store"},
		{name: "HEAD /", method: "HEAD", path: "/", status: 200},
		{name: "demo at /demo/", method: "GET", path: "/demo/", status: 200, page: true, cache: "no-cache"},
		{name: "HEAD /demo/", method: "HEAD", path: "/demo/", status: 200},
		{name: "/demo redirects to /demo/", method: "GET", path: "/demo", status: http.StatusMovedPermanently, location: "/demo/"},
		{name: "hashed asset at the root, where Vite links it", method: "GET", path: "/assets/main-abc12.js", status: 200, contains: "console.log", cache: "public, max-age=31536000, immutable"},
		{name: "hashed asset under /demo/", method: "GET", path: "/demo/assets/main-abc12.js", status: 200, contains: "console.log", cache: "public, max-age=31536000, immutable"},
		{name: "index.html redirects to /", method: "GET", path: "/index.html", status: http.StatusMovedPermanently, location: "./"},
		{name: "demo's index.html redirects to /demo/", method: "GET", path: "/demo/index.html", status: http.StatusMovedPermanently, location: "./"},
		{name: "missing file", method: "GET", path: "/nope.js", status: 404},
		{name: "missing file under /demo/", method: "GET", path: "/demo/nope.js", status: 404},
		{name: "no directory listing", method: "GET", path: "/assets/", status: 404},
		{name: "empty directory", method: "GET", path: "/empty", status: 404},
		{name: "no escape from the directory", method: "GET", path: "/../../etc/passwd", status: 404},
		{name: "no escape from /demo/", method: "GET", path: "/demo/../../etc/passwd", status: 404},
		{name: "POST is not served", method: "POST", path: "/", status: 404},
		{name: "POST /demo/ is not served", method: "POST", path: "/demo/", status: 404},
		{name: "admin UI path is not the demo's", method: "GET", path: "/admin-ui/", status: 404},
		{name: "healthz is not shadowed", method: "GET", path: "/healthz", status: 200, contains: `"status":"ok"`},
		{name: "readyz is not shadowed", method: "GET", path: "/readyz", status: 200, contains: `"status":"ready"`},
		{name: "socket.io handshake is not shadowed", method: "GET", path: "/socket.io/?EIO=4&transport=polling", status: 200, contains: `"sid"`},
		{name: "unknown API route is not the page", method: "GET", path: "/api/v1/nope", status: 404},
		{name: "unknown socket.io path is not the page", method: "GET", path: "/socket.io/x/index.html", status: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := fetch(t, tt.method, ts.URL+tt.path)
			if tt.status != -1 && res.StatusCode != tt.status {
				t.Fatalf("%s %s = %d, want %d (%q)", tt.method, tt.path, res.StatusCode, tt.status, body)
			}
			if got := strings.Contains(body, pageMarker); got != tt.page {
				t.Fatalf("%s %s: demo served = %v, want %v (%q)", tt.method, tt.path, got, tt.page, body)
			}
			if got := strings.Contains(body, landingMarker); got != tt.landing {
				t.Fatalf("%s %s: landing page served = %v, want %v (%q)", tt.method, tt.path, got, tt.landing, body)
			}
			if (tt.page || tt.landing) && !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("Content-Type = %q, want text/html", res.Header.Get("Content-Type"))
			}
			if tt.contains != "" && !strings.Contains(body, tt.contains) {
				t.Fatalf("%s %s: body %q does not hold %q", tt.method, tt.path, body, tt.contains)
			}
			if tt.cache != "" && res.Header.Get("Cache-Control") != tt.cache {
				t.Fatalf("Cache-Control = %q, want %q", res.Header.Get("Cache-Control"), tt.cache)
			}
			if tt.location != "" && res.Header.Get("Location") != tt.location {
				t.Fatalf("Location = %q, want %q", res.Header.Get("Location"), tt.location)
			}
		})
	}
}

func TestReservedPaths(t *testing.T) {
	// Paths a later route may own (/metrics, the API) are never answered by the page, even while
	// no route claims them.
	for _, path := range []string{"/metrics", "/api/v1/emit", "/socket.io/", "/healthz", "/readyz", "/admin-ui/"} {
		if !reserved(path) {
			t.Errorf("reserved(%q) = false", path)
		}
	}
	for _, path := range []string{"/", "/assets/x.js", "/apis", "/metricsx", "/demo/"} {
		if reserved(path) {
			t.Errorf("reserved(%q) = true", path)
		}
	}
}

func TestWebDirDefault(t *testing.T) {
	t.Run("served from client-js/dist when built", func(t *testing.T) {
		wd := t.TempDir()
		writePage(t, filepath.Join(wd, DefaultWebDir))
		t.Chdir(wd)
		ts := startServer(t, testConfig())
		if res, body := fetch(t, "GET", ts.URL+DemoPath); res.StatusCode != 200 || !strings.Contains(body, pageMarker) {
			t.Fatalf("GET %s = %d %q, want the demo", DemoPath, res.StatusCode, body)
		}
		if res, body := fetch(t, "GET", ts.URL+"/"); res.StatusCode != 200 || !strings.Contains(body, landingMarker) || !strings.Contains(body, `href="/demo/"`) {
			t.Fatalf("GET / = %d %q, want the landing page linking to the demo", res.StatusCode, body)
		}
	})
	t.Run("not served when not built", func(t *testing.T) {
		t.Chdir(t.TempDir())
		ts := startServer(t, testConfig())
		if res, body := fetch(t, "GET", ts.URL+DemoPath); res.StatusCode != 404 {
			t.Fatalf("GET %s = %d %q, want 404", DemoPath, res.StatusCode, body)
		}
		res, body := fetch(t, "GET", ts.URL+"/")
		if res.StatusCode != 200 || !strings.Contains(body, landingMarker) {
			t.Fatalf("GET / = %d %q, want the landing page", res.StatusCode, body)
		}
		if strings.Contains(body, `href="/demo/"`) || !strings.Contains(body, "make web") {
			t.Fatalf("GET / links to a demo that is not built: %q", body)
		}
	})
}

func TestWebDirMissing(t *testing.T) {
	for name, dir := range map[string]string{
		"no such directory": filepath.Join(t.TempDir(), "nope"),
		"no index.html":     t.TempDir(),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.WebDir = dir
			_, err := New(cfg, zerolog.Nop())
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Setting != "--web-dir" {
				t.Fatalf("New = %v, want a ConfigError naming --web-dir", err)
			}
		})
	}
}
