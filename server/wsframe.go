package server

import (
	"runtime"
	"syscall"
	"unsafe"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// maxIovecs is the most frames one writev takes (IOV_MAX on Linux is 1024; a batch is rarely
// longer, and the rest goes in the next call).
const maxIovecs = 64

// appendFrame appends one unfragmented, unmasked server frame (RFC 6455 §5.2) to dst.
func appendFrame(dst []byte, opcode int, payload []byte) []byte {
	return append(appendFrameHeader(dst, opcode, len(payload)), payload...)
}

// appendFrameHeader appends the header of such a frame with a payload of n bytes.
func appendFrameHeader(dst []byte, opcode, n int) []byte {
	dst = append(dst, 0x80|byte(opcode))
	switch {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return dst
}

// encodeFrame frames an encoded Engine.IO packet: a string as a text message, bytes as binary.
func encodeFrame(data types.BufferInterface) []byte {
	opcode := ws.BinaryMessage
	if _, ok := data.(*types.StringBuffer); ok {
		opcode = ws.TextMessage
	}
	payload := data.Bytes()
	return appendFrame(make([]byte, 0, len(payload)+10), opcode, payload)
}

// writeFrames is one write(2) or writev(2) of frames on a non-blocking socket, as a raw system
// call: it cannot block, so the runtime is not told about it (with a plain Syscall, the scheduler
// hands the processor to another thread whenever a write outlasts a monitor tick, and both
// threads pay futex wake-ups and context switches for it: ~5% of fan-out CPU on one core).
func writeFrames(fd int, frames [][]byte) (int, error) {
	for {
		var n uintptr
		var errno syscall.Errno
		if len(frames) == 1 {
			b := frames[0]
			if len(b) == 0 {
				return 0, nil
			}
			n, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		} else {
			var iov [maxIovecs]syscall.Iovec
			k := 0
			for _, b := range frames {
				if k == len(iov) {
					break
				}
				if len(b) == 0 {
					continue
				}
				iov[k].Base = &b[0]
				iov[k].SetLen(len(b))
				k++
			}
			if k == 0 {
				return 0, nil
			}
			n, _, errno = syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
			runtime.KeepAlive(frames)
		}
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

// consumed drops the first n bytes of frames; a frame written in part keeps its tail.
func consumed(frames [][]byte, n int) [][]byte {
	for n > 0 && len(frames) > 0 {
		if n < len(frames[0]) {
			frames[0] = frames[0][n:]
			return frames
		}
		n -= len(frames[0])
		frames = frames[1:]
	}
	return frames
}
