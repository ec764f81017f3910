// Package redistest runs a private redis-server for tests that need to stop and restart Redis.
package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server on a free loopback port, stopped when the test ends.
type Server struct {
	t      testing.TB
	Port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the running redis-server exited; nil when stopped
}

// Start runs redis-server on a free port below the ephemeral range and waits until it accepts
// connections. A missing redis-server fails the test: CI installs it.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (.ci/run installs it): %v", err)
	}
	for range 20 {
		s := &Server{t: t, Port: 20000 + rand.IntN(12000)}
		if err := s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("could not start redis-server on a free port")
	return nil
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

func (s *Server) start() error {
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited (port %d taken?)", s.Port)
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			_ = c.Close()
			s.exited = exited
			return nil
		}
		time.Sleep(10 * time.Millisecond) // polling a port that is coming up
	}
	_ = s.cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server did not listen on %d", s.Port)
}

// Stop kills the server (as a crash would) and waits until it is gone; stopping twice is fine.
func (s *Server) Stop() {
	if s.exited == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.exited = nil
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond) // the old listener may linger for a moment
	}
	s.t.Fatalf("restart redis-server on %d: %v", s.Port, err)
}

// Pause stops the server's process (SIGSTOP): connections stay open and nothing answers, as
// with a Redis that hangs or a network that drops everything. Resume ends it; a test that pauses
// resumes before it ends (Stop kills a paused server too).
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatalf("SIGSTOP redis-server: %v", err)
	}
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		s.t.Fatalf("SIGCONT redis-server: %v", err)
	}
}
