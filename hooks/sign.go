package hooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of every hook request (SPEC §8).
const (
	HeaderTimestamp = "X-Switchboard-Timestamp"
	HeaderSignature = "X-Switchboard-Signature"
)

// signaturePrefix names the MAC in HeaderSignature, so another one can be added beside it.
const signaturePrefix = "sha256="

// Errors of Verify.
var (
	ErrBadSignature = errors.New("hooks: signature does not match")
	ErrBadTimestamp = errors.New("hooks: timestamp is not unix seconds")
	ErrStale        = errors.New("hooks: timestamp too far from now")
)

// Sign returns the HeaderSignature value for body sent at timestamp (unix seconds, as in
// HeaderTimestamp): "sha256=" and the hex HMAC-SHA256 of "<timestamp>.<body>" keyed with secret.
// The timestamp is signed so that a captured request cannot be replayed later.
func Sign(secret, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac([]byte(secret), timestamp, body))
}

func mac(key []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a hook request as a backend should: signature is the HeaderSignature value,
// timestamp the HeaderTimestamp one and body the raw body; the request is refused when the
// signature is not Sign's for secret or the timestamp is more than maxSkew away from now. It
// panics when maxSkew is not positive: without a bound, replays are accepted forever.
func Verify(secret, timestamp string, body []byte, signature string, now time.Time, maxSkew time.Duration) error {
	if maxSkew <= 0 {
		panic("hooks: Verify expects maxSkew > 0")
	}
	if timestamp == "" || strings.TrimLeft(timestamp, "0123456789") != "" || len(timestamp) > 18 {
		return ErrBadTimestamp
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	hexMAC, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexMAC)
	if err != nil || !hmac.Equal(got, mac([]byte(secret), timestamp, body)) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return ErrStale
	}
	return nil
}
