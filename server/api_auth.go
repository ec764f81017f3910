package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// apiKeyAuth lets a request through when its Authorization header is "Bearer <key>" with one of
// keys. With no keys configured the API is off: every request is a 403 api_disabled. A missing or
// wrong key is a 401 with a WWW-Authenticate challenge (RFC 6750).
//
// Keys are compared as SHA-256 digests in constant time, against every key without stopping at a
// match, so the answer's timing tells nothing about a key's length or content.
func apiKeyAuth(keys []string) func(http.Handler) http.Handler {
	digests := make([][sha256.Size]byte, len(keys))
	for i, k := range keys {
		digests[i] = sha256.Sum256([]byte(k))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(digests) == 0 {
				writeAPIError(w, apiErrorf(http.StatusForbidden, codeAPIDisabled, "the HTTP API is disabled: no API keys are configured"))
				return
			}
			token, ok := bearerToken(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
				writeAPIError(w, apiErrorf(http.StatusUnauthorized, codeUnauthorized, "an Authorization: Bearer <api key> header is required"))
				return
			}
			got := sha256.Sum256([]byte(token))
			match := 0
			for i := range digests {
				match |= subtle.ConstantTimeCompare(got[:], digests[i][:])
			}
			if match != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard", error="invalid_token"`)
				writeAPIError(w, apiErrorf(http.StatusUnauthorized, codeUnauthorized, "the API key is not valid"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// bearerToken returns the credentials of a "Bearer" Authorization header (the scheme is
// case-insensitive).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
