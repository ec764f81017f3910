package server

import (
	"syscall"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/sys/unix"
)

// maxIovecs is the most buffers one writev takes (IOV_MAX on Linux).
const maxIovecs = 1024

// appendFrame appends one unfragmented, unmasked server frame (RFC 6455 §5.2) to dst.
func appendFrame(dst []byte, opcode int, payload []byte) []byte {
	dst = append(dst, 0x80|byte(opcode))
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, payload...)
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

// writeFrames is one write(2) or writev(2) of frames on a non-blocking socket.
func writeFrames(fd int, frames [][]byte) (int, error) {
	if len(frames) == 1 {
		return ignoringEINTR(func() (int, error) { return unix.Write(fd, frames[0]) })
	}
	return ignoringEINTR(func() (int, error) { return unix.Writev(fd, frames[:min(len(frames), maxIovecs)]) })
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			if n < 0 {
				n = 0
			}
			return n, err
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
