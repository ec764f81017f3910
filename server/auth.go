package server

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// Leeway is the clock-skew allowance for a token's nbf: a token minted on a clock a few seconds
// ahead of this server's is accepted at once. exp gets none: it is also the moment a live
// socket is disconnected, and a token is never accepted that would be cut off on arrival.
const Leeway = 5 * time.Second

// minSecretBytes is what RFC 7518 §3.2 asks of an HS256 key; shorter secrets are warned about.
const minSecretBytes = 32

// Refusal codes sent as connect_error data.code (SPEC §5).
const (
	TokenMissing = "token_missing"
	TokenInvalid = "token_invalid"
	TokenExpired = "token_expired"
)

// tokenError is why a token was refused: one of the refusal codes.
type tokenError struct{ code string }

func (e *tokenError) Error() string { return e.code }

// Authenticator turns a connecting socket's token into its identity (SPEC §5). Without a key it
// admits anonymous clients.
type Authenticator struct {
	// keys maps each accepted algorithm to the one key that verifies it: HS256 to the secret's
	// bytes, RS256/ES256/EdDSA to the public key. A token's alg header only selects among these,
	// so an HS256 token can never be checked against the public key. Empty = anonymous clients.
	keys   map[string]any
	parser *jwt.Parser
	now    func() time.Time
	log    zerolog.Logger
	// timers counts the expiry timers armed and not yet stopped or fired, so tests can check
	// that disconnecting releases them.
	timers atomic.Int64

	sessions sync.Map // *socketio.Socket → *session, for sockets with a token
	refresh  *namespaces.Routes[*session]
}

// NewAuthenticator builds the authenticator cfg asks for, reading the public key file. A bad key
// is a *ConfigError naming --jwt-public-key, as LoadConfig's errors name their setting. With both
// a secret and a public key, tokens signed either way are accepted (each algorithm with its own
// key), which lets issuers move from one to the other.
func NewAuthenticator(cfg Config, log zerolog.Logger) (*Authenticator, error) {
	a := &Authenticator{keys: map[string]any{}, now: time.Now, log: log.With().Str("component", "auth").Logger()}
	if err := cfg.validateJWT(); err != nil {
		return nil, err
	}
	if cfg.JWTSecret != "" {
		a.keys[jwt.SigningMethodHS256.Alg()] = []byte(cfg.JWTSecret)
		if len(cfg.JWTSecret) < minSecretBytes {
			a.log.Warn().Msgf("--jwt-secret is shorter than %d bytes: tokens signed with it are easy to forge", minSecretBytes)
		}
	}
	if cfg.JWTPublicKey != "" {
		key, method, err := loadPublicKey(cfg.JWTPublicKey)
		if err != nil {
			return nil, &ConfigError{Setting: "--jwt-public-key", Reason: err.Error()}
		}
		a.keys[method] = key
	}
	if a.Anonymous() {
		a.log.Warn().Msg("no --jwt-secret or --jwt-public-key: anonymous clients are allowed")
		return a, nil
	}
	methods := make([]string, 0, len(a.keys))
	for m := range a.keys {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return a.now() }),
	}
	if cfg.JWTIssuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.JWTIssuer))
	}
	if cfg.JWTAudience != "" {
		opts = append(opts, jwt.WithAudience(cfg.JWTAudience))
	}
	a.parser = jwt.NewParser(opts...)
	a.log.Info().Strs("algorithms", methods).Msg("clients need a JWT")
	return a, nil
}

// Anonymous reports whether no key is configured, so every client is let in.
func (a *Authenticator) Anonymous() bool { return len(a.keys) == 0 }

// validateJWT checks the JWT settings that need no file: issuer and audience mean nothing without
// a key, and silently letting everyone in would be the wrong way to find out.
func (c Config) validateJWT() error {
	if c.JWTSecret == "" && c.JWTPublicKey == "" {
		if c.JWTIssuer != "" {
			return &ConfigError{Setting: "--jwt-issuer", Reason: "needs --jwt-secret or --jwt-public-key"}
		}
		if c.JWTAudience != "" {
			return &ConfigError{Setting: "--jwt-audience", Reason: "needs --jwt-secret or --jwt-public-key"}
		}
	}
	return nil
}

// loadPublicKey reads the first PEM block of path: a public key (PKIX "PUBLIC KEY" or PKCS#1
// "RSA PUBLIC KEY") or a certificate, and returns it with the one algorithm it verifies.
func loadPublicKey(path string) (any, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("cannot read %q: %w", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, "", fmt.Errorf("%q holds no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, "", fmt.Errorf("%q holds a private key; give the public key", path)
		}
		return nil, "", fmt.Errorf("%q holds a %q PEM block, not a public key", path, block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%q: malformed %s", path, strings.ToLower(block.Type))
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("%q: RSA key of %d bits is too short (2048 at least)", path, k.N.BitLen())
		}
		return k, jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("%q: ES256 needs a P-256 key, not %s", path, k.Curve.Params().Name)
		}
		return k, jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		return k, jwt.SigningMethodEdDSA.Alg(), nil
	default:
		return nil, "", fmt.Errorf("%q: %T keys are not supported (RSA, P-256 or Ed25519)", path, key)
	}
}

// verify checks token and returns the identity it carries.
func (a *Authenticator) verify(token string) (namespaces.Identity, *tokenError) {
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		// RFC 7515 §4.1.11: a recipient that does not understand every extension crit lists
		// must reject the token, and this one understands none (even an empty list is invalid).
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header: no extension is understood")
		}
		key, ok := a.keys[t.Method.Alg()] // WithValidMethods already refused others
		if !ok {
			return nil, errors.New("unexpected algorithm")
		}
		return key, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return namespaces.Identity{}, &tokenError{TokenExpired}
	case err != nil:
		return namespaces.Identity{}, &tokenError{TokenInvalid}
	}
	id, ok := identityFromClaims(claims)
	if !ok {
		return namespaces.Identity{}, &tokenError{TokenInvalid}
	}
	if id.Exp != 0 && !a.now().Before(time.Unix(id.Exp, 0)) {
		return namespaces.Identity{}, &tokenError{TokenExpired}
	}
	return id, nil
}

// identityFromClaims reads sub, name, rooms and exp of verified claims: sub must be a non-empty
// string and rooms, when present, a list of strings.
func identityFromClaims(claims jwt.MapClaims) (namespaces.Identity, bool) {
	var id namespaces.Identity
	sub, ok := claims["sub"].(string)
	if !ok || sub == "" {
		return id, false
	}
	id.User.ID, id.User.Name = sub, sub
	if name, ok := claims["name"].(string); ok && strings.TrimSpace(name) != "" {
		id.User.Name = name
	}
	if raw, present := claims["rooms"]; present {
		list, ok := raw.([]any)
		if !ok {
			return id, false
		}
		id.Rooms = make([]string, 0, len(list))
		for _, r := range list {
			s, ok := r.(string)
			if !ok {
				return id, false
			}
			id.Rooms = append(id.Rooms, s)
		}
	}
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return id, false
	}
	if exp != nil {
		id.Exp = exp.Unix()
		if id.Exp <= 0 { // before 1970: expired, and 0 would mean "no expiry"
			id.Exp = -1
		}
	}
	return id, true
}

// tokenFrom finds the token of a handshake: auth.token, else an "Authorization: Bearer" header.
// ok is false when there is none. A "Bearer " prefix inside auth.token is tolerated.
func tokenFrom(auth map[string]any, authorization string) (token string, ok bool) {
	if s, isString := auth["token"].(string); isString {
		if t := strings.TrimSpace(s); t != "" {
			if rest, bearer := cutBearer(t); bearer {
				t = rest
			}
			if t != "" {
				return t, true
			}
		}
	}
	if t, bearer := cutBearer(strings.TrimSpace(authorization)); bearer && t != "" {
		return t, true
	}
	return "", false
}

// cutBearer strips a case-insensitive "Bearer " scheme and the spaces after it.
func cutBearer(s string) (string, bool) {
	const scheme = "bearer"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return "", false
	}
	rest := s[len(scheme):]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "Bearerabc" is a token, not the scheme
	}
	return strings.TrimSpace(rest), true
}

// Middleware is the namespace middleware that gives every connecting socket its identity: the
// verified token's user, or an anonymous one when no key is configured. It runs again when a
// socket recovers its session, so a token that expired meanwhile is refused.
func (a *Authenticator) Middleware(s *socketio.Socket) error {
	auth := s.Handshake().Auth
	if a.Anonymous() {
		namespaces.SetIdentity(s, namespaces.Anonymous(s.ID(), auth))
		return nil
	}
	id, err := a.identify(auth, s.Header("authorization"))
	if err != nil {
		a.log.Debug().Str("nsp", s.Namespace().Name()).Str("sid", s.ID()).Str("reason", err.code).Msg("connection refused")
		return &socketio.ConnectError{Message: namespaces.CodeUnauthorized, Data: map[string]any{"code": err.code}}
	}
	if s.Recovered() {
		// The session's rooms were restored before this check: keep only those the token allows
		// (another user's token must not inherit the previous user's room).
		for _, r := range s.Rooms() {
			if !id.MayJoin(r) {
				s.Leave(r)
			}
		}
	}
	namespaces.SetIdentity(s, id)
	return nil
}

// identify extracts and verifies the handshake's token.
func (a *Authenticator) identify(auth map[string]any, authorization string) (namespaces.Identity, *tokenError) {
	token, ok := tokenFrom(auth, authorization)
	if !ok {
		return namespaces.Identity{}, &tokenError{TokenMissing}
	}
	return a.verify(token)
}
