package hooks

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"events":[]}`)
	good := Sign(testSecret, ts, body)
	tests := []struct {
		name      string
		secret    string
		timestamp string
		body      []byte
		signature string
		now       time.Time
		want      error
	}{
		{"valid", testSecret, ts, body, good, now, nil},
		{"valid within skew", testSecret, ts, body, good, now.Add(59 * time.Second), nil},
		{"other secret", "other", ts, body, good, now, ErrBadSignature},
		{"body changed", testSecret, ts, []byte(`{"events":[1]}`), good, now, ErrBadSignature},
		{"timestamp changed", testSecret, strconv.FormatInt(now.Unix()+1, 10), body, good, now, ErrBadSignature},
		{"replayed later", testSecret, ts, body, good, now.Add(61 * time.Second), ErrStale},
		{"from the future", testSecret, ts, body, good, now.Add(-61 * time.Second), ErrStale},
		{"no prefix", testSecret, ts, body, strings.TrimPrefix(good, "sha256="), now, ErrBadSignature},
		{"other prefix", testSecret, ts, body, "sha1=" + strings.TrimPrefix(good, "sha256="), now, ErrBadSignature},
		{"not hex", testSecret, ts, body, "sha256=zz", now, ErrBadSignature},
		{"truncated", testSecret, ts, body, good[:len(good)-2], now, ErrBadSignature},
		{"empty signature", testSecret, ts, body, "", now, ErrBadSignature},
		{"empty timestamp", testSecret, "", body, good, now, ErrBadTimestamp},
		{"negative timestamp", testSecret, "-1", body, good, now, ErrBadTimestamp},
		{"fractional timestamp", testSecret, ts + ".5", body, good, now, ErrBadTimestamp},
		{"huge timestamp", testSecret, strings.Repeat("9", 30), body, good, now, ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.timestamp, tt.body, tt.signature, tt.now, time.Minute)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignKnownValue(t *testing.T) {
	// Computed apart from Go: printf '1700000000.{}' | openssl dgst -sha256 -hmac s3cret
	const want = "sha256=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
	if got := Sign(testSecret, "1700000000", []byte("{}")); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerifyPanicsWithoutSkew(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Verify with maxSkew 0 did not panic")
		}
	}()
	Verify(testSecret, "1", nil, "", time.Now(), 0)
}
