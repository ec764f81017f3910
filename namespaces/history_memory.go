package namespaces

import (
	"container/list"
	"context"
	"strconv"
	"sync"
)

// DefaultHistoryRooms is how many chat rooms a MemoryHistory keeps by default before it forgets
// the least recently used one: 10,000 rooms of 100 short messages stay within tens of MB.
const DefaultHistoryRooms = 10000

// MemoryHistory keeps chat history in this process: the newest perRoom messages of at most
// maxRooms rooms. When a new room would exceed maxRooms, the least recently used room (appended to
// or read) is forgotten. Ids never repeat within a room even then: a room created after an
// eviction continues above the highest id any evicted room had reached, so a forgotten room that
// comes back does not hand out ids its old members have seen.
type MemoryHistory struct {
	perRoom  int
	maxRooms int

	mu    sync.Mutex
	rooms map[string]*list.Element // of *roomHistory
	lru   *list.List               // front: most recently used
	// floor is the highest sequence number any evicted room had reached.
	floor uint64
}

var _ History = (*MemoryHistory)(nil)

// roomHistory is one room's ring of messages. Its messages' sequence numbers are contiguous:
// the newest is seq, the oldest seq-len(msgs)+1.
type roomHistory struct {
	name   string
	seq    uint64
	lastTS int64
	msgs   []Message // a ring once full: start is the oldest
	start  int
	// tail is closed once the last message given an id has been delivered; each Append waits for
	// the previous tail, so deliveries run in id order and never overlap.
	tail chan struct{}
	// inflight counts Appends that hold an id but have not delivered yet; such a room is not
	// evicted, so that its ids and delivery order carry on.
	inflight int
}

// NewMemoryHistory returns a history of the newest perRoom messages (0 keeps none, but ids are
// still handed out) of at most maxRooms rooms. It panics on a negative perRoom or maxRooms < 1.
func NewMemoryHistory(perRoom, maxRooms int) *MemoryHistory {
	if perRoom < 0 {
		panic("namespaces: NewMemoryHistory expects perRoom >= 0")
	}
	if maxRooms < 1 {
		panic("namespaces: NewMemoryHistory expects maxRooms > 0")
	}
	return &MemoryHistory{perRoom: perRoom, maxRooms: maxRooms, rooms: map[string]*list.Element{}, lru: list.New()}
}

// Append implements History.
func (h *MemoryHistory) Append(ctx context.Context, msg Message, deliver func(Message) error) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	h.mu.Lock()
	r := h.room(msg.Room, true)
	r.seq++
	msg.ID = strconv.FormatUint(r.seq, 10)
	// Timestamps never go back within a room, so id order and ts order agree.
	if msg.TS < r.lastTS {
		msg.TS = r.lastTS
	}
	r.lastTS = msg.TS
	prev, done := r.tail, make(chan struct{})
	r.tail = done
	r.inflight++
	h.mu.Unlock()

	defer func() {
		close(done)
		h.mu.Lock()
		r.inflight--
		h.mu.Unlock()
	}()
	<-prev
	if err := deliver(msg); err != nil {
		return Message{}, err
	}
	h.mu.Lock()
	r.push(msg, h.perRoom)
	h.mu.Unlock()
	return msg, nil
}

// Before implements History. An id that is not a decimal number is a bad_request; an unknown
// one means "older than that number".
func (h *MemoryHistory) Before(ctx context.Context, room, before string, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bound := uint64(0) // 0: no bound
	if before != "" {
		n, err := strconv.ParseUint(before, 10, 64)
		if err != nil {
			return nil, Errorf(CodeBadRequest, "before must be a message id")
		}
		if n == 0 {
			return []Message{}, nil
		}
		bound = n
	}
	if limit <= 0 {
		return []Message{}, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.room(room, false)
	if r == nil || len(r.msgs) == 0 {
		return []Message{}, nil
	}
	n := len(r.msgs)
	oldest := r.seq - uint64(n) + 1
	end := n // messages [0, end) are older than bound
	if bound != 0 {
		switch {
		case bound <= oldest:
			end = 0
		case bound-oldest < uint64(n):
			end = int(bound - oldest)
		}
	}
	begin := max(0, end-limit)
	out := make([]Message, 0, end-begin)
	for i := begin; i < end; i++ {
		out = append(out, r.msgs[(r.start+i)%n])
	}
	return out, nil
}

// Len reports how many rooms h holds.
func (h *MemoryHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms)
}

// room finds (and, with create, makes) the named room and marks it used. h.mu is held.
func (h *MemoryHistory) room(name string, create bool) *roomHistory {
	if e, ok := h.rooms[name]; ok {
		h.lru.MoveToFront(e)
		return e.Value.(*roomHistory)
	}
	if !create {
		return nil
	}
	if len(h.rooms) >= h.maxRooms {
		h.evict()
	}
	tail := make(chan struct{})
	close(tail)
	r := &roomHistory{name: name, seq: h.floor, tail: tail}
	h.rooms[name] = h.lru.PushFront(r)
	return r
}

// evict forgets the least recently used room without deliveries in flight. h.mu is held.
func (h *MemoryHistory) evict() {
	for e := h.lru.Back(); e != nil; e = e.Prev() {
		r := e.Value.(*roomHistory)
		if r.inflight > 0 {
			continue
		}
		h.floor = max(h.floor, r.seq)
		h.lru.Remove(e)
		delete(h.rooms, r.name)
		return
	}
}

// push stores msg as the newest, dropping the oldest beyond perRoom.
func (r *roomHistory) push(msg Message, perRoom int) {
	switch {
	case perRoom == 0:
		return
	case len(r.msgs) < perRoom:
		r.msgs = append(r.msgs, msg)
	default:
		r.msgs[r.start] = msg
		r.start = (r.start + 1) % len(r.msgs)
	}
}
