package liblog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	eiolog "github.com/zishang520/socket.io/v3/pkg/log"
)

func TestLibraryLinesReachZerolog(t *testing.T) {
	var buf bytes.Buffer
	SetLogger(zerolog.New(&buf))
	t.Cleanup(func() { sink.Store(nil) })

	tests := []struct {
		name string
		emit func()
		want string
	}{
		{"named logger", func() { eiolog.NewLog("engine:test").Info("hello %d", 42) }, "hello 42"},
		{"default logger", func() { eiolog.Default().Info("from default") }, "from default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			tt.emit()
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON line, got %q: %v", buf.String(), err)
			}
			if line["component"] != "socket.io" || line["level"] != "warn" || !strings.Contains(line["message"].(string), tt.want) {
				t.Fatalf("got %v, want a socket.io warn line containing %q", line, tt.want)
			}
		})
	}
	t.Run("debug lines stay off", func(t *testing.T) {
		buf.Reset()
		eiolog.NewLog("engine:test").Debug("secret token")
		if buf.Len() != 0 {
			t.Fatalf("debug output leaked: %q", buf.String())
		}
	})
}
