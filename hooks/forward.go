package hooks

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// EventRequest is a client event forwarded to the backend (SPEC §8.2).
type EventRequest struct {
	// Socket is the sender as it is when Forward is called, rooms included.
	Socket Socket
	// Data is the socket's data from the connect hook; nil sends none.
	Data json.RawMessage
	// Event is the event's name.
	Event string
	// Args are the event's arguments, the ack left out.
	Args []json.RawMessage
}

type wireEvent struct {
	Socket wireSocket        `json:"socket"`
	Data   json.RawMessage   `json:"data,omitempty"`
	Event  string            `json:"event"`
	Args   []json.RawMessage `json:"args"`
}

func encodeEvent(req EventRequest) ([]byte, error) {
	args := req.Args
	if args == nil {
		args = []json.RawMessage{}
	}
	return json.Marshal(wireEvent{Socket: req.Socket.wire(), Data: req.Data, Event: req.Event, Args: args})
}

// EventResult is the backend's answer to a forwarded event: what to do, in the order join,
// leave, emit, ack, disconnect (SPEC §8.2). Slices are nil when their field was absent or null.
type EventResult struct {
	// Ack is the client's ack arguments: nil when absent (the ack gets {"data": null}), empty
	// but not nil for "ack": [].
	Ack        []json.RawMessage
	Emit       []Emit
	Join       []string
	Leave      []string
	Disconnect bool
}

// Emit is one emit the backend asks for.
type Emit struct {
	// Rooms is nil when absent: the emit goes to the sender only. Empty but not nil for
	// "rooms": [], which names no room.
	Rooms  []string
	Except []string
	// ToSelf is false when the backend sent "toSelf": false: a room emit then leaves the sender
	// out. Absent, it is true.
	ToSelf bool
	Event  string
	Args   []json.RawMessage
}

// keyQueue is the events of one key waiting to be sent. It exists, with its goroutine, only
// while the key has an event waiting or in flight.
type keyQueue struct {
	items []forwardItem
}

type forwardItem struct {
	body  []byte              // the request, encoded by Forward
	build func() EventRequest // or the request, built when it is sent (ForwardFunc)
	done  func(EventResult, error)
}

// Forward queues an event for the backend under key (a socket's id): events of one key are sent
// one at a time in the order of the Forward calls, and done is called with each answer before
// the key's next event is sent, so an answer's effects can be applied before it. done is called
// exactly once for every Forward that returned nil, on a goroutine of the Client; its error is
// an *Error (see Connect), wrapping ErrClosed when Close cut the event short. done should not
// block, since the key's next event waits for it, and must not call Close, which waits for it.
//
// Forward returns ErrBackpressure when key already has Config.MaxQueued events waiting (the
// one in flight is not waiting), ErrClosed after Close began, and an encoding error when an Arg
// or Data is not JSON. It panics on a nil done.
func (c *Client) Forward(key string, req EventRequest, done func(EventResult, error)) error {
	if done == nil {
		panic("hooks: Forward expects a done func")
	}
	body, err := encodeEvent(req)
	if err != nil {
		return fmt.Errorf("hooks: encode event: %w", err)
	}
	return c.enqueue(key, forwardItem{body: body, done: done})
}

// ForwardFunc is Forward for a request that is built when it is sent rather than when it is
// queued: build is called on the key's goroutine right before the request goes out, after the
// done of the key's previous event returned. So a socket's next event reports the rooms its
// previous answer joined, however soon the client sent it. An Arg or Data of build's request
// that is not JSON ends in done with a CodeInternal *Error instead of a Forward error. It panics
// on a nil build or done.
func (c *Client) ForwardFunc(key string, build func() EventRequest, done func(EventResult, error)) error {
	if build == nil || done == nil {
		panic("hooks: ForwardFunc expects a build and a done func")
	}
	return c.enqueue(key, forwardItem{build: build, done: done})
}

// enqueue adds an item to key's queue, starting the key's goroutine when it has none.
func (c *Client) enqueue(key string, item forwardItem) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	q := c.keys[key]
	start := q == nil
	if start {
		q = &keyQueue{}
		c.keys[key] = q
		c.wg.Add(1)
	} else if len(q.items) >= c.maxQueued {
		c.mu.Unlock()
		c.m.rejected.Inc()
		return ErrBackpressure
	}
	q.items = append(q.items, item)
	c.mu.Unlock()
	if start {
		c.work(func() { c.runKey(key, q) })
	}
	return nil
}

// workerIdle is how long a goroutine that served a key waits for another before it exits.
const workerIdle = 2 * time.Second

// work has a warm goroutine run fn (an idle one if there is, else a new one), so that a key's
// events are not sent from a fresh goroutine whose small stack grows again, through net/http,
// for every event of a socket that sends one at a time (measured: a tenth of the CPU of a
// forwarded event went to stack growth).
func (c *Client) work(fn func()) {
	select {
	case c.idle <- fn:
	default:
		c.workers.Add(1)
		go c.worker(fn)
	}
}

func (c *Client) worker(fn func()) {
	defer c.workers.Done()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		fn()
		t.Reset(workerIdle)
		select {
		case fn = <-c.idle:
		case <-t.C:
			return
		case <-c.ctx.Done():
			return
		}
	}
}

// runKey sends key's events one by one until its queue is empty, then forgets the key.
func (c *Client) runKey(key string, q *keyQueue) {
	defer c.wg.Done()
	for {
		if err := c.acquire(c.ctx); err != nil {
			c.failKey(key, q)
			return
		}
		c.mu.Lock()
		it := q.items[0]
		q.items[0] = forwardItem{}
		q.items = q.items[1:]
		c.mu.Unlock()

		if it.build != nil {
			var err error
			if it.body, err = encodeEvent(it.build()); err != nil {
				c.release()
				herr := &Error{Code: CodeInternal, Message: "internal error", outcome: outcomeInvalid, cause: fmt.Errorf("encode event: %w", err)}
				c.log.failed(hookEvent, outcomeInvalid, 0, herr)
				it.done(EventResult{}, herr)
				if c.forget(key, q) {
					return
				}
				continue
			}
		}
		start := time.Now()
		resp, herr := c.post(c.ctx, hookEvent, it.body)
		c.release()
		var res EventResult
		if herr == nil {
			res, herr = decodeEvent(resp.status, resp.body)
		}
		if herr = c.finish(hookEvent, start, resp.status, herr); herr != nil {
			it.done(EventResult{}, herr)
		} else {
			it.done(res, nil)
		}
		if c.forget(key, q) {
			return
		}
	}
}

// forget removes key once its queue is empty and reports whether it did: the key's goroutine
// then ends, and the key's next Forward starts another.
func (c *Client) forget(key string, q *keyQueue) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(q.items) == 0 {
		delete(c.keys, key)
		return true
	}
	return false
}

// failKey ends the key's waiting events with ErrClosed, once Close gave up.
func (c *Client) failKey(key string, q *keyQueue) {
	c.mu.Lock()
	items := q.items
	q.items = nil
	delete(c.keys, key)
	c.mu.Unlock()
	for _, it := range items {
		it.done(EventResult{}, unavailable(outcomeCanceled, ErrClosed))
	}
}

// decodeEvent reads the event hook's answer: a status under 500 and its body (at most the cap).
// A 200 with "error" is taken as the 4xx with it would be.
func decodeEvent(status int, body []byte) (EventResult, *Error) {
	if status == http.StatusNoContent {
		return EventResult{}, nil
	}
	if status >= 400 && status < 500 {
		return EventResult{}, decodeRefusal(status, body)
	}
	if status < 200 || status > 299 {
		return EventResult{}, invalid(fmt.Errorf("status %d", status))
	}
	var w struct {
		Ack        json.RawMessage `json:"ack"`
		Emit       json.RawMessage `json:"emit"`
		Join       json.RawMessage `json:"join"`
		Leave      json.RawMessage `json:"leave"`
		Disconnect *bool           `json:"disconnect"`
		Error      json.RawMessage `json:"error"`
	}
	if err := decodeObject(body, &w); err != nil {
		return EventResult{}, invalid(err)
	}
	if present(w.Error) {
		e, err := decodeError(w.Error)
		if err != nil {
			return EventResult{}, invalid(err)
		}
		return EventResult{}, e
	}
	var res EventResult
	var err error
	if res.Ack, err = decodeArgs("ack", w.Ack); err != nil {
		return EventResult{}, invalid(err)
	}
	if res.Join, err = decodeStrings("join", w.Join); err != nil {
		return EventResult{}, invalid(err)
	}
	if res.Leave, err = decodeStrings("leave", w.Leave); err != nil {
		return EventResult{}, invalid(err)
	}
	if res.Emit, err = decodeEmits(w.Emit); err != nil {
		return EventResult{}, invalid(err)
	}
	res.Disconnect = w.Disconnect != nil && *w.Disconnect
	return res, nil
}

func decodeEmits(raw json.RawMessage) ([]Emit, error) {
	items, err := decodeArgs("emit", raw)
	if err != nil || items == nil {
		return nil, err
	}
	out := make([]Emit, 0, len(items))
	for i, item := range items {
		var w struct {
			Rooms  json.RawMessage `json:"rooms"`
			Except json.RawMessage `json:"except"`
			ToSelf *bool           `json:"toSelf"`
			Event  *string         `json:"event"`
			Args   json.RawMessage `json:"args"`
		}
		if err := decodeObject(item, &w); err != nil {
			return nil, fmt.Errorf("emit[%d]: %w", i, err)
		}
		if w.Event == nil || *w.Event == "" {
			return nil, fmt.Errorf("emit[%d]: event is not a non-empty string", i)
		}
		e := Emit{Event: *w.Event, ToSelf: w.ToSelf == nil || *w.ToSelf}
		if e.Rooms, err = decodeStrings("rooms", w.Rooms); err != nil {
			return nil, fmt.Errorf("emit[%d]: %w", i, err)
		}
		if e.Except, err = decodeStrings("except", w.Except); err != nil {
			return nil, fmt.Errorf("emit[%d]: %w", i, err)
		}
		if e.Args, err = decodeArgs("args", w.Args); err != nil {
			return nil, fmt.Errorf("emit[%d]: %w", i, err)
		}
		if e.Args == nil {
			e.Args = []json.RawMessage{}
		}
		out = append(out, e)
	}
	return out, nil
}
