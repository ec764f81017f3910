package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/engineio"
	"github.com/switchboard/switchboard/socketio"
)

// The settings the official protocol test suites hard-code (docs/engine.io-protocol/v4-current.md
// and docs/socket.io-protocol/v5-current.md, "Test suite").
const (
	conformancePingInterval   = 300 * time.Millisecond
	conformancePingTimeout    = 200 * time.Millisecond
	conformanceMaxPayload     = 1_000_000
	conformanceConnectTimeout = 1000 * time.Millisecond
)

// conformanceConfig forces what --conformance serves: the suites' heartbeat, payload limit and
// CORS, and no connection state recovery, whose private session id ("pid") in the CONNECT
// packet the Socket.IO suite rejects (it expects exactly {"sid"}).
func conformanceConfig(cfg Config) Config {
	cfg.PingInterval = conformancePingInterval
	cfg.PingTimeout = conformancePingTimeout
	cfg.MaxPayload = conformanceMaxPayload
	cfg.CORSOrigins = []string{"*"}
	cfg.RecoveryWindow = 0
	// The suites open connections and send events as fast as they can from one address.
	cfg.Limits = Limits{WriteTimeout: cfg.Limits.WriteTimeout}
	return cfg
}

// connectTimeout is how long a connection may go without joining a namespace.
func (s *Server) connectTimeout() time.Duration {
	if s.cfg.Conformance {
		return conformanceConnectTimeout
	}
	return 45 * time.Second
}

// serveReference registers the reference handlers both suites expect instead of the product
// namespaces: "/" greets with the handshake auth and echoes "message" as "message-back" and
// "message-with-ack" through its ack; "/custom" only greets. It also starts the bare Engine.IO
// echo server that routes mounts at /engine.io/.
func (s *Server) serveReference() error {
	main, err := s.io.Of("/")
	if err != nil {
		return err
	}
	main.OnConnection(greet)
	main.OnEvent(func(sock *socketio.Socket, ev *socketio.Event) {
		args, err := ev.Values()
		if err != nil {
			return
		}
		switch ev.Name {
		case "message":
			_ = sock.Emit("message-back", args...)
		case "message-with-ack":
			ev.Ack(args...)
		}
	})
	custom, err := s.io.Of("/custom")
	if err != nil {
		return err
	}
	custom.OnConnection(greet)
	s.nsps["/"], s.nsps["/custom"] = main, custom // what the HTTP API serves, as for the product
	echo, err := engineio.NewServer(engineio.Config{
		PingInterval: s.cfg.PingInterval,
		PingTimeout:  s.cfg.PingTimeout,
		MaxPayload:   s.cfg.MaxPayload,
		CORSOrigins:  s.cfg.CORSOrigins,
		WriteTimeout: s.cfg.Limits.WriteTimeout,
		Open:         func(*engineio.Conn, *http.Request) engineio.Receiver { return echoReceiver{} },
	})
	if err != nil {
		return fmt.Errorf("server: start the Engine.IO echo server: %w", err)
	}
	s.echo = echo
	s.log.Warn().Msg("conformance mode: serving the protocol test suites' reference handlers, not the product namespaces")
	return nil
}

// greet emits the handshake auth back, as the reference server does on every connection.
func greet(s *socketio.Socket) {
	auth := s.Handshake().Auth
	if auth == nil {
		auth = map[string]any{}
	}
	_ = s.Emit("auth", auth)
}

// echoReceiver is the Engine.IO suite's server: every message goes back as it came, text as
// text and binary as binary.
type echoReceiver struct{}

func (echoReceiver) OnMessage(c *engineio.Conn, data []byte, binary bool) {
	if binary {
		_ = c.Send(engineio.NewBinaryMessage(data))
	} else {
		_ = c.Send(engineio.NewTextMessage(string(data)))
	}
}

func (echoReceiver) OnClose(*engineio.Conn, string) {}
