package adapters

import (
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"github.com/zishang520/socket.io/v3/pkg/utils"
)

// sessions is connection state recovery for one namespace on one node, as the library's (and
// Node's) session-aware adapter keeps it: the sessions of disconnected sockets, and every
// broadcast event of the recovery window with its offset, so that a client coming back with its
// session id and the offset of the last event it processed gets its rooms, its data and the events
// it missed.
type sessions struct {
	window int64 // milliseconds a session and a packet are kept

	mu       sync.Mutex
	byPid    map[socket.PrivateSessionId]*socket.SessionWithTimestamp
	packets  []*socket.PersistedPacket // in the order kept
	first    uint64                    // the sequence number of packets[0]
	sequence map[string]uint64         // offset → sequence number, for the packets kept

	stopOnce sync.Once
	done     chan struct{}
}

func newSessions() *sessions {
	return &sessions{
		byPid:    map[socket.PrivateSessionId]*socket.SessionWithTimestamp{},
		sequence: map[string]uint64{},
		done:     make(chan struct{}),
	}
}

// start sets the window (milliseconds) and drops what falls out of it every interval, until stop.
func (s *sessions) start(window int64, interval time.Duration) {
	s.window = window
	ticker := time.NewTicker(interval)
	go func() {
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				s.expire(time.Now().UnixMilli() - window)
			case <-s.done:
				return
			}
		}
	}()
}

func (s *sessions) stop() { s.stopOnce.Do(func() { close(s.done) }) }

// expire drops the sessions disconnected and the packets emitted before threshold (ms).
func (s *sessions) expire(threshold int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, session := range s.byPid {
		if session.DisconnectedAt < threshold {
			delete(s.byPid, pid)
		}
	}
	n := 0
	for n < len(s.packets) && s.packets[n].EmittedAt < threshold {
		delete(s.sequence, s.packets[n].Id)
		s.packets[n] = nil
		n++
	}
	s.packets = s.packets[n:]
	s.first += uint64(n)
}

// persist keeps a disconnected socket's session.
func (s *sessions) persist(session *socket.SessionToPersist) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPid[session.Pid] = &socket.SessionWithTimestamp{SessionToPersist: session, DisconnectedAt: time.Now().UnixMilli()}
}

// keep gives a broadcast event its offset (appended to its arguments, where Socket.IO clients
// read it) and keeps it for the window.
func (s *sessions) keep(packet *parser.Packet, opts *socket.BroadcastOptions) {
	id := utils.YeastDate()
	packet.Data = append(utils.TryCast[[]any](packet.Data), id)
	kept := &socket.PersistedPacket{Id: id, EmittedAt: time.Now().UnixMilli(), Data: packet.Data, Opts: opts}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sequence[id] = s.first + uint64(len(s.packets))
	s.packets = append(s.packets, kept)
}

// restore returns the session pid and the events after offset that reached its rooms, or nil
// when the session is unknown or expired, or the offset is no longer kept.
func (s *sessions) restore(pid socket.PrivateSessionId, offset string) *socket.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	session, ok := s.byPid[pid]
	if !ok {
		return nil
	}
	if session.DisconnectedAt+s.window < time.Now().UnixMilli() {
		delete(s.byPid, pid)
		return nil
	}
	seq, ok := s.sequence[offset]
	if !ok {
		return nil
	}
	missed := []any{}
	for _, p := range s.packets[seq-s.first+1:] {
		if reaches(session.Rooms, p.Opts) {
			missed = append(missed, p.Data)
		}
	}
	return &socket.Session{SessionToPersist: session.SessionToPersist, MissedPackets: missed}
}

// reaches reports whether a broadcast with opts reached a socket in rooms: it named no room or
// one of them, and excepted none of them.
func reaches(rooms *types.Set[socket.Room], opts *socket.BroadcastOptions) bool {
	if opts == nil {
		return true
	}
	included := opts.Rooms == nil || opts.Rooms.Len() == 0
	if rooms == nil {
		return included
	}
	for _, room := range rooms.Keys() {
		if opts.Except != nil && opts.Except.Has(room) {
			return false
		}
		if !included && opts.Rooms.Has(room) {
			included = true
		}
	}
	return included
}
