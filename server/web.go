package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"
)

// DefaultWebDir is where `pnpm --filter client-js build` writes the demo page, relative to the
// working directory; it is served at DemoPath when --web-dir is empty and it has been built.
var DefaultWebDir = filepath.Join("client-js", "dist")

// DemoPath is where the built demo page is served; "/" is the landing page (landing.go), which
// links to it.
const DemoPath = "/demo/"

// reservedPrefixes are the server's own paths: the demo's files never answer for them, even when
// a route below one of them is unknown, so that their 404s stay theirs.
var reservedPrefixes = []string{"/socket.io", "/api", "/healthz", "/readyz", "/metrics", "/admin-ui"}

// webPage answers every GET no route claims (it is chi's NotFound handler, so it can never shadow
// a route): "/" with the landing page, DemoPath with the built demo page (client-js/dist), and
// the demo's other files at their own paths, since Vite links its assets from the root
// (/assets/…).
type webPage struct {
	fsys fs.FS // nil: no demo built; only "/" is answered
	// landing is what the page at "/" shows; the server fills it once its namespaces are set up.
	landing Landing
}

// newWebPage opens dir. An empty dir means DefaultWebDir when it holds an index.html, else no
// demo; a dir that was asked for but holds no index.html is a configuration error.
func newWebPage(dir string, log zerolog.Logger) (*webPage, error) {
	asked := dir != ""
	if !asked {
		dir = DefaultWebDir
	}
	fsys := os.DirFS(dir)
	if info, err := fs.Stat(fsys, "index.html"); err != nil || info.IsDir() {
		if asked {
			return nil, &ConfigError{Setting: "--web-dir", Reason: fmt.Sprintf("%q holds no index.html (build it with `pnpm --filter client-js build`)", dir)}
		}
		log.Debug().Str("component", "web").Msg("no demo page built; " + DemoPath + " is not served")
		return &webPage{}, nil
	}
	log.Info().Str("component", "web").Str("dir", dir).Msg("serving the demo page at " + DemoPath)
	return &webPage{fsys: fsys}, nil
}

// demoPath is DemoPath when the demo is built, else "".
func (p *webPage) demoPath() string {
	if p.fsys == nil {
		return ""
	}
	return DemoPath
}

func (p *webPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.NotFound(w, r)
		return
	}
	if r.URL.Path == "/" {
		serveLanding(w, r, p.landing, p.demoPath())
		return
	}
	if p.fsys == nil || reserved(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	urlPath := r.URL.Path
	if urlPath+"/" == DemoPath {
		http.Redirect(w, r, DemoPath, http.StatusMovedPermanently)
		return
	}
	if rest, ok := strings.CutPrefix(urlPath, DemoPath); ok {
		urlPath = "/" + rest
	}
	name := strings.TrimPrefix(path.Clean("/"+urlPath), "/")
	if name == "" {
		name = "index.html"
	}
	info, err := fs.Stat(p.fsys, name)
	if err != nil || info.IsDir() { // no directory listings
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		// Vite puts a content hash in every asset's name.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeFileFS(w, r, p.fsys, name)
}

// reserved reports whether p belongs to one of the server's own paths.
func reserved(p string) bool {
	for _, prefix := range reservedPrefixes {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}
