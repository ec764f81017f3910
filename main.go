// Command switchboard is a Socket.IO v4-compatible realtime server.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard/switchboard/server"
)

func main() {
	cfg, err := server.LoadConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, server.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(2)
	}
	log := server.NewLogger(os.Stdout, cfg.LogLevel, cfg.LogFormat)
	server.TuneRuntime(cfg, os.Getenv)

	srv, err := server.New(cfg, log)
	var cerr *server.ConfigError
	if errors.As(err, &cerr) { // a setting only checkable at start, e.g. the key file
		fmt.Fprintln(os.Stderr, "switchboard:", err)
		os.Exit(2)
	}
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		log.Error().Err(err).Msg("stopped with an error")
		os.Exit(1)
	}
}
