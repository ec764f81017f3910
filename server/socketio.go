package server

import (
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// socketOptions maps the configuration onto the library's Socket.IO and Engine.IO options.
func (s *Server) socketOptions() *socket.ServerOptions {
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	opts.SetPingInterval(s.cfg.PingInterval)
	opts.SetPingTimeout(s.cfg.PingTimeout)
	opts.SetMaxHttpBufferSize(s.cfg.MaxPayload)
	opts.SetCors(corsOptions(s.cfg.CORSOrigins))
	opts.SetAdapter(s.backend.Constructor())
	opts.SetParser(newGatedParser()) // see connectgate.go
	// Our polling transport (polling.go) and the websocket transport with a write deadline: a
	// client that stops reading is dropped instead of holding a writer (transport.go).
	opts.SetTransports(engineTransports(&websocketBuilder{
		timeout:  s.cfg.Limits.WriteTimeout,
		timedOut: func() { s.metrics.Limited("write_timeout") },
		frames:   newFrameCache(),
		warm:     s.warm,
	}, s.upgrades))
	if s.cfg.RecoveryWindow > 0 {
		rec := socket.DefaultConnectionStateRecovery()
		rec.SetMaxDisconnectionDuration(s.cfg.RecoveryWindow.Milliseconds())
		// Authentication runs again on a recovered connection: a token may have expired or been
		// revoked while the client was away.
		rec.SetSkipMiddlewares(false)
		opts.SetConnectionStateRecovery(rec)
	}
	if s.cfg.Conformance {
		conformanceOptions(opts)
	}
	return opts
}

// corsOptions allows any origin for "*", else exactly the listed ones (with credentials, which a
// browser refuses together with a wildcard).
func corsOptions(origins []string) *types.Cors {
	for _, o := range origins {
		if o == "*" {
			return &types.Cors{Origin: "*"}
		}
	}
	return &types.Cors{Origin: origins, Credentials: true}
}
