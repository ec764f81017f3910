package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name  string
		level zerolog.Level
		want  bool // a "request" line
	}{
		{"debug", zerolog.DebugLevel, true},
		{"info", zerolog.InfoLevel, true},
		{"warn", zerolog.WarnLevel, false},
		{"disabled", zerolog.Disabled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := accessLog(zerolog.New(&out).Level(tt.level))(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusTeapot)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != http.StatusTeapot {
				t.Fatalf("status %d, want %d", rec.Code, http.StatusTeapot)
			}
			logged := strings.Contains(out.String(), `"message":"request"`) && strings.Contains(out.String(), `"status":418`)
			if logged != tt.want {
				t.Fatalf("logged %q, want a request line: %v", out.String(), tt.want)
			}
		})
	}
}
