package server

import (
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/switchboard/switchboard/namespaces"
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

// Register gives every socket that connects to nsp (or recovers its session) the auth:refresh
// request and a timer that disconnects it when its token expires.
func (a *Authenticator) Register(nsp socket.Namespace) {
	_ = nsp.On("connection", func(args ...any) {
		if s, ok := namespaces.SocketArg(args); ok {
			a.attach(s)
		}
	})
}

// session is one socket's token lifetime: the timer armed for its exp.
type session struct {
	a   *Authenticator
	s   *socket.Socket
	log zerolog.Logger

	mu    sync.Mutex
	timer *time.Timer
	gen   uint64 // bumped on every (re-)arm; a timer that fires for an older generation does nothing
	over  bool   // expired or disconnected: nothing is armed again and refresh is refused
}

func (a *Authenticator) attach(s *socket.Socket) {
	id := namespaces.IdentityOf(s)
	ss := &session{
		a: a,
		s: s,
		log: a.log.With().Str("nsp", s.Nsp().Name()).Str("sid", string(s.Id())).
			Str("user_id", id.User.ID).Logger(),
	}
	// Listen for the disconnect before arming, then look: a socket that closed in between has
	// its timer stopped either by the listener or by the check below.
	_ = s.On("disconnect", func(...any) { ss.stop() })
	ss.mu.Lock()
	ss.armLocked(id.Exp)
	ss.mu.Unlock()
	if !s.Connected() {
		ss.stop()
	}
	namespaces.Handle(s, ss.log, EventAuthRefresh, ss.refresh)
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
	ss.log.Debug().Msg("token expired: disconnecting")
	_ = ss.s.Emit(EventAuthExpired, map[string]any{"exp": exp})
	ss.s.Disconnect(false)
}

// stop ends the session when the socket disconnects.
func (ss *session) stop() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.armLocked(0)
	ss.over = true
}

// refresh replaces the socket's token with a newer one of the same user: its exp re-arms the
// timer, its rooms claim governs later subscribe/chat:join (rooms already joined are kept) and
// its name is the one others see from now on.
func (ss *session) refresh(req *RefreshRequest) (RefreshReply, error) {
	if ss.a.Anonymous() {
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
	ss.s.SetData(withIdentity(ss.s.Data(), id))
	ss.armLocked(id.Exp)
	ss.log.Debug().Int64("exp", id.Exp).Msg("token refreshed")
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

// withIdentity is the socket data old with id's fields replaced and whatever else it holds kept.
func withIdentity(old any, id namespaces.Identity) map[string]any {
	data := id.Data()
	if m, ok := old.(map[string]any); ok {
		for k, v := range m {
			switch k {
			case "user", "rooms", "exp": // what Identity.Data writes
			default:
				data[k] = v
			}
		}
	}
	return data
}
