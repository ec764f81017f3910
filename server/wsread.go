package server

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engineparser "github.com/zishang520/socket.io/parsers/engine/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// readerSettle is how long the reader waits for a client's next message on the goroutine that
// handled the last one before it hands the wait to a new goroutine (see read). A client that
// sends more often than this keeps its reader goroutine; one that sends less often costs a
// goroutine start and its stack's growth per message (a few µs, see bench/OPTIMISATION.md), and
// leaves 2 KiB parked instead of 8.
const readerSettle = 500 * time.Millisecond

// read is the websocket transport's reader: the library's (transports/websocket.go, message),
// except for where it waits for the client between messages.
//
// An idle connection's reader spends its life waiting, on a stack that grew to 8 KiB while it
// handled messages (the engine, Socket.IO and the namespaces' handlers run on it). The GC halves a
// parked goroutine's stack only when less than a quarter of it is in use, the runtime's 800-byte
// reserve counted as in use: the library's reader, parked inside gorilla's NextReader, keeps
// 8 KiB, and even a shallow wait would keep 4. Ours waits for the client outside gorilla
// (wsConn.wait: RawConn.Read, the poller) and, once the client has been quiet for readerSettle,
// on a new goroutine (waitThenRead) whose stack stays at the 2 KiB it starts with; the goroutine
// that handled the messages ends, and its stack goes back to the runtime.
//
// Before it first waits, the handshake's answer is sent if it is still held (hijack.go): the
// client needs it before it sends anything.
func (w *deadlineWebsocket) read() {
	if w.gate != nil {
		w.gate.sendAnswer()
	}
	w.readFrom(false)
}

// waitThenRead waits for the client, then reads what it sent (see read).
func (w *deadlineWebsocket) waitThenRead() {
	w.gate.wait()
	w.readFrom(true)
}

// readFrom reads messages until the connection fails, and then closes it, or until it handed the
// wait to a new goroutine. woke: the wait for the first message is over and its deadline set.
func (w *deadlineWebsocket) readFrom(woke bool) {
	if w.readMessages(woke) {
		return
	}
	if w.gate != nil {
		w.gate.release()
		w.gate.leaveFair()
	}
	if !w.writes.IsShuttingDown() {
		w.conn.Emit("close")
	}
}

// readMessages reads messages until the connection fails (false) or the client has been quiet for
// readerSettle and a new goroutine waits for it (true).
//
// The goroutine's first message is handled on a warm worker (warm.go) when one is idle: this
// goroutine's stack is new and small, and a message can go deep (a namespace CONNECT runs the
// library's whole socket setup), which grew it two or three times, copying it each time (6% of
// the server's CPU connecting 10,000 clients). Later messages find the stack grown.
func (w *deadlineWebsocket) readMessages(woke bool) bool {
	fresh := true
	for ; ; woke = false {
		switch {
		case woke:
		case w.gate == nil:
			if w.idleTimeout > 0 {
				_ = w.conn.SetReadDeadline(time.Now().Add(w.idleTimeout))
			}
		case !w.gate.waitBriefly(readerSettle):
			go w.waitThenRead()
			return true
		}
		mt, message, err := w.conn.NextReader()
		if err != nil {
			w.failRead(err)
			return false
		}
		upgrading := w.upgrading
		if upgrading {
			// In the kernel, read ahead by the gate (which sets it first) or in gorilla's buffer,
			// until the message is handled the client's input is pending (upgrade.go).
			w.reading.Store(true)
		}
		if mt == ws.BinaryMessage || mt == ws.TextMessage {
			if fresh && w.warm != nil {
				w.warm.do(func() { w.message(mt, message) })
			} else {
				w.message(mt, message)
			}
		}
		if upgrading {
			w.reading.Store(false)
		}
		fresh = false
		if c, ok := message.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// readScratch holds messages while they are read, so that each one is then copied once, at its
// size: the library reads a message into a buffer that grows by 512 bytes at least, and its
// parser copies the packet into another one (together 38% of the bytes allocated per echo round
// trip, for messages of ~60 bytes).
var readScratch = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxScratch is the largest buffer kept in readScratch.
const maxScratch = 64 << 10

// message hands one message to the engine: a text message of Engine.IO v4 as the packet the
// library's parser would make of it, anything else as the data the library's reader would give
// its parser.
func (w *deadlineWebsocket) message(mt int, message io.Reader) {
	scratch := readScratch.Get().(*bytes.Buffer)
	defer func() {
		if scratch.Cap() <= maxScratch {
			scratch.Reset()
			readScratch.Put(scratch)
		}
	}()
	if _, err := scratch.ReadFrom(message); err != nil {
		// As the library: the next NextReader returns the error again and ends the loop.
		w.failRead(err)
		return
	}
	b := bytes.Clone(scratch.Bytes())
	if mt == ws.BinaryMessage {
		w.OnData(types.NewBytesBuffer(b))
		return
	}
	if w.Protocol() == 4 && len(b) > 0 {
		if typ, ok := engineparser.PACKET_TYPES_REVERSE[b[0]]; ok {
			if w.upgrading && typ == packet.PING && string(b[1:]) == "probe" {
				// Before the answer (see upgrade.go); the probe itself is handled by then, so a poll
				// that follows the answer finds no input pending unless more bytes came.
				w.reading.Store(false)
				w.upgrades.probed(w.upgradeSid, w)
			}
			w.OnPacket(&packet.Packet{Type: typ, Data: types.NewStringBuffer(b[1:])})
			if w.upgrading && typ == packet.UPGRADE {
				w.upgrades.settled(w.upgradeSid)
				// The session is this websocket's: its later messages keep no flag (no atomic
				// stores per message for the connection's life).
				w.upgrading = false
				if w.gate != nil {
					w.gate.got = nil
				}
			}
			return
		}
	}
	w.OnData(types.NewStringBuffer(b)) // the parser's to decode or refuse ("b…", an unknown type)
}

// fairAfter is how many messages within brief waits make a client busy enough for the fair
// poller (fairpoll.go): the first message of a new connection is its namespace CONNECT.
const fairAfter = 2

// readBufSize is the size of wsConn's read-ahead buffers.
const readBufSize = 4096

// readBufs are wsConn's read-ahead buffers. A connection holds one only while it has bytes gorilla
// has not taken yet, so an idle connection holds none.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// wsConn is a hijacked websocket's TCP connection as gorilla reads it (releasingWriter.Hijack
// makes it). It lets the reader wait for the client outside gorilla (wait; see read for why).
//
// That is only correct while gorilla holds nothing it has yet to parse: a frame already in its
// buffer would wait for the client's next message. So wsConn hands gorilla one frame at a time:
// it reads ahead into a pooled buffer, and a Read of gorilla's returns no byte past the end of
// the frame gorilla is reading. When gorilla has returned a whole message, its buffer is empty,
// and whatever the client sent next is in wsConn's buffer or in the kernel.
//
// Writes and Close go to the TCP connection. Only the reader goroutine reads and sets the read
// deadline.
type wsConn struct {
	net.Conn // a *net.TCPConn
	raw      syscall.RawConn
	fair     atomic.Pointer[fairWaiter] // set while the connection is in the fair poller's set (fairpoll.go)
	answer   atomic.Pointer[heldAnswer] // the handshake's answer while it waits for the first frame (hijack.go)
	closed   atomic.Bool                // Close was called
	got      *atomic.Bool               // set while wait reads the client's next bytes and after; nil unless the websocket may upgrade a session (upgrade.go)

	buf  *[]byte // from readBufs while data is not empty, else nil
	data []byte  // read ahead, not handed to gorilla yet: a slice of *buf up to its end
	left int64   // bytes of the frame gorilla is reading not handed to it yet; 0: data starts a frame
	err  error   // what the socket answered when wait read nothing; the next Read returns it
	full bool    // wait's last read filled the buffer: the kernel may hold more (see waitFair)

	// The read deadline: the engine's idle timeout (as the library's reader sets it, before each
	// message) or, while the reader waits briefly, briefUntil.
	idleTimeout time.Duration // 0: none
	briefUntil  time.Time     // zero: the deadline in force is the idle timeout's

	// quick counts, up to fairAfter, the messages the client sent within a brief wait since it was
	// last idle; from fairAfter on, its brief waits are in the fair poller's set. A client that
	// sent its namespace CONNECT and went quiet never joins it.
	quick uint8
}

// newWSConn wraps a hijacked connection, nil when it is not a TCP connection (then gorilla reads
// it as it is, and the reader waits inside NextReader). A connection the front door handed to
// net/http (a websocket handshake that was not the connection's first request, or not to
// /socket.io) is unwrapped once net/http has read what the front door had read.
func newWSConn(c net.Conn) *wsConn {
	if pc, ok := c.(*prefixedConn); ok && len(pc.prefix) == 0 {
		c = pc.Conn
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &wsConn{Conn: tc, raw: raw}
}

// empty reports whether nothing is read ahead: the next message is still to come from the socket.
func (c *wsConn) empty() bool { return len(c.data) == 0 && c.err == nil }

// waitBriefly waits up to about settle for the client; false if it sent nothing meanwhile, and
// then the idle timeout is the read deadline again. A busy client's messages reuse one brief
// deadline while at least half of it is left, so most of them set none.
func (c *wsConn) waitBriefly(settle time.Duration) bool {
	if !c.empty() {
		return true
	}
	if c.idleTimeout > 0 && c.idleTimeout <= settle {
		c.setIdleDeadline()
		c.wait()
		return true
	}
	if now := time.Now(); c.briefUntil.Sub(now) < settle/2 {
		c.briefUntil = now.Add(settle)
		_ = c.Conn.SetReadDeadline(c.briefUntil)
		if w := c.fair.Load(); w != nil {
			w.timer.Reset(settle)
		}
	}
	if c.wait() {
		if c.quick < fairAfter {
			c.quick++
		}
		return true
	}
	c.setIdleDeadline()
	return false
}

// setIdleDeadline makes the engine's idle timeout, from now, the read deadline. The connection
// leaves the fair poller's set: it waits in the runtime's poller from now on.
func (c *wsConn) setIdleDeadline() {
	c.leaveFair()
	c.quick = 0
	c.briefUntil = time.Time{}
	var t time.Time
	if c.idleTimeout > 0 {
		t = time.Now().Add(c.idleTimeout)
	}
	_ = c.Conn.SetReadDeadline(t)
}

// wait returns when the client has sent something or the connection failed, was closed or timed
// out (the Read that follows reports it): true; false when a brief wait's deadline passed. The
// first bytes are read here, into a buffer taken only when there are some.
func (c *wsConn) wait() bool {
	if !c.empty() {
		return true
	}
	var err error
	if c.briefUntil.IsZero() || c.quick < fairAfter || !c.joinFair() {
		err = c.raw.Read(c.readAhead)
	} else {
		err = c.waitFair()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && !c.briefUntil.IsZero() {
		return false
	}
	if err != nil && c.err == nil {
		c.err = err // the idle timeout, or the connection was closed
	}
	return true
}

// waitFair is wait's loop for a connection in the fair poller's set: it waits for a wake-up (the
// poller's, the deadline timer's or Close's) and then reads. It returns what RawConn.Read does:
// nil when it read or the socket failed, the deadline's or a closed connection's error.
//
// It does not try the socket before the first wake-up, which saves a read that finds nothing on
// most messages of a busy client: bytes that came after the last read raised an edge in the set,
// and so a wake-up, that is waiting or on its way (the set reports a connection that is readable
// when it joins, too). Only a read that filled the buffer may have left bytes without a new edge;
// then the socket is tried first. Wake-ups may be stale (the bytes were read meanwhile): the read
// then finds nothing and the loop waits again. The deadline is checked here: the waiter's timer
// may fire before the socket's own deadline has been marked expired.
func (c *wsConn) waitFair() error {
	w := c.fair.Load()
	try := c.full
	for {
		if !try {
			if !time.Now().Before(c.briefUntil) {
				return os.ErrDeadlineExceeded
			}
			<-w.ready
		}
		try = false
		done := false
		err := c.raw.Read(func(fd uintptr) bool {
			done = c.readAhead(fd)
			return true // one attempt: the poller says when to try again
		})
		if err != nil || done {
			return err
		}
	}
}

// joinFair puts the connection into the fair poller's set for the brief wait, false if there is
// no poller.
func (c *wsConn) joinFair() bool {
	if c.fair.Load() != nil {
		return true
	}
	p := theFairPoller()
	if p == nil {
		return false
	}
	w := p.add(c.raw, c.briefUntil)
	if w == nil {
		return false
	}
	c.fair.Store(w)
	if c.closed.Load() {
		w.wake() // Close ran before the Store and woke nobody
	}
	return true
}

// leaveFair takes the connection out of the fair poller's set, if it is in.
func (c *wsConn) leaveFair() {
	if w := c.fair.Swap(nil); w != nil {
		fair.remove(c.raw, w)
	}
}

// Close implements net.Conn: it closes the connection and wakes a reader waiting in the fair
// poller's set (the closed descriptor left it, so no event would).
func (c *wsConn) Close() error {
	c.sendAnswer()
	c.closed.Store(true)
	err := c.Conn.Close()
	if w := c.fair.Load(); w != nil {
		w.wake()
	}
	return err
}

// readAhead is wait's read from the socket (a RawConn.Read callback): false when it had nothing.
func (c *wsConn) readAhead(fd uintptr) bool {
	buf := readBufs.Get().(*[]byte)
	if c.got != nil {
		// Before the bytes leave the kernel: whoever finds none there then finds the flag
		// (inputPending reads them in that order).
		c.got.Store(true)
	}
	n, err := ignoringEINTR(func() (int, error) { return syscall.Read(int(fd), *buf) })
	if n <= 0 && c.got != nil {
		c.got.Store(false)
	}
	switch {
	case err == syscall.EAGAIN:
		readBufs.Put(buf)
		return false
	case n > 0:
		c.buf, c.data = buf, (*buf)[:n]
		c.full = n == len(*buf)
		return true
	}
	readBufs.Put(buf)
	if err != nil {
		c.err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	} else {
		c.err = io.EOF
	}
	return true
}

// Read implements net.Conn for gorilla: never past the end of the current frame.
func (c *wsConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.err != nil {
		err := c.err
		c.err = nil
		return 0, err
	}
	for c.left == 0 {
		if n, ok := frameSize(c.data); ok {
			c.left = n
			break
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	if len(c.data) == 0 {
		// Inside a frame with nothing read ahead: straight into gorilla's buffer.
		c.blocking()
		n, err := c.Conn.Read(p)
		c.left -= int64(n)
		return n, err
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	c.left -= int64(n)
	if len(c.data) == 0 {
		c.release()
	}
	return n, nil
}

// fill reads more after data (a frame header that is not whole yet), blocking.
func (c *wsConn) fill() error {
	if c.buf == nil {
		c.buf = readBufs.Get().(*[]byte)
		c.data = (*c.buf)[:0]
	}
	if cap(c.data)-len(c.data) < maxFrameHeader {
		c.data = (*c.buf)[:copy(*c.buf, c.data)]
	}
	c.blocking()
	n, err := c.Conn.Read(c.data[len(c.data):cap(c.data)])
	c.data = c.data[:len(c.data)+n]
	if len(c.data) == 0 {
		c.release()
	}
	return err
}

// blocking prepares a read that waits for the client inside a message: bounded by the idle
// timeout, as the library's reads are, not by a brief wait's deadline.
func (c *wsConn) blocking() {
	c.sendAnswer()
	if c.idleTimeout > 0 || !c.briefUntil.IsZero() {
		c.setIdleDeadline()
	}
}

// release gives the read-ahead buffer back; data is empty or no longer wanted.
func (c *wsConn) release() {
	if c.buf != nil {
		readBufs.Put(c.buf)
	}
	c.buf, c.data = nil, nil
}

// maxFrameHeader is the longest websocket frame header: 2 bytes, a 64-bit length, a mask key.
const maxFrameHeader = 14

// frameSize is the size (header and payload) of the frame b starts with, false when b does not
// hold its whole header yet. A length gorilla will refuse counts as the rest of the stream.
func frameSize(b []byte) (int64, bool) {
	if len(b) < 2 {
		return 0, false
	}
	n := 2
	size := int64(b[1] & 0x7f)
	switch size {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	if len(b) < n {
		return 0, false
	}
	switch size {
	case 126:
		size = int64(b[2])<<8 | int64(b[3])
	case 127:
		var u uint64
		for _, x := range b[2:10] {
			u = u<<8 | uint64(x)
		}
		if u > math.MaxInt64-maxFrameHeader {
			return math.MaxInt64, true
		}
		size = int64(u)
	}
	return int64(n) + size, true
}

// ignoringEINTR calls fn until it is not interrupted by a signal.
func ignoringEINTR(fn func() (int, error)) (int, error) {
	for {
		n, err := fn()
		if err != syscall.EINTR {
			return n, err
		}
	}
}
