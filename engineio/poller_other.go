//go:build unix && !linux

package engineio

import (
	"sync"
	"syscall"
)

// poller is the portable reader: one goroutine per websocket, parked in Go's netpoller through
// syscall.RawConn.Read until the connection is readable. It holds no buffer while it waits (the
// bytes are read into a pooled one once they are there). Linux uses an epoll set instead
// (poller_linux.go), with no goroutine per connection.
type poller struct {
	wg sync.WaitGroup
}

// pollLoop exists so that wsTransport has the same fields on every platform.
type pollLoop struct{}

func newPoller() (*poller, error) { return &poller{}, nil }

func (p *poller) add(w *wsTransport) error {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for w.waitReadable() {
			for w.readable(nil) {
			}
		}
	}()
	return nil
}

func (p *poller) remove(*wsTransport) {}

func (p *poller) close() { p.wg.Wait() }

// maxReadBudget is how many bytes one readable call takes before it returns; the goroutine
// then simply calls again.
const maxReadBudget = 64 << 10

// waitReadable parks until the client sent something (or closed), without reading it: the read
// happens in readable, under the connection's read lock, so that it stays ordered with the
// reads a long-polling request makes during an upgrade (inputPending). It reports false once the
// connection is closed.
func (w *wsTransport) waitReadable() bool {
	err := w.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !isAgain(err)
	})
	return err == nil
}
