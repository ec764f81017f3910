package namespaces

import (
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// waiters reports how many holders and waiters the (room, user) lock has.
func (p *presence) waiters(room, userID string) int {
	p.locks.mu.Lock()
	defer p.locks.mu.Unlock()
	if l, ok := p.locks.locks[room+"\x00"+userID]; ok {
		return l.refs
	}
	return 0
}

// A decision in progress holds the (room, user) lock while it reads the members it fetched and
// their departure marks; forget must not drop a mark under it, or a tab that left after the fetch
// counts as present and nobody announces chat:user-left.
func TestForgetWaitsForDecisionsInProgress(t *testing.T) {
	p := newPresence()
	const sid = socket.SocketId("tab-1")
	unlockA := p.lock("busy", "ann")
	p.depart(sid, "ann", "busy")
	unlockA()
	p.depart(sid, "ann", "quiet")

	decision := p.lock("busy", "ann") // another tab of ann deciding about "busy"
	done := make(chan struct{})
	go func() {
		p.forget(sid)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.waiters("busy", "ann") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("forget never waited for the lock of the room a decision holds")
		}
		time.Sleep(time.Millisecond)
	}
	if !p.hasDeparted(sid, "busy") {
		t.Fatal("forget dropped the mark of a room whose decision is in progress")
	}
	decision()
	<-done
	if p.hasDeparted(sid, "busy") || p.hasDeparted(sid, "quiet") || p.tracked() != 0 {
		t.Fatalf("after forget: busy %v quiet %v tracked %d", p.hasDeparted(sid, "busy"), p.hasDeparted(sid, "quiet"), p.tracked())
	}
	p.forget(sid) // the library's double close runs "disconnect" twice
	if p.tracked() != 0 {
		t.Fatal("second forget left marks")
	}
}
