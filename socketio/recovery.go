package socketio

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"sync"
	"time"
)

// sessionStore is connection state recovery on one node (Node's SessionAwareAdapter): the
// sessions of sockets that dropped, and the events broadcast since, each with its offset. It is
// bounded in time (the recovery window) and in memory (maxBytes of encoded events): beyond the
// bound the oldest events go, and a session that needed one is not recovered (the client gets
// recovered: false, never a gap).
type sessionStore struct {
	window   time.Duration
	maxBytes int64

	mu       sync.Mutex
	sessions map[string]*Session // by private session id
	packets  []storedPacket      // oldest first
	first    int                 // packets[:first] are dropped, waiting to be compacted
	index    map[string]uint64   // offset → sequence number
	nextSeq  uint64
	bytes    int64
	swept    time.Time

	prefix string
}

type storedPacket struct {
	seq    uint64
	offset string
	opts   BroadcastOptions
	data   []any
	at     time.Time
	size   int64
}

func newSessionStore(window time.Duration, maxBytes int64) *sessionStore {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &sessionStore{
		window:   window,
		maxBytes: maxBytes,
		sessions: map[string]*Session{},
		index:    map[string]uint64{},
		prefix:   hex.EncodeToString(b[:]) + "-",
	}
}

// store gives p the next offset (appended to its data, as Node does, so that the client can
// report the last one it got) and keeps it, before it is delivered (see restore). It returns the
// packet to deliver.
func (st *sessionStore) store(p *Packet, opts BroadcastOptions) *Packet {
	size := estimateSize(p.Data) + 32 // the offset
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	seq := st.nextSeq
	st.nextSeq++
	offset := st.prefix + strconv.FormatUint(seq, 36)
	q := *p
	q.Data = append(slices.Clip(p.Data), offset)
	st.packets = append(st.packets, storedPacket{seq: seq, offset: offset, opts: cloneOpts(opts), data: q.Data, at: now, size: size})
	st.index[offset] = seq
	st.bytes += size
	st.trim(now)
	return &q
}

func cloneOpts(o BroadcastOptions) BroadcastOptions {
	o.Rooms = slices.Clone(o.Rooms)
	o.Except = slices.Clone(o.Except)
	return o
}

// estimateSize is an event's stored size: its JSON encoding, plus what the store itself keeps.
func estimateSize(data []any) int64 {
	b, err := appendJSON(nil, data)
	if err != nil {
		return 256
	}
	return int64(len(b)) + 128
}

// trim drops what is older than the window or beyond the memory bound; the caller holds mu.
func (st *sessionStore) trim(now time.Time) {
	for st.first < len(st.packets) {
		p := &st.packets[st.first]
		if st.bytes <= st.maxBytes && now.Sub(p.at) <= st.window {
			break
		}
		delete(st.index, p.offset)
		st.bytes -= p.size
		*p = storedPacket{}
		st.first++
	}
	if st.first > 1024 && st.first*2 > len(st.packets) {
		st.packets = append(st.packets[:0], st.packets[st.first:]...)
		st.first = 0
	}
	if now.Sub(st.swept) > 10*time.Second {
		st.swept = now
		for pid, s := range st.sessions {
			if now.Sub(s.DisconnectedAt) > st.window {
				delete(st.sessions, pid)
			}
		}
	}
}

// persist keeps a disconnected socket's session.
func (st *sessionStore) persist(s *Session) {
	if s.DisconnectedAt.IsZero() {
		s.DisconnectedAt = time.Now()
	}
	st.mu.Lock()
	st.sessions[s.PID] = s
	st.trim(time.Now())
	st.mu.Unlock()
}

// restore takes back the session pid with the events it missed after offset; nil when the
// session is unknown or expired, or offset is no longer stored. join runs before the events are
// collected: an event is kept before it is delivered, so it is collected here or delivered after
// join (or both: the namespace drops the second copy). join runs without the store's lock, since
// it puts the socket in its rooms and the room callbacks it runs may broadcast, which takes it.
func (st *sessionStore) restore(pid, offset string, now time.Time, join func(*Session)) *Session {
	st.mu.Lock()
	s := st.sessions[pid]
	if s == nil {
		st.mu.Unlock()
		return nil
	}
	delete(st.sessions, pid)
	_, known := st.index[offset]
	st.mu.Unlock()
	if now.Sub(s.DisconnectedAt) > st.window || !known {
		return nil
	}
	if join != nil {
		join(s)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	seq, ok := st.index[offset]
	if !ok { // dropped meanwhile (the memory bound)
		return nil
	}
	rooms := append(slices.Clone(s.Rooms), s.SID)
	restored := *s
	restored.Missed = nil
	for i := st.first; i < len(st.packets); i++ {
		p := &st.packets[i]
		if p.seq > seq && p.opts.Reaches(rooms) {
			restored.Missed = append(restored.Missed, p.data)
		}
	}
	return &restored
}

func (st *sessionStore) close() {
	st.mu.Lock()
	st.sessions = map[string]*Session{}
	st.packets, st.first, st.bytes = nil, 0, 0
	st.index = map[string]uint64{}
	st.mu.Unlock()
}

// stats reports what the store holds, for tests and metrics.
func (st *sessionStore) stats() (sessions, packets int, bytes int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.sessions), len(st.packets) - st.first, st.bytes
}
