package engineio

import (
	"sync"
)

// Reasons a connection closes with, as the layer above is told (the names Node's engine uses).
const (
	ReasonTransportClose = "transport close" // the client closed it
	ReasonTransportError = "transport error" // a read or write failed, a request was aborted
	ReasonPingTimeout    = "ping timeout"    // no pong within the ping timeout
	ReasonParseError     = "parse error"     // the client sent a packet that does not decode
	ReasonForcedClose    = "forced close"    // the server closed it
)

// Receiver is what the layer above (the Socket.IO server) does with a connection's messages.
type Receiver interface {
	// OnMessage is called for every message the client sends, in order, one call at a time per
	// connection, never after OnClose began. data is valid only during the call; a handler that
	// keeps it must copy it. It runs on the goroutine that read the message (the poller, or a
	// long-polling request), so it must not block: long work goes elsewhere.
	OnMessage(c *Conn, data []byte, binary bool)
	// OnClose is called once, when the connection closes, after every OnMessage returned.
	OnClose(c *Conn, reason string)
}

type connState uint8

const (
	stateOpen connState = iota
	stateClosed
)

// Conn is one Engine.IO session: a client known by its session id, whichever transport carries
// it at the moment (long-polling, then maybe websocket). Its methods are safe for concurrent use.
type Conn struct {
	srv  *Server
	id   string
	addr string
	recv Receiver

	mu          sync.Mutex
	state       connState
	poll        *polling     // the transport while the session is on long-polling
	ws          *wsTransport // the transport once on websocket
	probe       *wsTransport // the websocket of an upgrade in progress
	upgraded    bool
	reason      string
	dispatching bool // a call to OnMessage is running
	notified    bool // OnClose was called (or is due from the dispatcher)
	lingering   bool // closed, still keeping its last packets for the client's next poll
	lingerDone  chan struct{}

	imu   sync.Mutex // serializes deliveries to recv
	timer timerSlot  // guarded by srv.timers.mu
}

func newConn(srv *Server, id, addr string) *Conn {
	c := &Conn{srv: srv, id: id, addr: addr}
	c.timer.idx = -1
	return c
}

// ID is the session id.
func (c *Conn) ID() string { return c.id }

// RemoteAddr is the client's address as the handshake request came from it.
func (c *Conn) RemoteAddr() string { return c.addr }

// Transport is "polling" or "websocket", the transport carrying the session now.
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws != nil {
		return "websocket"
	}
	return "polling"
}

// Writable reports whether the transport would take a message at once: a websocket with nothing
// queued, or a long-polling session whose poll is waiting.
func (c *Conn) Writable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state != stateOpen:
		return false
	case c.ws != nil:
		return !c.ws.flushing && len(c.ws.queue) == 0
	default:
		return c.poll != nil && c.poll.waiter != nil
	}
}

// Send queues msgs for the client, in order and contiguous (nothing sent by another goroutine
// lands between them). It fails once the connection is closed; a client that reads so slowly
// that the write buffer limit is reached is disconnected.
func (c *Conn) Send(msgs ...*Message) error {
	return c.send(msgs, false)
}

// SendVolatile is Send for messages that may be lost: they are dropped (and false returned) when
// the transport cannot take them at once, i.e. a websocket with writes waiting or a long-polling
// session with no poll waiting.
func (c *Conn) SendVolatile(msgs ...*Message) bool {
	return c.send(msgs, true) == nil
}

var errNotWritable = errClosed

func (c *Conn) send(msgs []*Message, volatile bool) error {
	c.mu.Lock()
	if c.state != stateOpen || (c.ws == nil && c.poll == nil) {
		c.mu.Unlock()
		return errClosed
	}
	var err error
	if c.ws != nil {
		if volatile && (c.ws.flushing || len(c.ws.queue) > 0) {
			c.mu.Unlock()
			return errNotWritable
		}
		err = c.ws.write(msgs)
	} else {
		if volatile && c.poll.waiter == nil {
			c.mu.Unlock()
			return errNotWritable
		}
		err = c.poll.push(msgs, c.srv.cfg.MaxWriteBuffer)
	}
	c.mu.Unlock()
	if err != nil {
		if err == errSlow {
			c.srv.cfg.onSlowClient()
		}
		c.closeWith(ReasonTransportError, false)
	}
	return err
}

// Close ends the session from the server side: what was sent before is still delivered (a
// websocket gets its close frame behind it, a long-polling client gets it with a close packet on
// its next poll), and the layer above is told "forced close".
func (c *Conn) Close() { c.closeWith(ReasonForcedClose, true) }

// Closed reports whether the session is over.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state != stateOpen
}

// closeWith ends the session. graceful keeps what was queued for the client.
func (c *Conn) closeWith(reason string, graceful bool) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.state = stateClosed
	c.reason = reason
	c.srv.timers.cancel(c)
	ws, probe, p := c.ws, c.probe, c.poll
	c.probe = nil
	if ws != nil && graceful {
		ws.closeGracefully()
	}
	if p != nil {
		final := msgClose
		if reason == ReasonTransportClose {
			final = msgNoop // the client asked: its pending poll ends with a noop, as in Node
		}
		if !graceful {
			p.drop()
		}
		p.final = final
		if p.waiter != nil {
			p.wake()
		} else if graceful || reason == ReasonTransportClose {
			// A graceful close keeps its packets for the next poll. So does the client's own
			// close, briefly: its POST and its pending GET travel on two connections, and when
			// the POST is read first the GET must still end with the noop, not a 400.
			c.lingering = true
			c.lingerDone = make(chan struct{})
		}
	}
	recv := c.recv
	// Closed while the layer above was still in Open (it was handed c there, and another
	// goroutine can close it): Server.open tells it once Open has returned.
	notify := !c.dispatching && recv != nil
	if notify {
		c.notified = true
	}
	lingering := c.lingering
	c.mu.Unlock()

	if lingering {
		d := pollLinger
		if !graceful {
			d = clientCloseLinger
		}
		c.srv.linger(c, d)
	} else {
		c.srv.forget(c)
	}
	if ws != nil && !graceful {
		ws.shutdown()
	}
	if probe != nil {
		probe.shutdown()
	}
	if notify {
		recv.OnClose(c, reason)
	}
}

// deliver handles one packet from the client's transport. It reports whether the session is
// still open.
func (c *Conn) deliver(p packet) bool {
	switch p.typ {
	case PacketMessage:
		c.imu.Lock()
		defer c.imu.Unlock()
		c.mu.Lock()
		if c.state != stateOpen {
			c.mu.Unlock()
			return false
		}
		c.dispatching = true
		c.mu.Unlock()

		c.recv.OnMessage(c, p.data, p.binary)

		c.mu.Lock()
		c.dispatching = false
		open := c.state == stateOpen
		notify := !open && !c.notified
		if notify {
			c.notified = true
		}
		reason := c.reason
		c.mu.Unlock()
		if notify {
			c.recv.OnClose(c, reason)
		}
		return open
	case PacketPong:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state != stateOpen {
			return false
		}
		if _, kind := c.srv.timers.deadline(c); kind == timerPong {
			c.srv.timers.schedule(c, timerPing, c.srv.cfg.PingInterval)
		}
		return true
	case PacketClose:
		c.closeWith(ReasonTransportClose, false)
		return false
	case PacketPing:
		// In Engine.IO v4 the server pings; a client's ping is a protocol violation.
		c.closeWith(ReasonTransportError, false)
		return false
	default: // open, upgrade and noop carry nothing for an established session
		return !c.Closed()
	}
}

// heartbeat is the timer heap's callback.
func (c *Conn) heartbeat(kind timerKind) {
	switch kind {
	case timerPing:
		c.mu.Lock()
		if c.state != stateOpen {
			c.mu.Unlock()
			return
		}
		var err error
		if c.ws != nil {
			err = c.ws.write([]*Message{msgPing})
		} else {
			err = c.poll.push([]*Message{msgPing}, 0)
		}
		if err == nil {
			c.srv.timers.schedule(c, timerPong, c.srv.cfg.PingTimeout)
		}
		c.mu.Unlock()
		if err != nil {
			c.closeWith(ReasonTransportError, false)
		}
	case timerPong:
		c.closeWith(ReasonPingTimeout, false)
	}
}

// pingOverdue reports whether the last ping went unanswered for the ping timeout, even if the
// timer heap has not closed the session yet. The caller holds c.mu.
func (c *Conn) pingOverdue() bool {
	when, kind := c.srv.timers.deadline(c)
	return kind == timerPong && when <= c.srv.timers.now()
}

// probing returns the websocket of an upgrade in progress, if any.
func (c *Conn) probing() *wsTransport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probe
}

// probed answers the probe of w and ends the pending poll with a noop, so that the client can
// pause long-polling and finish the upgrade.
func (c *Conn) probed(w *wsTransport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe != w || c.state != stateOpen {
		return
	}
	w.probe = probeAnswered
	_ = w.writeRaw(msgPongProbe.frame)
	if c.poll != nil && c.poll.waiter != nil {
		c.poll.wake()
	}
}

// upgrade makes w the session's transport: what long-polling still held goes to w first, in
// order, and a pending poll ends with a noop. It reports false when the session is gone.
func (c *Conn) upgrade(w *wsTransport) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probe != w || c.state != stateOpen {
		return false
	}
	c.probe = nil
	w.probe = probeNone
	c.upgraded = true
	c.ws = w
	if p := c.poll; p != nil {
		msgs := p.buf
		p.drop()
		p.final = msgNoop
		if p.waiter != nil {
			p.wake()
		}
		c.poll = nil
		if len(msgs) > 0 {
			if err := w.write(msgs); err != nil {
				go c.closeWith(ReasonTransportError, false)
			}
		}
	}
	return true
}

// probeFailed forgets w as the session's upgrade; the session stays on long-polling.
func (c *Conn) probeFailed(w *wsTransport) {
	c.mu.Lock()
	if c.probe == w {
		c.probe = nil
	}
	c.mu.Unlock()
}
