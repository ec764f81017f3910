package hooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Event types of the events webhook (SPEC §8.3).
const (
	TypeSocketConnected    = "socket.connected"
	TypeSocketDisconnected = "socket.disconnected"
	TypeRoomOccupied       = "room.occupied"
	TypeRoomVacated        = "room.vacated"
	TypeChatMemberAdded    = "chat.member_added"
	TypeChatMemberRemoved  = "chat.member_removed"
)

// Event is one thing that happened, for the events webhook. Which fields are sent depends on
// Type: Socket (and Reason on a disconnect) for the socket events, Namespace and Room for the room
// events, Room and User for the chat events. The constructors below fill the right ones.
type Event struct {
	Type string
	// TS is when it happened, in unix milliseconds; zero is set to now by Notify.
	TS        int64
	Socket    Socket
	Reason    string
	Namespace string
	Room      string
	User      User
}

// SocketConnected is a socket having connected to a namespace.
func SocketConnected(s Socket) Event { return Event{Type: TypeSocketConnected, Socket: s} }

// SocketDisconnected is a socket having left, with Socket.IO's reason (e.g. "transport close").
func SocketDisconnected(s Socket, reason string) Event {
	return Event{Type: TypeSocketDisconnected, Socket: s, Reason: reason}
}

// RoomOccupied is a room's first socket having joined.
func RoomOccupied(namespace, room string) Event {
	return Event{Type: TypeRoomOccupied, Namespace: namespace, Room: room}
}

// RoomVacated is a room's last socket having left.
func RoomVacated(namespace, room string) Event {
	return Event{Type: TypeRoomVacated, Namespace: namespace, Room: room}
}

// ChatMemberAdded is a user having become present in a chat room (SPEC §4).
func ChatMemberAdded(room string, u User) Event {
	return Event{Type: TypeChatMemberAdded, Room: room, User: u}
}

// ChatMemberRemoved is a user no longer present in a chat room.
func ChatMemberRemoved(room string, u User) Event {
	return Event{Type: TypeChatMemberRemoved, Room: room, User: u}
}

func encodeEventNotice(e Event) []byte {
	var v any
	switch e.Type {
	case TypeSocketConnected:
		v = struct {
			Type   string     `json:"type"`
			TS     int64      `json:"ts"`
			Socket wireSocket `json:"socket"`
		}{e.Type, e.TS, e.Socket.wire()}
	case TypeSocketDisconnected:
		v = struct {
			Type   string     `json:"type"`
			TS     int64      `json:"ts"`
			Socket wireSocket `json:"socket"`
			Reason string     `json:"reason"`
		}{e.Type, e.TS, e.Socket.wire(), e.Reason}
	case TypeRoomOccupied, TypeRoomVacated:
		v = struct {
			Type      string `json:"type"`
			TS        int64  `json:"ts"`
			Namespace string `json:"namespace"`
			Room      string `json:"room"`
		}{e.Type, e.TS, e.Namespace, e.Room}
	case TypeChatMemberAdded, TypeChatMemberRemoved:
		v = struct {
			Type string `json:"type"`
			TS   int64  `json:"ts"`
			Room string `json:"room"`
			User User   `json:"user"`
		}{e.Type, e.TS, e.Room, e.User}
	default:
		panic(fmt.Sprintf("hooks: Notify: unknown event type %q", e.Type))
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("hooks: encode event: " + err.Error()) // strings and numbers only: not reachable
	}
	return b
}

// eventQueue is the events waiting for the webhook, oldest first, and the batch in flight.
type eventQueue struct {
	batchMax  int
	batchWait time.Duration
	queueMax  int
	retryBase time.Duration
	retryMax  time.Duration
	dropEvery time.Duration
	epoch     time.Time // queued times are offsets from it: 8 bytes an event, not 24

	// wake tells the sender that the queue got its first event or a full batch.
	wake chan struct{}

	mu sync.Mutex
	// closed is set when Close begins, under mu, so that an event is either queued before the
	// sender's last look or dropped and counted.
	closed   bool
	items    []queued // items[head:] are waiting
	head     int
	inFlight int // events in the batch being delivered
	// dropped counts overflow drops not yet logged; droppedAt is when they last were.
	dropped   int
	droppedAt time.Time
}

type queued struct {
	body []byte
	at   time.Duration // since epoch
}

func (q *eventQueue) init(cfg Config) {
	q.batchMax, q.batchWait, q.queueMax = cfg.BatchMax, cfg.BatchWait, cfg.QueueMax
	q.retryBase, q.retryMax = cfg.RetryBase, cfg.RetryMax
	q.dropEvery = time.Minute
	q.epoch = time.Now()
	q.wake = make(chan struct{}, 1)
}

func (q *eventQueue) waiting() int { return len(q.items) - q.head }

// Notify queues e for the events webhook and returns at once. When the queue is full the oldest
// waiting event is dropped for it. After Close began, e is dropped. It panics on an unknown Type.
func (c *Client) Notify(e Event) {
	if e.TS == 0 {
		e.TS = time.Now().UnixMilli()
	}
	body := encodeEventNotice(e)
	q := &c.ev
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		c.m.dropped[dropClosed].Inc()
		return
	}
	var logDrops int
	if q.waiting() >= q.queueMax {
		q.items[q.head] = queued{}
		q.head++
		q.dropped++
		c.m.dropped[dropOverflow].Inc()
		if now := time.Now(); now.Sub(q.droppedAt) >= q.dropEvery {
			logDrops, q.dropped, q.droppedAt = q.dropped, 0, now
		}
	}
	q.compact()
	q.items = append(q.items, queued{body: body, at: time.Since(q.epoch)})
	n := q.waiting()
	c.m.depth.Set(float64(n + q.inFlight))
	q.mu.Unlock()
	if n == 1 || n == q.batchMax {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	if logDrops > 0 {
		c.log.l.Warn().Str("hook", hookEvents).Int("dropped", logDrops).Int("queue_max", q.queueMax).
			Msg("events queue full: oldest events dropped")
	}
}

// compact moves the waiting events to the front once the dropped and sent ones are the larger
// part, so the slice stays within twice the queue's bound, and forgets the array when empty.
func (q *eventQueue) compact() {
	if q.head == 0 {
		return
	}
	if q.head == len(q.items) {
		q.items, q.head = nil, 0
		return
	}
	if q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}

// take removes up to batchMax events from the front for a batch, if a batch is due: full, or
// its first event waited batchWait, or flush (closing). Else it returns how long until one is
// due (0: until an event comes).
func (q *eventQueue) take(flush bool) (batch [][]byte, wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.waiting()
	if n == 0 {
		return nil, 0
	}
	if n < q.batchMax && !flush {
		if d := q.items[q.head].at + q.batchWait - time.Since(q.epoch); d > 0 {
			return nil, d
		}
	}
	n = min(n, q.batchMax)
	batch = make([][]byte, n)
	for i := range n {
		batch[i] = q.items[q.head+i].body
		q.items[q.head+i] = queued{}
	}
	q.head += n
	q.inFlight = n
	q.compact()
	return batch, 0
}

// runEvents is the webhook's sender: one batch at a time, in order, until Close.
func (c *Client) runEvents() {
	defer c.wg.Done()
	defer c.logDrops()
	q := &c.ev
	timer := time.NewTimer(0)
	defer timer.Stop()
	closing := c.closing
	for {
		flush := closing == nil
		batch, wait := q.take(flush)
		if batch == nil {
			if flush {
				return // closing and nothing left
			}
			var tc <-chan time.Time
			if wait > 0 {
				timer.Reset(wait)
				tc = timer.C
			}
			select {
			case <-q.wake:
			case <-tc:
			case <-closing:
				closing = nil
			case <-c.ctx.Done():
				c.dropQueued()
				return
			}
			timer.Stop()
			continue
		}
		if !c.deliver(batch, &closing) {
			c.dropQueued()
			return
		}
	}
}

// deliver posts the batch until a 2xx, waiting RetryBase doubling to RetryMax between tries.
// Close beginning cuts a wait short once (a last chance before shutdown) and restarts the
// backoff. It reports false when Close gave up, the batch counted as dropped.
func (c *Client) deliver(batch [][]byte, closing *chan struct{}) bool {
	q := &c.ev
	var buf bytes.Buffer
	buf.WriteString(`{"events":[`)
	for i, b := range batch {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString(`]}`)
	body := buf.Bytes()

	backoff := q.retryBase
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		start := time.Now()
		resp, herr := c.post(c.ctx, hookEvents, body)
		if herr == nil && (resp.status < 200 || resp.status > 299) {
			herr = &Error{Code: CodeUnavailable, Message: msgUnavailable, outcome: outcomeRefused, cause: fmt.Errorf("status %d", resp.status)}
			if resp.status < 400 {
				herr.outcome = outcomeInvalid
			}
		}
		c.finish(hookEvents, start, resp.status, herr)
		if herr == nil {
			q.mu.Lock()
			q.inFlight = 0
			c.m.depth.Set(float64(q.waiting()))
			q.mu.Unlock()
			c.m.delivered.Add(float64(len(batch)))
			return true
		}
		if c.ctx.Err() != nil {
			c.dropBatch(len(batch))
			return false
		}
		timer.Reset(backoff)
		select {
		case <-timer.C:
			backoff = min(2*backoff, q.retryMax)
		case <-*closing:
			*closing = nil
			timer.Stop()
			backoff = q.retryBase
		case <-c.ctx.Done():
			c.dropBatch(len(batch))
			return false
		}
	}
}

func (c *Client) dropBatch(n int) {
	q := &c.ev
	q.mu.Lock()
	q.inFlight = 0
	q.mu.Unlock()
	c.m.dropped[dropClosed].Add(float64(n))
	c.log.l.Warn().Str("hook", hookEvents).Int("dropped", n).Msg("events not delivered before close")
}

// dropQueued drops what is waiting when Close gave up.
func (c *Client) dropQueued() {
	q := &c.ev
	q.mu.Lock()
	n := q.waiting()
	q.items, q.head = nil, 0
	c.m.depth.Set(float64(q.inFlight))
	q.mu.Unlock()
	if n > 0 {
		c.m.dropped[dropClosed].Add(float64(n))
		c.log.l.Warn().Str("hook", hookEvents).Int("dropped", n).Msg("events not delivered before close")
	}
}

// logDrops logs the overflow drops not logged yet, as the sender stops.
func (c *Client) logDrops() {
	q := &c.ev
	q.mu.Lock()
	n := q.dropped
	q.dropped = 0
	q.mu.Unlock()
	if n > 0 {
		c.log.l.Warn().Str("hook", hookEvents).Int("dropped", n).Int("queue_max", q.queueMax).
			Msg("events queue full: oldest events dropped")
	}
}
