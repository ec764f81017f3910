package engineio

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// polling is the long-polling transport of a session: what the server sends waits in buf until
// the client's next GET takes it all; a GET that finds nothing waits (at most until the next
// ping, which is sent through it). Guarded by the session's lock.
type polling struct {
	buf      []*Message
	bufBytes int
	waiter   chan struct{} // set while a GET waits; closed to wake it
	getting  bool          // a GET is being served (waiting or writing)
	posting  bool          // a POST is being read
	final    *Message      // the last packet a closed session's pending or next poll gets
}

func (p *polling) push(msgs []*Message, limit int) error {
	for _, m := range msgs {
		p.buf = append(p.buf, m)
		p.bufBytes += m.Len()
	}
	if limit > 0 && p.bufBytes > limit {
		return errSlow
	}
	if p.waiter != nil {
		p.wake()
	}
	return nil
}

func (p *polling) drop() { p.buf, p.bufBytes = nil, 0 }

func (p *polling) wake() {
	close(p.waiter)
	p.waiter = nil
}

// servePoll answers a long-polling GET of session c.
func (s *Server) servePoll(c *Conn, w http.ResponseWriter, r *http.Request) {
	// During an upgrade the client sends "5" over the websocket and may poll right after, on
	// another connection. Handling what the websocket has already received first makes the
	// answer follow the order in which the client sent them.
	if probe := c.probing(); probe != nil {
		probe.inputPending()
	}

	c.mu.Lock()
	p := c.poll
	switch {
	case c.state != stateOpen && !c.lingering, p == nil:
		c.mu.Unlock()
		s.refuse(w, r, errUnknownSID)
		return
	case p.getting:
		c.mu.Unlock()
		c.closeWith(ReasonTransportError, false) // "overlap from client", as in Node
		s.refuse(w, r, errBadRequest)
		return
	case c.state == stateOpen && c.pingOverdue():
		// The timer heap may not have run yet; the client must not be served as if alive.
		c.mu.Unlock()
		c.closeWith(ReasonPingTimeout, false)
		s.refuse(w, r, errUnknownSID)
		return
	}
	p.getting = true
	if c.state == stateOpen && len(p.buf) == 0 && c.probe == nil {
		ch := make(chan struct{})
		p.waiter = ch
		c.mu.Unlock()
		select {
		case <-ch:
		case <-r.Context().Done():
			c.mu.Lock()
			aborted := p.waiter == ch
			if aborted {
				p.waiter = nil
				p.getting = false
			}
			c.mu.Unlock()
			if aborted {
				c.closeWith(ReasonTransportError, false) // "poll connection closed prematurely"
				return
			}
		}
		c.mu.Lock()
	}
	msgs := p.buf
	p.drop()
	final := p.final
	if c.lingering {
		c.lingering = false
		close(c.lingerDone)
		defer s.forget(c)
	}
	upgrading := c.probe != nil || c.upgraded || c.state != stateOpen
	c.mu.Unlock()

	if final != nil {
		msgs = append(msgs, final)
	} else if len(msgs) == 0 {
		msgs = append(msgs, msgNoop) // an upgrade in progress: let the client pause polling
	}
	s.writePayload(w, r, msgs, upgrading)

	c.mu.Lock()
	p.getting = false
	c.mu.Unlock()
}

// writePayload answers a poll with msgs as one payload. done tells the client's HTTP stack that
// the connection will not carry another poll of this session (it is closing or upgrading), so
// that it does not keep it idle.
func (s *Server) writePayload(w http.ResponseWriter, r *http.Request, msgs []*Message, done bool) {
	bp := getPayloadBuf()
	b := (*bp)[:0]
	for i, m := range msgs {
		b = appendPolling(b, m, i == 0)
	}
	h := w.Header()
	s.cors(h, r)
	h["Content-Type"] = textPlain
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	h["Cache-Control"] = noStore
	if done {
		h["Connection"] = connClose
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b
	putPayloadBuf(bp)
}

var (
	textPlain = []string{"text/plain; charset=UTF-8"}
	textHTML  = []string{"text/html"}
	noStore   = []string{"no-store"}
	connClose = []string{"close"}
	okLength  = []string{"2"}
)

// servePost reads a long-polling POST of session c and hands its packets over in order.
func (s *Server) servePost(c *Conn, w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	p := c.poll
	switch {
	case c.state != stateOpen || p == nil:
		c.mu.Unlock()
		s.refuse(w, r, errBadRequest)
		return
	case p.posting:
		c.mu.Unlock()
		c.closeWith(ReasonTransportError, false) // "data request overlap from client"
		s.refuse(w, r, errBadRequest)
		return
	}
	p.posting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		p.posting = false
		c.mu.Unlock()
	}()

	if r.Header.Get("Content-Type") == "application/octet-stream" {
		// Engine.IO v4 sends binary as base64 in a text payload.
		c.closeWith(ReasonTransportError, false)
		s.refuse(w, r, errBadRequest)
		return
	}
	bp := getPayloadBuf()
	defer putPayloadBuf(bp)
	body, err := s.readBody(w, r, (*bp)[:0])
	*bp = body[:0]
	switch {
	case errors.Is(err, errBodyTooLarge):
		c.closeWith(ReasonTransportError, false)
		s.refuse(w, r, errTooLarge)
		return
	case errors.Is(err, errBodyTimeout):
		c.closeWith(ReasonTransportError, false)
		s.refuse(w, r, errTimeout)
		return
	case err != nil:
		c.closeWith(ReasonTransportError, false) // "data request connection closed prematurely"
		return
	}
	derr := decodePayload(body, func(pk packet) bool { return c.deliver(pk) })
	if derr != nil {
		c.closeWith(ReasonParseError, false)
		s.refuse(w, r, errMalformed)
		return
	}
	h := w.Header()
	s.cors(h, r)
	h["Content-Type"] = textHTML
	h["Content-Length"] = okLength
	h["Cache-Control"] = noStore
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

var (
	errBodyTooLarge = errors.New("engineio: body too large")
	errBodyTimeout  = errors.New("engineio: body not received in time")
)

// readBody reads r's body into buf, at most MaxPayload bytes and within the body timeout. It
// grows buf as bytes arrive, never from the length the client declared.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, error) {
	limit := s.cfg.MaxPayload
	if r.ContentLength > limit {
		return buf, errBodyTooLarge
	}
	if s.cfg.BodyTimeout > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := cap(buf) - len(buf)
		if rest := limit + 1 - int64(len(buf)); int64(room) > rest {
			room = int(rest)
		}
		n, err := r.Body.Read(buf[len(buf) : len(buf)+room])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			if isTimeout(err) {
				return buf, errBodyTimeout
			}
			return buf, err
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getPayloadBuf() *[]byte { return payloadPool.Get().(*[]byte) }

func putPayloadBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // a one-off large payload: let the collector have it
	}
	payloadPool.Put(b)
}
