package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Landing is what the page at "/" says about the running node. The server fills it once (landing);
// Connections is called on every view, so that it reads the engine's counter of the moment. It is
// all the page knows of the server, so that rewiring the engine means changing landing only.
type Landing struct {
	Version    string
	Adapter    string
	Namespaces []string // sorted
	// JWT is true when clients must send a token (auth.token in the handshake).
	JWT bool
	// API is true when the HTTP API has keys (else it answers 403 api_disabled).
	API bool
	// Connections counts this node's Engine.IO connections now; nil shows none.
	Connections func() int
	// AdminUI is the path the stock @socket.io/admin-ui is served at, "" when it is not.
	AdminUI string
}

// AdminUIPath is where the stock admin UI is served when its npm package is installed.
const AdminUIPath = "/admin-ui/"

// adminUIDirs are where pnpm puts @socket.io/admin-ui's built UI, relative to the working
// directory, in the order AdminUIDir tries them.
var adminUIDirs = []string{
	filepath.Join("client-js", "node_modules", "@socket.io", "admin-ui", "ui", "dist"),
	filepath.Join("node_modules", "@socket.io", "admin-ui", "ui", "dist"),
}

// AdminUIDir returns the directory of the installed stock admin UI (the index.html of
// @socket.io/admin-ui's ui/dist), or "" when the package is not installed. The landing page links
// to AdminUIPath when it finds one; whatever serves /admin-ui/ should look it up here too.
func AdminUIDir() string {
	for _, dir := range adminUIDirs {
		if info, err := os.Stat(filepath.Join(dir, "index.html")); err == nil && !info.IsDir() {
			return dir
		}
	}
	return ""
}

// landing is the node as the page at "/" shows it. It is filled after the namespaces are set up.
func (s *Server) landing() Landing {
	l := Landing{
		Version:     Version,
		Adapter:     s.cfg.Adapter,
		Namespaces:  slices.Sorted(mapKeys(s.nsps)),
		JWT:         !s.auth.Anonymous(),
		API:         len(s.cfg.APIKeys) > 0,
		Connections: s.productConnections, // an admin UI's own connection is not one (admin.go)
	}
	if AdminUIDir() != "" {
		l.AdminUI = AdminUIPath
	}
	return l
}

// mapKeys yields m's keys, for slices.Sorted.
func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

//go:embed landing
var landingFiles embed.FS

// landingTemplate is the one page; html/template escapes every value it shows, the request's Host
// included.
var landingTemplate = template.Must(template.ParseFS(landingFiles, "landing/index.html"))

// landingView is the template's data: a Landing plus what depends on the request.
type landingView struct {
	Landing
	URL         string // this server as the client reached it: scheme://host, no trailing slash
	Snippet     string
	Connections int
	HasConns    bool
	Demo        string // the demo page's path when it is built, else ""
}

// serveLanding answers GET and HEAD / with the page. It is never cached: the connection count is
// of the moment.
func serveLanding(w http.ResponseWriter, r *http.Request, l Landing, demo string) {
	v := landingView{Landing: l, URL: baseURL(r), Demo: demo}
	if l.Connections != nil {
		v.Connections, v.HasConns = l.Connections(), true
	}
	v.Snippet = clientSnippet(v.URL, l.Namespaces, l.JWT)
	var buf bytes.Buffer
	if err := landingTemplate.Execute(&buf, v); err != nil {
		http.Error(w, "500 internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// baseURL is the server's origin as the client asked for it. The Host comes from the client and
// is only shown (escaped), never trusted.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// clientSnippet is a socket.io-client program that connects to every namespace at url, with the
// token in auth when the server wants one.
func clientSnippet(url string, nsps []string, jwt bool) string {
	var b strings.Builder
	b.WriteString("import { io } from \"socket.io-client\";\n\n")
	opts := ""
	if jwt {
		b.WriteString("const token = \"<a JWT this server accepts>\"; // signed with its --jwt-secret or --jwt-public-key's key\n")
		opts = ", { auth: { token } }"
	}
	for _, ns := range nsps {
		fmt.Fprintf(&b, "const %s = io(%q%s);\n", snippetVar(ns), url+ns, opts)
	}
	for _, ns := range nsps {
		v := snippetVar(ns)
		fmt.Fprintf(&b, "%s.on(\"connect\", () => console.log(%q, %s.id));\n", v, "connected to "+ns, v)
		fmt.Fprintf(&b, "%s.on(\"connect_error\", (err) => console.error(%q, err.message, err.data));\n", v, ns)
	}
	if slices.Contains(nsps, "/") {
		fmt.Fprintf(&b, "\n// a backend's emit to the room \"news\" (POST /api/v1/emit) then reaches %s\n", snippetVar("/"))
		fmt.Fprintf(&b, "%s.emit(\"subscribe\", { rooms: [\"news\"] }, (res) => console.log(res));\n", snippetVar("/"))
	}
	if slices.Contains(nsps, "/chat") {
		fmt.Fprintf(&b, "%s.emit(\"chat:join\", { room: \"lobby\" }, (res) => console.log(res));\n", snippetVar("/chat"))
	}
	return b.String()
}

// snippetVar names the snippet's variable for namespace ns: "root" for "/", else its name as a
// JavaScript identifier.
func snippetVar(ns string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, strings.TrimPrefix(ns, "/"))
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return "root" + name
	}
	return name
}

// listenURL is the address to open in a browser for a listener on addr: localhost when it is
// bound to every interface.
func listenURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
