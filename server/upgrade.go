package server

import (
	"sync"
	"time"
)

// upgradeSettle is how long a long-polling GET waits for an upgrade whose probe was answered.
// It is the engine's own upgrade check interval: a client's poll caught in an upgrade would wait
// for the engine's next noop at most as long anyway.
const upgradeSettle = 100 * time.Millisecond

// upgrades closes a race of the polling→websocket upgrade. Once a client sent the upgrade packet
// over the websocket, the session is the websocket's, and a long-polling request with its sid is
// refused (400), as Node's server does. But the upgrade packet and such a request come on two
// connections: when the request is read before the upgrade packet (one reader goroutine per
// connection), the engine still serves it on the polling transport (both official protocol suites
// test this; it failed about 1 run in 15). Between the probe's answer and the upgrade, a client
// polls no more (it pauses polling to upgrade), so a GET that arrives then waits up to
// upgradeSettle for the upgrade; if it happened, the discarded polling transport answers 400.
//
// A nil *upgrades does nothing (a transport built without engineTransports).
type upgrades struct {
	mu      sync.Mutex
	pending map[string]chan struct{} // sid → closed when the upgrade is done or abandoned
	waiting int                      // requests in await
}

func newUpgrades() *upgrades { return &upgrades{pending: map[string]chan struct{}{}} }

// probed records that the websocket of session sid answers the probe: the upgrade may follow.
func (u *upgrades) probed(sid string) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.pending[sid]; !ok {
		u.pending[sid] = make(chan struct{})
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
	if ch, ok := u.pending[sid]; ok {
		close(ch)
		delete(u.pending, sid)
	}
}

// await waits, for a session whose upgrade is pending, until it settles or upgradeSettle passes.
func (u *upgrades) await(sid string) {
	if u == nil || sid == "" {
		return
	}
	u.mu.Lock()
	ch := u.pending[sid]
	if ch != nil {
		u.waiting++
	}
	u.mu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(upgradeSettle)
	defer func() {
		t.Stop()
		u.mu.Lock()
		u.waiting--
		u.mu.Unlock()
	}()
	select {
	case <-ch:
	case <-t.C:
	}
}

// waiters is how many requests wait in await (for tests).
func (u *upgrades) waiters() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.waiting
}
