package server

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeAdminUI installs a stand-in for @socket.io/admin-ui's ui/dist under a fresh working
// directory, as pnpm lays it out.
func fakeAdminUI(t *testing.T) string {
	t.Helper()
	wd := t.TempDir()
	t.Chdir(wd)
	dist := filepath.Join(wd, "client-js", "node_modules", "@socket.io", "admin-ui", "ui", "dist")
	files := map[string]string{
		"index.html":         `<!DOCTYPE html><html><head><title>Socket.IO Admin UI</title><link href="css/app.1.css" rel="stylesheet"></head><body><div id="app"></div><script src="js/app.1.js"></script></body></html>`,
		"css/app.1.css":      "body{}",
		"js/app.1.js":        "console.log('ui')",
		"favicon.png":        "png",
		"img/logo.2.svg":     "<svg/>",
		"js/nested/deep.txt": "deep",
	}
	for name, body := range files {
		p := filepath.Join(dist, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dist
}

func TestAdminUIServed(t *testing.T) {
	fakeAdminUI(t)
	ts := startServer(t, adminTestConfig(AdminModeProduction))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cases := []struct {
		name, method, path string
		status             int
		location           string
		contains           string
		cache              string
	}{
		{name: "the bare path redirects with its slash", method: "GET", path: "/admin-ui", status: 301, location: "/admin-ui/"},
		{name: "the query survives the redirect", method: "GET", path: "/admin-ui?x=1", status: 301, location: "/admin-ui/?x=1"},
		{name: "index with the prefill script", method: "GET", path: "/admin-ui/", status: 200, contains: `<script src="switchboard-prefill.js"></script></head>`, cache: "no-cache"},
		{name: "index.html is the same page", method: "GET", path: "/admin-ui/index.html", status: 200, contains: `switchboard-prefill.js`},
		{name: "HEAD of the index", method: "HEAD", path: "/admin-ui/", status: 200},
		{name: "the prefill script", method: "GET", path: "/admin-ui/switchboard-prefill.js", status: 200, contains: "window.location.origin"},
		{name: "a hashed asset", method: "GET", path: "/admin-ui/js/app.1.js", status: 200, contains: "console.log", cache: "public, max-age=31536000, immutable"},
		{name: "the favicon", method: "GET", path: "/admin-ui/favicon.png", status: 200, cache: "no-cache"},
		{name: "a missing file", method: "GET", path: "/admin-ui/js/nope.js", status: 404},
		{name: "no directory listing", method: "GET", path: "/admin-ui/js/", status: 404},
		{name: "no escape from the directory", method: "GET", path: "/admin-ui/../../../etc/passwd", status: 404},
		{name: "POST is refused", method: "POST", path: "/admin-ui/", status: 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s = %d, want %d (%s)", tc.method, tc.path, res.StatusCode, tc.status, body)
			}
			if tc.location != "" && res.Header.Get("Location") != tc.location {
				t.Fatalf("Location %q, want %q", res.Header.Get("Location"), tc.location)
			}
			if tc.contains != "" && !strings.Contains(string(body), tc.contains) {
				t.Fatalf("body %q lacks %q", body, tc.contains)
			}
			if tc.cache != "" && res.Header.Get("Cache-Control") != tc.cache {
				t.Fatalf("Cache-Control %q, want %q", res.Header.Get("Cache-Control"), tc.cache)
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatal("the same-origin UI got CORS headers")
			}
		})
	}
	if page := landingText(t, ts.URL); !strings.Contains(page, `<a href="/admin-ui/">the admin UI</a>`) {
		t.Fatalf("the landing page does not link the UI:\n%s", page)
	}
}

func TestAdminUINotInstalled(t *testing.T) {
	t.Chdir(t.TempDir())
	ts := startServer(t, adminTestConfig(AdminModeProduction))
	for _, path := range []string{"/admin-ui", "/admin-ui/", "/admin-ui/switchboard-prefill.js"} {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d without the package, want 404", path, res.StatusCode)
		}
	}
}
