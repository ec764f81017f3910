//go:build unix

package engineio

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxIovecs bounds the frames of one writev; the kernel refuses more than IOV_MAX (1024).
const maxIovecs = 256

// writev writes frames to a non-blocking descriptor in one system call and returns how many bytes
// the kernel took (0, not -1, when it took none); past maxIovecs frames the rest waits for the
// caller's next call.
func writev(fd int, frames [][]byte) (int, error) {
	frames = frames[:min(len(frames), maxIovecs)]
	var n int
	var err error
	if len(frames) == 1 {
		n, err = syscall.Write(fd, frames[0])
	} else {
		n, err = unix.Writev(fd, frames)
	}
	return max(n, 0), err
}

func isAgain(err error) bool { return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK }

// errDeadline is what a blocking write that ran past the write deadline fails with.
var errDeadline = os.ErrDeadlineExceeded
