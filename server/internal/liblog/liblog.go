// Package liblog routes the Socket.IO library's own log output into zerolog.
//
// The library's loggers capture their io.Writer when its packages are initialised, so the
// redirection has to happen in an init that runs before theirs. Go initialises packages in
// import-path order among those whose imports are ready; this package imports only the library's
// log package and sorts before github.com/zishang520/..., so its init runs first.
package liblog

import (
	"bytes"
	"sync/atomic"

	"github.com/gookit/color"
	"github.com/rs/zerolog"
	eiolog "github.com/zishang520/socket.io/v3/pkg/log"
)

// sink is where library lines go once the application has built its logger. It is the one piece
// of global state in Switchboard, forced by the library's design.
var sink atomic.Pointer[zerolog.Logger]

func init() {
	color.Disable()
	eiolog.DEBUG.Store(false) // its debug output prints handshake auth (tokens): never on
	eiolog.Output = writer{}
	eiolog.Flags = 0
	eiolog.Prefix = ""
	eiolog.SetDefault(eiolog.NewLog(""))
}

// SetLogger sends the library's lines to l from now on. Before it is called they are dropped.
func SetLogger(l zerolog.Logger) {
	l = l.With().Str("component", "socket.io").Logger()
	sink.Store(&l)
}

type writer struct{}

func (writer) Write(p []byte) (int, error) {
	if l := sink.Load(); l != nil {
		l.Warn().Msg(string(bytes.TrimSpace(p)))
	}
	return len(p), nil
}
