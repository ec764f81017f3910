package server

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
)

// adminUI serves the stock admin UI, @socket.io/admin-ui's ui/dist as pnpm installed it
// (AdminUIDir), at AdminUIPath: from the server's own origin, so no CORS is involved. Its files
// are served as they are on disk but for index.html, which gets one script tag more: a small
// script of ours that fills the connection form's empty "Server URL" with the page's origin (the
// UI has no default; the package's files are never changed).
//
// The UI links its assets relatively (css/…, js/…) and routes with the URL's hash, so it must be
// served with the trailing slash and needs nothing but its files.
type adminUI struct {
	fsys  fs.FS
	index []byte
}

// adminUIPrefill is the script's name, beside index.html.
const adminUIPrefill = "switchboard-prefill.js"

// adminUIPrefillJS fills the Server URL field once, when the connection form first shows it
// empty (a stored URL, or one the user typed, is left alone). The field is the form's first
// input, in the form that has the password field (its label is translated, its placeholder only
// set while focused). Vue's v-model listens to input events, so the value is set and announced
// as a keystroke would be.
const adminUIPrefillJS = `// Served by Switchboard beside the stock @socket.io/admin-ui: fills the connection form's empty
// "Server URL" with this page's origin, where /admin is served.
(function () {
  var done = false;
  function fill() {
    var password = document.querySelector('form input[type="password"]');
    var input = password && password.form && password.form.querySelector("input");
    if (done || !input || input === password) return;
    done = true;
    observer.disconnect();
    if (input.value) return;
    input.value = window.location.origin;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  var observer = new MutationObserver(fill);
  observer.observe(document.documentElement, { childList: true, subtree: true });
})();
`

// newAdminUI opens the UI in dir and prepares its index.html.
func newAdminUI(dir string) (*adminUI, error) {
	fsys := os.DirFS(dir)
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		return nil, fmt.Errorf("server: read the admin UI's index.html: %w", err)
	}
	tag := []byte(`<script src="` + adminUIPrefill + `"></script>`)
	if i := bytes.Index(index, []byte("</head>")); i >= 0 {
		index = append(index[:i:i], append(tag, index[i:]...)...)
	} else {
		index = append(tag, index...)
	}
	return &adminUI{fsys: fsys, index: index}, nil
}

// mountAdminUI serves the installed admin UI at AdminUIPath, and AdminUIPath without its slash
// redirects there. Without the package nothing is mounted (the path answers 404, and the landing
// page says the UI is not installed).
func (s *Server) mountAdminUI(r chi.Router) {
	dir := AdminUIDir()
	if dir == "" {
		return
	}
	ui, err := newAdminUI(dir)
	if err != nil {
		s.log.Warn().Err(err).Str("component", "web").Msg("admin UI not served")
		return
	}
	bare := strings.TrimSuffix(AdminUIPath, "/")
	r.Get(bare, func(w http.ResponseWriter, r *http.Request) {
		target := AdminUIPath
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
	})
	r.Handle(AdminUIPath+"*", http.StripPrefix(bare, ui))
	s.log.Info().Str("component", "web").Str("dir", dir).Msg("serving the stock admin UI at " + AdminUIPath)
}

func (u *adminUI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	switch name {
	case "", "index.html":
		serveBytes(w, r, "text/html; charset=utf-8", u.index)
		return
	case adminUIPrefill:
		serveBytes(w, r, "text/javascript; charset=utf-8", []byte(adminUIPrefillJS))
		return
	}
	info, err := fs.Stat(u.fsys, name)
	if err != nil || info.IsDir() { // no directory listings
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrInvalid) {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return
		}
		http.NotFound(w, r)
		return
	}
	if strings.HasPrefix(name, "css/") || strings.HasPrefix(name, "js/") || strings.HasPrefix(name, "img/") {
		// vue-cli puts a content hash in each of these names.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeFileFS(w, r, u.fsys, name)
}

// serveBytes answers with body, never cached (it changes with the installed package).
func serveBytes(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
