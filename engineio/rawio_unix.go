//go:build unix

package engineio

import (
	"os"
	"syscall"
)

func isAgain(err error) bool { return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK }

// errDeadline is what a blocking write that ran past the write deadline fails with.
var errDeadline = os.ErrDeadlineExceeded
