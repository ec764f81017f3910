//go:build linux && race

package engineio

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// The websocket's system calls on Linux in a -race build: through package syscall, whose Read
// and Write carry the race detector's happens-before edge between a socket's writer and its
// reader (rawio_linux.go has the raw calls of a normal build, and why).

const maxIovecs = 64

// writev writes frames one system call each, stopping at the first the kernel does not take
// whole, and returns how many bytes it took (0, not -1, when it took none).
func writev(fd int, frames [][]byte) (int, error) {
	frames = frames[:min(len(frames), maxIovecs)]
	total := 0
	for _, f := range frames {
		if len(f) == 0 {
			continue
		}
		n, err := syscall.Write(fd, f)
		if n > 0 {
			total += n
		}
		if err != nil {
			if total > 0 && isAgain(err) {
				return total, nil
			}
			return total, err
		}
		if n < len(f) {
			break
		}
	}
	return total, nil
}

// readNB reads from a non-blocking descriptor.
func readNB(fd int, b []byte) (int, error) { return syscall.Read(fd, b) }

// epollPoll returns the events ready now in epfd, without waiting.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	return unix.EpollWait(epfd, events, 0)
}
