package server

// hooks.go: the backend hooks of SPEC §8 wired into the node. Package hooks owns the requests
// (bodies, signatures, timeouts, order, batching, retries, metrics); this file decides what a
// socket's connect and events ask and what the answers do to the socket. The events webhook's
// room changes are in hooks_rooms.go.
//
// Where each hook sits:
//   - connect: a connect middleware of every product namespace (/, /chat, /relay and the
//     --namespaces ones; never /admin), right after authentication and before the namespace's
//     own middlewares, so that the user it sets is the one whose user room the socket joins.
//   - event: the namespaces' Fallback (the events no built-in handler takes on /, /chat and
//     /relay, and every event of the --namespaces ones). /relay forwards too: SPEC §8.2 names /
//     and /chat, written before /relay existed, and an event that /relay ignores is as much the
//     app's as one that /chat ignores.
//   - events: OnConnection/OnDisconnect (socket.*), the namespaces' room changes through cluster
//     presence (room.*, hooks_rooms.go), chat presence (chat.*).
//
// A socket's events reach the backend one at a time (hooks.Client.ForwardFunc, keyed by the
// socket id), and each request is built when it is sent, after the previous answer was applied:
// an event sent right after one whose answer joins a room reports that room.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/hooks"
	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// adminNamespace is never given hooks: it is the admin UI's, not the app's (SPEC §10).
const adminNamespace = "/admin"

// backendHooks is the node's side of SPEC §8. A nil *backendHooks is a node without hooks: every
// method does nothing and fallback is nil.
type backendHooks struct {
	client   *hooks.Client
	log      zerolog.Logger
	errs     *sparseLog
	metrics  *Metrics
	presence func(name string) socketio.Presence

	connect   bool     // --hook-connect
	headers   []string // --hook-headers, lower-case
	anonymous bool     // no JWT: the connect hook may set the user
	maxRooms  int      // Limits.MaxRoomsPerSocket (0: none)

	live  liveCount // sockets connected and not yet through their disconnect callbacks
	mu    sync.Mutex
	rooms []*occupancy
}

// newBackendHooks builds the hooks cfg asks for; nil without --hook-url (or in conformance mode,
// which serves the suites' namespaces only).
func (s *Server) newBackendHooks() (*backendHooks, error) {
	if s.cfg.HookURL == "" || s.cfg.Conformance {
		return nil, nil
	}
	log := s.log.With().Str("component", "hooks").Logger()
	client, err := hooks.New(hooks.Config{
		URL:        s.cfg.HookURL,
		Secret:     s.cfg.HookSecret,
		Timeout:    s.cfg.HookTimeout,
		Logger:     s.log,
		Registerer: s.metrics.Registry(),
	})
	if err != nil {
		return nil, fmt.Errorf("server: start hooks: %w", err)
	}
	return &backendHooks{
		client:    client,
		log:       log,
		errs:      newSparseLog(time.Second),
		metrics:   s.metrics,
		presence:  s.backend.Presence,
		connect:   s.cfg.HookConnect,
		headers:   s.cfg.HookHeaders,
		anonymous: s.auth.Anonymous(),
		maxRooms:  s.cfg.Limits.MaxRoomsPerSocket,
	}, nil
}

// fallback is the event hook as a namespaces.Fallback, nil without hooks.
func (h *backendHooks) fallback() namespaces.Fallback {
	if h == nil {
		return nil
	}
	return h.forward
}

// install puts the connect hook and the room watch on nsp; serveNamespaces calls it right after
// the authentication middleware.
func (h *backendHooks) install(nsp *socketio.Namespace) {
	if h == nil || nsp.Name() == adminNamespace {
		return
	}
	if h.connect {
		nsp.Use(h.connectMiddleware)
	}
	occ := newOccupancy(nsp.Name(), h.presence(roomsPresence(nsp.Name())), h.client.Notify, h.log)
	h.mu.Lock()
	h.rooms = append(h.rooms, occ)
	h.mu.Unlock()
	nsp.OnRoom(occ.changed)
}

// observe reports nsp's sockets to the events webhook; serveNamespaces calls it after the
// namespace registered its own callbacks, so that a socket's disconnection is counted done once
// the namespace's callbacks (chat presence) ran.
func (h *backendHooks) observe(nsp *socketio.Namespace) {
	if h == nil || nsp.Name() == adminNamespace {
		return
	}
	nsp.OnConnection(func(s *socketio.Socket) {
		h.live.add(1)
		h.client.Notify(hooks.SocketConnected(hookSocket(s, namespaces.IdentityOf(s))))
	})
	nsp.OnDisconnect(func(s *socketio.Socket, reason string) {
		h.client.Notify(hooks.SocketDisconnected(hookSocket(s, namespaces.IdentityOf(s)), reason))
		h.live.add(-1)
	})
}

// watchChat reports chat presence to the events webhook.
func (h *backendHooks) watchChat(c *namespaces.Chat) {
	if h == nil {
		return
	}
	c.OnMember(func(room string, u namespaces.User, present bool) {
		if present {
			h.client.Notify(hooks.ChatMemberAdded(room, hooks.User(u)))
		} else {
			h.client.Notify(hooks.ChatMemberRemoved(room, hooks.User(u)))
		}
	})
}

// close ends the hooks at shutdown, once Socket.IO closed every socket: it waits for the
// sockets' disconnect callbacks and the room changes they made to be queued, then flushes the
// events webhook, all within ctx.
func (h *backendHooks) close(ctx context.Context) {
	if h == nil {
		return
	}
	if err := h.live.wait(ctx); err != nil {
		h.log.Warn().Msg("shutdown: sockets' disconnections not all reported before the deadline")
	}
	h.mu.Lock()
	rooms := h.rooms
	h.mu.Unlock()
	for _, occ := range rooms {
		if err := occ.close(ctx); err != nil {
			h.log.Warn().Str("nsp", occ.nsp).Msg("shutdown: room changes not all reported before the deadline")
		}
	}
	if err := h.client.Close(ctx); err != nil {
		h.log.Warn().Msg("shutdown: events not all delivered to the backend before the deadline")
	}
}

// hookSocket is s as hook bodies show it.
func hookSocket(s *socketio.Socket, id namespaces.Identity) hooks.Socket {
	return hooks.Socket{ID: s.ID(), Namespace: s.Namespace().Name(), User: hooks.User(id.User), Rooms: namespaces.SocketRooms(s)}
}

// Auth and query fields the connect hook is not told: tokens (SPEC §8: hook bodies never carry
// one) and socket.io-client's recovery session (pid is the private id that would let its holder
// take the session over).
var (
	hiddenAuth  = map[string]bool{"token": true, "pid": true, "offset": true}
	hiddenQuery = map[string]bool{"token": true}
)

// connectMiddleware asks the backend whether s may connect (SPEC §8.1) and applies its answer:
// the user (on an anonymous server only), the rooms (joined now, before the CONNECT answer), the
// data (kept in the identity for later hooks).
func (h *backendHooks) connectMiddleware(s *socketio.Socket) error {
	id := namespaces.IdentityOf(s)
	hs := s.Handshake()
	req := hooks.ConnectRequest{
		Socket:  hooks.Socket{ID: s.ID(), Namespace: s.Namespace().Name(), User: hooks.User(id.User)},
		Auth:    make(map[string]json.RawMessage, len(hs.Auth)),
		Headers: make(map[string]string, len(h.headers)),
		Address: hs.Address,
		Query:   make(map[string]string, len(hs.Query)),
	}
	for k, v := range hs.Auth {
		if hiddenAuth[k] {
			continue
		}
		raw, err := socketio.MarshalJSON(v)
		if err != nil {
			continue // decoded from JSON or msgpack: not reachable
		}
		req.Auth[k] = raw
	}
	for _, name := range h.headers {
		if v := s.Header(name); v != "" {
			req.Headers[name] = v
		}
	}
	for k, v := range hs.Query {
		if !hiddenQuery[k] && len(v) > 0 {
			req.Query[k] = v[0]
		}
	}
	res, err := h.client.Connect(s.Context(), req)
	if err != nil {
		ce := clientError(err) // hooks logged it
		return &socketio.ConnectError{Message: ce.Code, Data: ce}
	}
	if res.User != nil {
		if h.anonymous {
			id.User = namespaces.User{ID: res.User.ID, Name: res.User.Name}
			if id.User.Name == "" {
				id.User.Name = id.User.ID
			}
		} else {
			h.errs.warn(h.log, "connect-user", "the connect hook answered a user for a socket its JWT identifies: ignored (the token's user stays)",
				s.Namespace().Name(), s.ID())
		}
	}
	if h.maxRooms > 0 && len(res.Rooms) > h.maxRooms {
		h.errs.error(h.log, "connect-rooms", fmt.Sprintf("the connect hook answered more than %d rooms: connect refused", h.maxRooms), s.Namespace().Name(), s.ID())
		return internalConnectError()
	}
	for _, r := range res.Rooms {
		if !namespaces.ValidRoomName(r) || !id.MayJoin(r) {
			h.errs.error(h.log, "connect-rooms", "the connect hook answered a room the room rules refuse (name, user: room or rooms claim): connect refused",
				s.Namespace().Name(), s.ID())
			return internalConnectError()
		}
	}
	id.Data = res.Data
	namespaces.SetIdentity(s, id)
	s.Join(res.Rooms...)
	return nil
}

func internalConnectError() error {
	e := namespaces.Errorf(namespaces.CodeInternal, "the app backend gave an invalid answer")
	return &socketio.ConnectError{Message: e.Code, Data: e}
}

// clientError is what a client is told of a hook that did not accept: the backend's own code
// and message for a refusal, unavailable or internal otherwise.
func clientError(err error) *namespaces.Error {
	var herr *hooks.Error
	if errors.As(err, &herr) {
		return &namespaces.Error{Code: herr.Code, Message: herr.Message}
	}
	return namespaces.Errorf(namespaces.CodeUnavailable, "the app backend is unavailable")
}

// forward is the event hook (SPEC §8.2): it queues ev for the backend and returns; the answer is
// applied by apply, on the hooks client's goroutine for the socket.
func (h *backendHooks) forward(s *socketio.Socket, ev *socketio.Event) {
	args := make([]json.RawMessage, ev.Args.Len())
	for i := range args {
		raw, err := ev.Args.JSON(i)
		if err != nil {
			ev.Ack(namespaces.ErrorReply(namespaces.Errorf(namespaces.CodeBadRequest, "argument %d is not JSON", i)))
			return
		}
		args[i] = raw
	}
	build := func() hooks.EventRequest {
		id := namespaces.IdentityOf(s)
		return hooks.EventRequest{Socket: hookSocket(s, id), Data: id.Data, Event: ev.Name, Args: args}
	}
	err := h.client.ForwardFunc(s.ID(), build, func(res hooks.EventResult, err error) { h.apply(s, ev, res, err) })
	switch {
	case errors.Is(err, hooks.ErrBackpressure):
		h.metrics.Limited("hook_queue")
		ev.Ack(namespaces.ErrorReply(namespaces.Errorf(namespaces.CodeRateLimited, "too many events waiting for the app backend")))
	case err != nil:
		ev.Ack(namespaces.ErrorReply(clientError(err)))
	}
}

// apply does what the backend answered to ev, in the order join, leave, emit, ack, disconnect.
// A join the room rules refuse is skipped and the ack gets its error (forbidden; internal for a
// name that is no room name, the backend's bug); an emit the cluster cannot take makes the ack
// unavailable. The first such error is the ack's; the rest of the answer is still done.
func (h *backendHooks) apply(s *socketio.Socket, ev *socketio.Event, res hooks.EventResult, err error) {
	if err != nil {
		ev.Ack(namespaces.ErrorReply(clientError(err)))
		return
	}
	var fail *namespaces.Error
	failed := func(e *namespaces.Error) {
		if fail == nil {
			fail = e
		}
	}
	nspName := s.Namespace().Name()
	id := namespaces.IdentityOf(s)
	for _, r := range res.Join {
		switch {
		case !namespaces.ValidRoomName(r):
			h.errs.error(h.log, "event-join", "the event hook answered a join of a name that is no room name: skipped", nspName, s.ID())
			failed(namespaces.Errorf(namespaces.CodeInternal, "the app backend gave an invalid answer"))
		case !id.MayJoin(r):
			failed(namespaces.Errorf(namespaces.CodeForbidden, "not allowed to join %q", r))
		case h.maxRooms > 0 && !s.In(r) && roomsCounted(s, id) >= h.maxRooms:
			h.metrics.Limited("rooms")
			failed(namespaces.Errorf(namespaces.CodeForbidden, "a socket may be in at most %d rooms", h.maxRooms))
		default:
			s.Join(r)
		}
	}
	own := namespaces.UserRoom(id.User.ID)
	for _, r := range res.Leave {
		if r == own {
			failed(namespaces.Errorf(namespaces.CodeForbidden, "the user room %q cannot be left", own))
			continue
		}
		s.Leave(r)
	}
	for _, e := range res.Emit {
		if e := h.emit(s, e); e != nil {
			failed(e)
		}
	}
	switch {
	case fail != nil:
		ev.Ack(namespaces.ErrorReply(fail))
	case res.Ack == nil:
		ev.Ack(namespaces.DataReply(nil))
	default:
		args, err := plainArgs(res.Ack)
		if err != nil {
			ev.Ack(namespaces.ErrorReply(namespaces.Errorf(namespaces.CodeInternal, "the app backend gave an invalid answer")))
			break
		}
		ev.Ack(args...)
	}
	if res.Disconnect {
		s.Disconnect(false)
	}
}

// emit does one emit of an answer: to the socket alone without rooms, else to the rooms (and
// the rooms' other nodes), the sender left out with toSelf false. "rooms": [] names no room and
// sends nothing (an empty selection would be the whole namespace).
func (h *backendHooks) emit(s *socketio.Socket, e hooks.Emit) *namespaces.Error {
	if socketio.ReservedEvents[e.Event] {
		h.errs.error(h.log, "event-emit", "the event hook answered an emit of a reserved event name: skipped", s.Namespace().Name(), s.ID())
		return namespaces.Errorf(namespaces.CodeInternal, "the app backend gave an invalid answer")
	}
	if e.Rooms != nil && len(e.Rooms) == 0 {
		return nil
	}
	args, err := plainArgs(e.Args)
	if err != nil {
		return namespaces.Errorf(namespaces.CodeInternal, "the app backend gave an invalid answer")
	}
	if e.Rooms == nil {
		err = s.Emit(e.Event, args...)
	} else {
		op := s.Namespace().To(e.Rooms...)
		if len(e.Except) > 0 {
			op = op.Except(e.Except...)
		}
		if !e.ToSelf {
			op = op.Except(s.ID())
		}
		err = op.Emit(e.Event, args...)
	}
	switch {
	case err == nil, errors.Is(err, socketio.ErrDisconnected):
		return nil
	case errors.Is(err, socketio.ErrUnavailable):
		return namespaces.AsClientError(err)
	default:
		h.errs.error(h.log, "event-emit", "emit of an event hook's answer failed: "+err.Error(), s.Namespace().Name(), s.ID())
		return namespaces.Errorf(namespaces.CodeInternal, "internal error")
	}
}

// roomsCounted is how many rooms s is in that count against the rooms-per-socket limit (its
// user room does not, as in eventlimits.go).
func roomsCounted(s *socketio.Socket, id namespaces.Identity) int {
	own := namespaces.UserRoom(id.User.ID)
	n := 0
	for _, r := range s.Rooms() {
		if r != own {
			n++
		}
	}
	return n
}

// plainArgs decodes JSON arguments into plain values, which both parsers and every adapter
// encode (a json.RawMessage would go out as msgpack binary).
func plainArgs(raws []json.RawMessage) ([]any, error) {
	out := make([]any, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
	}
	return out, nil
}

// liveCount counts what must end before shutdown goes on, and lets it be waited for.
type liveCount struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed when n drops to 0; made by wait
}

func (c *liveCount) add(d int) {
	c.mu.Lock()
	c.n += d
	if c.n == 0 && c.zero != nil {
		close(c.zero)
		c.zero = nil
	}
	c.mu.Unlock()
}

// wait returns once the count is 0, or ctx's error if it ends first.
func (c *liveCount) wait(ctx context.Context) error {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.zero == nil {
		c.zero = make(chan struct{})
	}
	zero := c.zero
	c.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sparseLog logs a line of one kind at most once per period, with how many were left out: a
// backend that answers wrong answers wrong every time, and one line a second says so as well as
// thousands. Lines never carry a payload.
type sparseLog struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]sparseState
}

type sparseState struct {
	at         time.Time
	suppressed int
}

func newSparseLog(every time.Duration) *sparseLog {
	return &sparseLog{every: every, last: map[string]sparseState{}}
}

// pass reports whether a line of kind may be logged now, and how many were left out before it.
func (l *sparseLog) pass(kind string) (bool, int) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.last[kind]
	if !st.at.IsZero() && now.Sub(st.at) < l.every {
		st.suppressed++
		l.last[kind] = st
		return false, 0
	}
	l.last[kind] = sparseState{at: now}
	return true, st.suppressed
}

func (l *sparseLog) error(log zerolog.Logger, kind, msg, nsp, sid string) {
	l.line(log.Error(), kind, msg, nsp, sid)
}

func (l *sparseLog) warn(log zerolog.Logger, kind, msg, nsp, sid string) {
	l.line(log.Warn(), kind, msg, nsp, sid)
}

func (l *sparseLog) line(ev *zerolog.Event, kind, msg, nsp, sid string) {
	if ev == nil {
		return
	}
	ok, suppressed := l.pass(kind)
	if !ok {
		ev.Discard()
		return
	}
	if suppressed > 0 {
		ev = ev.Int("suppressed", suppressed)
	}
	ev.Str("nsp", nsp).Str("sid", sid).Msg(msg)
}
