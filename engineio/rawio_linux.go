//go:build linux && !race

package engineio

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The websocket's system calls on Linux: a read or write of a non-blocking descriptor and a poll
// of the epoll set with no timeout never block, so they are made as raw system calls, without
// telling the scheduler a goroutine entered one. A counted system call wakes the runtime's sysmon
// thread and lets it hand the goroutine's P to another thread when the call lasts past 20 µs (a
// loopback write does the receiver's TCP work inline and can): at a few thousand messages a
// second those thread switches were a third of the server's CPU.
//
// Built with -race, rawio_race_linux.go makes the same calls through package syscall instead:
// its Read and Write tell the race detector that what a goroutine did before writing to a
// socket happens before what the reader does after reading from it, as net.Conn does. Raw
// system calls say nothing, so a test that set a handler and then sent the packet that runs it
// was reported as a race.

// maxIovecs bounds the frames of one writev (the kernel takes at most IOV_MAX, 1024); past it the
// rest waits for the caller's next call.
const maxIovecs = 64

// writev writes frames to a non-blocking descriptor in one system call and returns how many bytes
// the kernel took (0, not -1, when it took none).
func writev(fd int, frames [][]byte) (int, error) {
	if len(frames) == 1 {
		return rawWrite(fd, frames[0])
	}
	frames = frames[:min(len(frames), maxIovecs)]
	var iov [maxIovecs]unix.Iovec
	k := 0
	for _, f := range frames {
		if len(f) == 0 {
			continue
		}
		iov[k].Base = &f[0]
		iov[k].SetLen(len(f))
		k++
	}
	if k == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// readNB reads from a non-blocking descriptor.
func readNB(fd int, b []byte) (int, error) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// epollPoll returns the events ready now in epfd, without waiting.
func epollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
