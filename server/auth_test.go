package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// testKeys are one key pair of every supported kind, generated once per test binary run.
type testKeys struct {
	secret                []byte
	rsa, rsaOther         *rsa.PrivateKey
	ec, ecOther           *ecdsa.PrivateKey
	ed, edOther           ed25519.PrivateKey
	rsaPEM, ecPEM, edPEM  string // paths of the public keys, PKIX PEM
	rsaPKCS1PEM, certPEM  string
	rsaPublicPEMBytes     []byte // the RSA public key file's bytes, for the HS256 confusion attack
	privatePEM, smallRSA  string
	p384PEM, notPEM, junk string
}

func newTestKeys(t *testing.T) *testKeys {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	k := &testKeys{secret: []byte("a-test-secret-of-at-least-32-bytes!!")}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ecOther, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	_, k.edOther, err = ed25519.GenerateKey(rand.Reader)
	must(err)

	write := func(name, typ string, der []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		must(os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return path
	}
	pkixDER := func(pub crypto.PublicKey) []byte {
		t.Helper()
		der, err := x509.MarshalPKIXPublicKey(pub)
		must(err)
		return der
	}
	k.rsaPEM = write("rsa.pem", "PUBLIC KEY", pkixDER(&k.rsa.PublicKey))
	k.rsaPublicPEMBytes, err = os.ReadFile(k.rsaPEM)
	must(err)
	k.ecPEM = write("ec.pem", "PUBLIC KEY", pkixDER(&k.ec.PublicKey))
	k.edPEM = write("ed.pem", "PUBLIC KEY", pkixDER(k.ed.Public()))
	k.rsaPKCS1PEM = write("rsa1.pem", "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.ec.Public(), k.ec)
	must(err)
	k.certPEM = write("cert.pem", "CERTIFICATE", certDER)
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	must(err)
	k.privatePEM = write("private.pem", "PRIVATE KEY", privDER)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	k.smallRSA = write("small.pem", "PUBLIC KEY", pkixDER(&small.PublicKey))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	k.p384PEM = write("p384.pem", "PUBLIC KEY", pkixDER(&p384.PublicKey))
	k.notPEM = filepath.Join(dir, "not.pem")
	must(os.WriteFile(k.notPEM, []byte("just text\n"), 0o600))
	k.junk = write("junk.pem", "PUBLIC KEY", []byte("not DER"))
	return k
}

// mint signs claims with method and key.
func mint(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// withHeader signs claims with method and key, with one more protected header.
func withHeader(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims, name string, value any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header[name] = value
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// claimsFor is a valid claim set for sub, living for an hour.
func claimsFor(sub string, extra jwt.MapClaims) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func newAuth(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	a, err := NewAuthenticator(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("NewAuthenticator: %v", err)
	}
	return a
}

func TestVerify(t *testing.T) {
	k := newTestKeys(t)
	now := time.Now()
	in := func(d time.Duration) int64 { return now.Add(d).Unix() }
	hs := newAuth(t, Config{JWTSecret: string(k.secret)})
	rs := newAuth(t, Config{JWTPublicKey: k.rsaPEM})
	rs1 := newAuth(t, Config{JWTPublicKey: k.rsaPKCS1PEM})
	es := newAuth(t, Config{JWTPublicKey: k.ecPEM})
	esCert := newAuth(t, Config{JWTPublicKey: k.certPEM})
	ed := newAuth(t, Config{JWTPublicKey: k.edPEM})
	both := newAuth(t, Config{JWTSecret: string(k.secret), JWTPublicKey: k.rsaPEM})
	hsIssAud := newAuth(t, Config{JWTSecret: string(k.secret), JWTIssuer: "https://issuer.example", JWTAudience: "switchboard"})

	hs256 := func(c jwt.MapClaims) string { return mint(t, jwt.SigningMethodHS256, k.secret, c) }
	none := func(c jwt.MapClaims) string {
		return mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, c)
	}
	tests := []struct {
		name  string
		auth  *Authenticator
		token string
		code  string // "" = accepted
		user  string
		uname string
		rooms []string
	}{
		{name: "HS256 valid", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"name": "Alice", "rooms": []string{"news", "prices:*"}})),
			user: "alice", uname: "Alice", rooms: []string{"news", "prices:*"}},
		{name: "HS256 without name uses sub", auth: hs, token: hs256(claimsFor("bob", nil)), user: "bob", uname: "bob"},
		{name: "HS256 blank name uses sub", auth: hs, token: hs256(claimsFor("bob", jwt.MapClaims{"name": "  "})), user: "bob", uname: "bob"},
		{name: "non-string name uses sub", auth: hs, token: hs256(claimsFor("bob", jwt.MapClaims{"name": 7})), user: "bob", uname: "bob"},
		{name: "without exp", auth: hs, token: hs256(jwt.MapClaims{"sub": "carol"}), user: "carol", uname: "carol"},
		{name: "empty rooms allows none", auth: hs, token: hs256(claimsFor("dan", jwt.MapClaims{"rooms": []string{}})), user: "dan", uname: "dan", rooms: []string{}},
		{name: "expired", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"exp": in(-time.Minute)})), code: TokenExpired},
		{name: "expired within the leeway is still expired", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"exp": in(-2 * time.Second)})), code: TokenExpired},
		{name: "expiring now", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"exp": in(0)})), code: TokenExpired},
		{name: "expired with a bad signature is invalid", auth: hs, token: mint(t, jwt.SigningMethodHS256, []byte("other"), claimsFor("alice", jwt.MapClaims{"exp": in(-time.Minute)})), code: TokenInvalid},
		{name: "not yet valid", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"nbf": in(time.Minute)})), code: TokenInvalid},
		{name: "nbf within the leeway", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"nbf": in(Leeway - 2*time.Second)})), user: "alice", uname: "alice"},
		{name: "wrong secret", auth: hs, token: mint(t, jwt.SigningMethodHS256, []byte("a-different-secret-of-32-bytes!!!!"), claimsFor("alice", nil)), code: TokenInvalid},
		{name: "HS512 with the right secret", auth: hs, token: mint(t, jwt.SigningMethodHS512, k.secret, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "alg none against a secret", auth: hs, token: none(claimsFor("alice", nil)), code: TokenInvalid},
		{name: "alg none against a public key", auth: rs, token: none(claimsFor("alice", nil)), code: TokenInvalid},
		{name: "RS256 token against a secret", auth: hs, token: mint(t, jwt.SigningMethodRS256, k.rsa, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "HS256 signed with the RSA public key (confusion)", auth: rs, token: mint(t, jwt.SigningMethodHS256, k.rsaPublicPEMBytes, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "RS256 valid", auth: rs, token: mint(t, jwt.SigningMethodRS256, k.rsa, claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "RS256 valid, PKCS#1 key file", auth: rs1, token: mint(t, jwt.SigningMethodRS256, k.rsa, claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "RS256 by another key", auth: rs, token: mint(t, jwt.SigningMethodRS256, k.rsaOther, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "PS256 by the right key", auth: rs, token: mint(t, jwt.SigningMethodPS256, k.rsa, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "RS512 by the right key", auth: rs, token: mint(t, jwt.SigningMethodRS512, k.rsa, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "secret and key: HS256", auth: both, token: hs256(claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "secret and key: RS256", auth: both, token: mint(t, jwt.SigningMethodRS256, k.rsa, claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "secret and key: HS256 signed with the public key", auth: both, token: mint(t, jwt.SigningMethodHS256, k.rsaPublicPEMBytes, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "secret and key: ES256", auth: both, token: mint(t, jwt.SigningMethodES256, k.ec, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "ES256 valid", auth: es, token: mint(t, jwt.SigningMethodES256, k.ec, claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "ES256 valid, key from a certificate", auth: esCert, token: mint(t, jwt.SigningMethodES256, k.ec, claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "ES256 by another key", auth: es, token: mint(t, jwt.SigningMethodES256, k.ecOther, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "ES256 expired", auth: es, token: mint(t, jwt.SigningMethodES256, k.ec, claimsFor("alice", jwt.MapClaims{"exp": in(-time.Hour)})), code: TokenExpired},
		{name: "RS256 against an EC key", auth: es, token: mint(t, jwt.SigningMethodRS256, k.rsa, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "EdDSA valid", auth: ed, token: mint(t, jwt.SigningMethodEdDSA, k.ed, claimsFor("alice", nil)), user: "alice", uname: "alice"},
		{name: "EdDSA by another key", auth: ed, token: mint(t, jwt.SigningMethodEdDSA, k.edOther, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "EdDSA against an RSA key", auth: rs, token: mint(t, jwt.SigningMethodEdDSA, k.ed, claimsFor("alice", nil)), code: TokenInvalid},
		{name: "issuer and audience match", auth: hsIssAud, token: hs256(claimsFor("alice", jwt.MapClaims{"iss": "https://issuer.example", "aud": []string{"other", "switchboard"}})), user: "alice", uname: "alice"},
		{name: "wrong issuer", auth: hsIssAud, token: hs256(claimsFor("alice", jwt.MapClaims{"iss": "https://evil.example", "aud": "switchboard"})), code: TokenInvalid},
		{name: "missing issuer", auth: hsIssAud, token: hs256(claimsFor("alice", jwt.MapClaims{"aud": "switchboard"})), code: TokenInvalid},
		{name: "wrong audience", auth: hsIssAud, token: hs256(claimsFor("alice", jwt.MapClaims{"iss": "https://issuer.example", "aud": "other"})), code: TokenInvalid},
		{name: "missing audience", auth: hsIssAud, token: hs256(claimsFor("alice", jwt.MapClaims{"iss": "https://issuer.example"})), code: TokenInvalid},
		{name: "issuer ignored when not configured", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"iss": "anyone", "aud": "anything"})), user: "alice", uname: "alice"},
		{name: "missing sub", auth: hs, token: hs256(claimsFor("", jwt.MapClaims{"sub": nil})), code: TokenInvalid},
		{name: "empty sub", auth: hs, token: hs256(claimsFor("", nil)), code: TokenInvalid},
		{name: "numeric sub", auth: hs, token: hs256(claimsFor("", jwt.MapClaims{"sub": 42})), code: TokenInvalid},
		{name: "rooms is a string", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"rooms": "news"})), code: TokenInvalid},
		{name: "rooms holds a number", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"rooms": []any{"news", 1}})), code: TokenInvalid},
		{name: "rooms is an object", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"rooms": map[string]any{"news": true}})), code: TokenInvalid},
		{name: "exp is a string", auth: hs, token: hs256(claimsFor("alice", jwt.MapClaims{"exp": "tomorrow"})), code: TokenInvalid},
		{name: "crit header", auth: hs, token: withHeader(t, jwt.SigningMethodHS256, k.secret, claimsFor("alice", nil), "crit", []string{"exp"}), code: TokenInvalid},
		{name: "crit header naming an unknown extension", auth: rs, token: withHeader(t, jwt.SigningMethodRS256, k.rsa, claimsFor("alice", jwt.MapClaims{"x-ext": 1}), "crit", []string{"x-ext"}), code: TokenInvalid},
		{name: "crit header, empty list", auth: es, token: withHeader(t, jwt.SigningMethodES256, k.ec, claimsFor("alice", nil), "crit", []string{}), code: TokenInvalid},
		{name: "crit header not a list", auth: hs, token: withHeader(t, jwt.SigningMethodHS256, k.secret, claimsFor("alice", nil), "crit", "b64"), code: TokenInvalid},
		{name: "crit header on an expired token is invalid", auth: hs, token: withHeader(t, jwt.SigningMethodHS256, k.secret, claimsFor("alice", jwt.MapClaims{"exp": in(-time.Minute)}), "crit", []string{"exp"}), code: TokenInvalid},
		{name: "other unknown header is ignored", auth: hs, token: withHeader(t, jwt.SigningMethodHS256, k.secret, claimsFor("alice", nil), "x-extra", "v"), user: "alice", uname: "alice"},
		{name: "malformed: one part", auth: hs, token: "abc", code: TokenInvalid},
		{name: "malformed: three junk parts", auth: hs, token: "a.b.c", code: TokenInvalid},
		{name: "malformed: truncated signature", auth: hs, token: func() string { s := hs256(claimsFor("alice", nil)); return s[:len(s)-5] }(), code: TokenInvalid},
		{name: "malformed: payload not JSON", auth: hs, token: "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln", code: TokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.auth.verify(tt.token)
			if tt.code != "" {
				if err == nil {
					t.Fatalf("accepted as %+v, want %s", id, tt.code)
				}
				if err.code != tt.code {
					t.Fatalf("refused with %s, want %s", err.code, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused with %s, want accepted", err.code)
			}
			if id.User.ID != tt.user || id.User.Name != tt.uname {
				t.Fatalf("user = %+v, want {%s %s}", id.User, tt.user, tt.uname)
			}
			if !reflect.DeepEqual(id.Rooms, tt.rooms) {
				t.Fatalf("rooms = %#v, want %#v", id.Rooms, tt.rooms)
			}
		})
	}
}

func TestVerifyKeepsExp(t *testing.T) {
	k := newTestKeys(t)
	a := newAuth(t, Config{JWTSecret: string(k.secret)})
	exp := time.Now().Add(time.Hour).Unix()
	id, err := a.verify(mint(t, jwt.SigningMethodHS256, k.secret, jwt.MapClaims{"sub": "alice", "exp": exp}))
	if err != nil {
		t.Fatalf("verify: %s", err.code)
	}
	if id.Exp != exp {
		t.Fatalf("Exp = %d, want %d", id.Exp, exp)
	}
}

func TestJWTConfig(t *testing.T) {
	k := newTestKeys(t)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		setting string // "" = valid
		reason  string // part of the reason
	}{
		{name: "secret", args: []string{"--jwt-secret", "s3cret"}},
		{name: "RSA key", args: []string{"--jwt-public-key", k.rsaPEM, "--jwt-issuer", "i", "--jwt-audience", "a"}},
		{name: "key from the environment", env: map[string]string{"SWITCHBOARD_JWT_PUBLIC_KEY": k.edPEM}},
		{name: "secret and key", args: []string{"--jwt-secret", "s", "--jwt-public-key", k.rsaPEM}},
		{name: "missing file", args: []string{"--jwt-public-key", filepath.Join(t.TempDir(), "nope.pem")}, setting: "--jwt-public-key", reason: "cannot read"},
		{name: "not PEM", args: []string{"--jwt-public-key", k.notPEM}, setting: "--jwt-public-key", reason: "no PEM block"},
		{name: "junk DER", args: []string{"--jwt-public-key", k.junk}, setting: "--jwt-public-key", reason: "malformed"},
		{name: "private key", args: []string{"--jwt-public-key", k.privatePEM}, setting: "--jwt-public-key", reason: "private key"},
		{name: "short RSA key", args: []string{"--jwt-public-key", k.smallRSA}, setting: "--jwt-public-key", reason: "too short"},
		{name: "P-384 key", args: []string{"--jwt-public-key", k.p384PEM}, setting: "--jwt-public-key", reason: "P-256"},
		{name: "issuer without a key", args: []string{"--jwt-issuer", "i"}, setting: "--jwt-issuer", reason: "needs"},
		{name: "audience without a key", args: []string{"--jwt-audience", "a"}, setting: "--jwt-audience", reason: "needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// LoadConfig reads no file; the key file is read when the server is built.
			cfg, err := LoadConfig(tt.args, func(k string) string { return tt.env[k] }, nil)
			if err == nil {
				_, err = NewAuthenticator(cfg, zerolog.Nop())
			}
			if tt.setting == "" {
				if err != nil {
					t.Fatalf("config refused: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want a ConfigError", err)
			}
			if ce.Setting != tt.setting || !strings.Contains(ce.Reason, tt.reason) {
				t.Fatalf("error %q, want it to name %s and say %q", err, tt.setting, tt.reason)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q spans lines", err)
			}
		})
	}
}

func TestTokenFrom(t *testing.T) {
	hdr := func(vs ...string) http.Header {
		h := http.Header{}
		for _, v := range vs {
			h.Add("Authorization", v)
		}
		return h
	}
	tests := []struct {
		name   string
		auth   map[string]any
		header http.Header
		want   string
		ok     bool
	}{
		{name: "nothing", ok: false},
		{name: "auth.token", auth: map[string]any{"token": "abc"}, want: "abc", ok: true},
		{name: "auth.token trimmed", auth: map[string]any{"token": "  abc \n"}, want: "abc", ok: true},
		{name: "auth.token with a Bearer prefix", auth: map[string]any{"token": "Bearer abc"}, want: "abc", ok: true},
		{name: "auth.token wins over the header", auth: map[string]any{"token": "abc"}, header: hdr("Bearer def"), want: "abc", ok: true},
		{name: "empty auth.token falls back to the header", auth: map[string]any{"token": ""}, header: hdr("Bearer def"), want: "def", ok: true},
		{name: "non-string auth.token", auth: map[string]any{"token": 12.0}, ok: false},
		{name: "null auth.token", auth: map[string]any{"token": nil}, ok: false},
		{name: "auth.token only Bearer", auth: map[string]any{"token": "Bearer "}, ok: false},
		{name: "header", header: hdr("Bearer def"), want: "def", ok: true},
		{name: "header scheme is case-insensitive", header: hdr("bEaReR def"), want: "def", ok: true},
		{name: "header with extra spaces", header: hdr("  Bearer   def  "), want: "def", ok: true},
		{name: "header Basic scheme", header: hdr("Basic dXNlcjpwYXNz"), ok: false},
		{name: "header without a token", header: hdr("Bearer"), ok: false},
		{name: "header Bearer and spaces only", header: hdr("Bearer    "), ok: false},
		{name: "header without a space", header: hdr("Bearerdef"), ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tokenFrom(tt.auth, tt.header.Get("Authorization"))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("tokenFrom = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzTokenFrom(f *testing.F) {
	f.Add("", "")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.sig", "")
	f.Add("Bearer abc", "Bearer def")
	f.Add("", "bearer\tabc")
	f.Add(" ", "Bearer ")
	f.Add("\x00", "Bearer \xff\xfe")
	f.Fuzz(func(t *testing.T, authToken, header string) {
		got, ok := tokenFrom(map[string]any{"token": authToken}, header)
		if ok != (got != "") {
			t.Fatalf("tokenFrom = %q, %v: ok must mean a token", got, ok)
		}
		if !ok {
			return
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("token %q keeps surrounding spaces", got)
		}
		if !strings.Contains(authToken, got) && !strings.Contains(header, got) {
			t.Fatalf("token %q comes from neither input", got)
		}
		// What was extracted verifies without panicking, and never as a valid token.
		a, err := NewAuthenticator(Config{JWTSecret: "fuzz-secret-fuzz-secret-fuzz-secret"}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if _, terr := a.verify(got); terr == nil {
			t.Fatalf("verified an unsigned fuzz input %q", got)
		}
	})
}
