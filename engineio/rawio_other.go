//go:build unix && !linux

package engineio

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// maxIovecs bounds the frames of one writev (the kernel takes at most IOV_MAX); past it the rest
// waits for the caller's next call.
const maxIovecs = 64

// writev writes frames to a non-blocking descriptor in one system call and returns how many bytes
// the kernel took (0, not -1, when it took none).
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

// readNB reads from a non-blocking descriptor.
func readNB(fd int, b []byte) (int, error) { return syscall.Read(fd, b) }
