package server

import (
	"net/url"
	"slices"
	"strings"
)

// builtinNamespaces are served by Switchboard itself; --namespaces cannot claim them.
var builtinNamespaces = []string{"/", "/chat", "/relay", "/admin"}

// maxNamespaceName bounds a --namespaces name, its leading "/" included.
const maxNamespaceName = 128

// validateHooks checks the settings of SPEC §8. A hook setting without the hook it configures is
// refused rather than ignored, as --jwt-issuer without a key is: an operator who set it expects it
// to act.
func (c Config) validateHooks(bad func(setting, format string, args ...any) error) error {
	if c.HookTimeout <= 0 {
		return bad("hook-timeout", "must be positive")
	}
	if c.HookURL == "" {
		switch {
		case c.HookSecret != "":
			return bad("hook-secret", "needs --hook-url")
		case c.HookConnect:
			return bad("hook-connect", "needs --hook-url")
		case len(c.Namespaces) > 0:
			return bad("namespaces", "needs --hook-url: their events all go to the backend")
		}
	} else {
		// The URL is not echoed: it may carry credentials.
		u, err := url.Parse(c.HookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return bad("hook-url", "must be an http:// or https:// URL without query or fragment, e.g. https://app.internal/switchboard")
		}
		if c.HookSecret == "" {
			return bad("hook-secret", "is required with --hook-url: every hook request is signed with it")
		}
	}
	if len(c.HookHeaders) > 0 && !c.HookConnect {
		return bad("hook-headers", "needs --hook-connect: the headers go to the connect hook only")
	}
	for _, h := range c.HookHeaders {
		if !validHeaderName(h) {
			return bad("hook-headers", "%q is not a header name", h)
		}
		if strings.EqualFold(h, "authorization") {
			return bad("hook-headers", "authorization is never forwarded: hook bodies never carry a token")
		}
	}
	seen := make(map[string]bool, len(c.Namespaces))
	for _, n := range c.Namespaces {
		if !validNamespaceName(n) {
			return bad("namespaces", "%q is not a namespace: \"/\" then 1-%d characters of A-Z a-z 0-9 _ - . : @ /", n, maxNamespaceName-1)
		}
		if slices.Contains(builtinNamespaces, n) {
			return bad("namespaces", "%q is built in", n)
		}
		if seen[n] {
			return bad("namespaces", "%q is given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// validNamespaceName reports whether name is "/" followed by 1–127 characters of the room-name
// alphabet or "/". Socket.IO accepts more, but a name an operator types in a flag needs no more,
// and these never need escaping in a URL, a metric label or a log line.
func validNamespaceName(name string) bool {
	if len(name) < 2 || len(name) > maxNamespaceName || name[0] != '/' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '@' || c == '/':
		default:
			return false
		}
	}
	return true
}

// validHeaderName reports whether name is an HTTP field name (RFC 9110 §5.1: a token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// headerListValue is a comma list of header names, lower-cased (as the connect hook sends them)
// and without duplicates.
type headerListValue []string

func (l *headerListValue) String() string { return strings.Join(*l, ",") }

func (l *headerListValue) Set(s string) error {
	var names listValue
	_ = names.Set(s)
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n = strings.ToLower(n); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	*l = out
	return nil
}
