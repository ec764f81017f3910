package server

import (
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// Events of a socket's token lifetime (SPEC §5).
const (
	// EventAuthExpired is emitted to a socket when its token expires, just before the server
	// disconnects it. Its payload is {"exp": the expired token's exp}.
	EventAuthExpired = "auth:expired"
	// EventAuthRefresh is the request that replaces a live socket's token: {"token"}.
	EventAuthRefresh = "auth:refresh"
)

// RefreshRequest is the payload of auth:refresh.
type RefreshRequest struct {
	Token string `json:"token"`
}

// Validate implements namespaces.Validator.
func (r *RefreshRequest) Validate() error {
	if strings.TrimSpace(r.Token) == "" {
		return namespaces.Errorf(namespaces.CodeBadRequest, "token must be a non-empty string")
	}
	return nil
}

// RefreshReply is the ack data of auth:refresh: the new token's exp in Unix seconds, null for a
// token without one.
type RefreshReply struct {
	Exp *int64 `json:"exp"`
}

// session is one socket's token lifetime: the timer armed for its exp. Anonymous servers keep
// none (a nil *session).
type session struct {
	a      *Authenticator
	s      *socketio.Socket
	userID string

	mu    sync.Mutex
	timer *time.Timer
	gen   uint64 // bumped on every (re-)arm; a timer that fires for an older generation does nothing
	over  bool   // expired or disconnected: nothing is armed again and refresh is refused
}

// install gives every socket of nsp with a token its lifetime (a timer disconnecting it at exp)
// and answers auth:refresh on it, before the namespace's own handlers see events.
func (a *Authenticator) install(nsp *socketio.Namespace) {
	if a.refresh == nil {
		a.refresh = namespaces.NewRoutes[*session](a.log)
		namespaces.Route(a.refresh, EventAuthRefresh, (*session).refreshToken)
	}
	nsp.OnConnection(func(s *socketio.Socket) {
		if ss := a.session(s); ss != nil {
			a.sessions.Store(s, ss)
			if !s.Connected() { // gone before it was stored: the disconnect callback missed it
				a.end(s)
			}
		}
	})
	nsp.OnDisconnect(func(s *socketio.Socket, _ string) { a.end(s) })
	nsp.UseEvents(func(s *socketio.Socket, ev *socketio.Event) bool {
		if ev.Name != EventAuthRefresh {
			return true
		}
		var ss *session
		if v, ok := a.sessions.Load(s); ok {
			ss = v.(*session)
		}
		a.refresh.Handle(ss, ev)
		return false
	})
}

// end stops the lifetime of s.
func (a *Authenticator) end(s *socketio.Socket) {
	if v, ok := a.sessions.LoadAndDelete(s); ok {
		v.(*session).stop()
	}
}

// session starts the token lifetime of a socket that connected (or recovered its session): a
// timer disconnects it when its token expires. It returns nil on an anonymous server, where
// tokens are not used.
func (a *Authenticator) session(s *socketio.Socket) *session {
	if a.Anonymous() {
		return nil
	}
	id := namespaces.IdentityOf(s)
	ss := &session{a: a, s: s, userID: id.User.ID}
	ss.mu.Lock()
	ss.armLocked(id.Exp)
	ss.mu.Unlock()
	return ss
}

// logDebug starts a debug line about the session with its socket's fields, built only when the
// line is logged.
func (ss *session) logDebug() *zerolog.Event {
	e := ss.a.log.Debug()
	if !e.Enabled() {
		return e
	}
	return e.Str("nsp", ss.s.Namespace().Name()).Str("sid", ss.s.ID()).Str("user_id", ss.userID)
}

// armLocked replaces the timer with one that fires at exp (Unix seconds; 0 = never).
func (ss *session) armLocked(exp int64) {
	if ss.timer != nil && ss.timer.Stop() {
		ss.a.timers.Add(-1)
	}
	ss.timer = nil
	ss.gen++
	if exp == 0 || ss.over {
		return
	}
	gen := ss.gen
	ss.a.timers.Add(1)
	ss.timer = time.AfterFunc(time.Unix(exp, 0).Sub(ss.a.now()), func() { ss.expire(gen, exp) })
}

// expire tells the socket its token expired and disconnects it from the server side, so that
// socket.io-client does not reconnect by itself ("io server disconnect").
func (ss *session) expire(gen uint64, exp int64) {
	ss.a.timers.Add(-1)
	ss.mu.Lock()
	if ss.over || gen != ss.gen {
		ss.mu.Unlock()
		return
	}
	ss.over, ss.timer = true, nil
	ss.mu.Unlock()
	ss.logDebug().Msg("token expired: disconnecting")
	_ = ss.s.Emit(EventAuthExpired, map[string]any{"exp": exp})
	ss.s.Disconnect(false)
}

// stop ends the session when the socket disconnects.
func (ss *session) stop() {
	if ss == nil {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.armLocked(0)
	ss.over = true
}

// refreshToken replaces the socket's token with a newer one of the same user: its exp re-arms
// the timer, its rooms claim governs later subscribe/chat:join (rooms already joined are kept)
// and its name is the one others see from now on. ss is nil on an anonymous server.
func (ss *session) refreshToken(req RefreshRequest) (RefreshReply, error) {
	if ss == nil {
		return RefreshReply{}, namespaces.Errorf(namespaces.CodeBadRequest, "this server does not use tokens")
	}
	id, terr := ss.a.verify(strings.TrimSpace(req.Token))
	if terr != nil {
		return RefreshReply{}, namespaces.Errorf(namespaces.CodeUnauthorized, "token refused: %s", terr.code)
	}
	cur := namespaces.IdentityOf(ss.s)
	if id.User.ID != cur.User.ID {
		return RefreshReply{}, namespaces.Errorf(namespaces.CodeForbidden, "the token is for another user")
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.over {
		return RefreshReply{}, namespaces.Errorf(namespaces.CodeUnauthorized, "the session has already expired")
	}
	if expiresBefore(id.Exp, cur.Exp) {
		// Refreshes that cross on the wire must not shorten the life the later one gave.
		return RefreshReply{}, namespaces.Errorf(namespaces.CodeUnauthorized, "the token expires before the current one")
	}
	id.Data = cur.Data // what the connect hook attached stays
	namespaces.SetIdentity(ss.s, id)
	ss.armLocked(id.Exp)
	ss.logDebug().Int64("exp", id.Exp).Msg("token refreshed")
	var reply RefreshReply
	if id.Exp != 0 {
		reply.Exp = &id.Exp
	}
	return reply, nil
}

// expiresBefore reports whether a token expiring at next ends before one expiring at cur
// (0 = never).
func expiresBefore(next, cur int64) bool {
	switch {
	case next == 0:
		return false
	case cur == 0:
		return true
	default:
		return next < cur
	}
}
