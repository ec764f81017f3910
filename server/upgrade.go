package server

import (
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// upgradeSettle bounds how long a long-polling GET waits for the upgrade packet its session's
// websocket has received but not handled yet.
const upgradeSettle = 50 * time.Millisecond

// upgrades closes a race of the polling→websocket upgrade. Once a client sent the upgrade packet
// over the websocket, the session is the websocket's, and a long-polling request with its sid is
// refused (400), as Node's server does. But the upgrade packet and such a request come on two
// connections: when the request is read before the upgrade packet (one reader goroutine per
// connection), the engine still serves it on the polling transport (both official protocol suites
// test this). A GET waits only when the session's websocket answered the probe and has input it
// has not handled yet (bytes in the kernel or a message being read): after the probe a client
// sends nothing on the websocket but the upgrade packet, so that input is the upgrade, and the
// GET waits up to upgradeSettle for it; if it happened, the discarded polling transport answers
// 400. A GET that arrives while the websocket is quiet is served at once: that is the poll a
// client waits for before it sends the upgrade packet. (A first version held every GET after the
// probe for up to 100 ms; socket.io-client's upgrades then lost an ack or stalled now and then.)
//
// A nil *upgrades does nothing (a transport built without engineTransports).
type upgrades struct {
	mu      sync.Mutex
	pending map[string]*pendingUpgrade // sid → the websocket that answered the probe
	waiting int                        // requests in await
	settle  time.Duration              // upgradeSettle; tests wait longer
}

type pendingUpgrade struct {
	ws   *deadlineWebsocket
	done chan struct{} // closed when the upgrade is done or abandoned
}

func newUpgrades() *upgrades {
	return &upgrades{pending: map[string]*pendingUpgrade{}, settle: upgradeSettle}
}

// probed records that ws, the websocket of session sid, answers the probe: the upgrade may follow.
func (u *upgrades) probed(sid string, ws *deadlineWebsocket) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.pending[sid]; !ok {
		u.pending[sid] = &pendingUpgrade{ws: ws, done: make(chan struct{})}
	}
}

// settled records that the upgrade of sid happened (the engine took the upgrade packet) or will
// not (the websocket closed).
func (u *upgrades) settled(sid string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if p, ok := u.pending[sid]; ok {
		close(p.done)
		delete(u.pending, sid)
	}
}

// await waits, for a session whose websocket answered the probe and has input it has not handled
// yet, until the upgrade settles or upgradeSettle passes.
func (u *upgrades) await(sid string) {
	if u == nil || sid == "" {
		return
	}
	u.mu.Lock()
	p, settle := u.pending[sid], u.settle
	u.mu.Unlock()
	if p == nil || !p.ws.inputPending() {
		return
	}
	u.mu.Lock()
	u.waiting++
	u.mu.Unlock()
	t := time.NewTimer(settle)
	defer func() {
		t.Stop()
		u.mu.Lock()
		u.waiting--
		u.mu.Unlock()
	}()
	select {
	case <-p.done:
	case <-t.C:
	}
}

// waiters is how many requests wait in await (for tests).
func (u *upgrades) waiters() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.waiting
}

// inputPending reports whether the kernel holds bytes the websocket has not read yet or it is
// reading or handling a message. The kernel is asked first: the reader sets the flag before it
// takes the bytes from the kernel (wsConn.wait) and clears it once their message is handled, so
// bytes that came before this call are found in one place or the other. (In the other order, the
// flag could be read just before the reader set it and the kernel asked just after it read.)
func (w *deadlineWebsocket) inputPending() bool {
	if w.raw != nil && unreadBytes(w.raw) > 0 {
		return true
	}
	return w.reading.Load()
}

// unreadBytes is how many bytes the kernel holds for the socket behind raw that were not read
// (0 when it cannot tell: a closed socket).
func unreadBytes(raw syscall.RawConn) int {
	n := 0
	_ = raw.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n
}

// settleFor sets how long await waits (for tests).
func (u *upgrades) settleFor(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.settle = d
}
