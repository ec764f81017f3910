package server

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/server/internal/liblog"
)

// NewLogger builds the root logger: JSON, or human-readable console output when format is
// "console", or "auto" and out is a terminal. The Socket.IO library's own output is routed into it.
func NewLogger(out io.Writer, level zerolog.Level, format string) zerolog.Logger {
	if format == "auto" {
		format = "json"
		if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "console"
		}
	}
	if format == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	l := zerolog.New(out).Level(level).With().Timestamp().Logger()
	liblog.SetLogger(l)
	return l
}
