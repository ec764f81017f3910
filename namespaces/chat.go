package namespaces

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Chat limits (SPEC §4).
const (
	MaxTextLength       = 4000
	JoinHistoryLimit    = 50
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 100
)

// presenceTimeout bounds the adapter round trip of presence work that runs when a socket
// disconnects, when no request context is left to bound it.
const presenceTimeout = 5 * time.Second

// Chat is the "/chat" namespace: rooms whose members talk, with presence, typing indicators and
// bounded history.
type Chat struct {
	log      zerolog.Logger
	routes   *Routes[*chatSocket]
	history  History
	presence *presence
	// base is what every socket's context derives from; each is cancelled when its socket
	// disconnects.
	base context.Context
}

var _ Namespace = (*Chat)(nil)

// NewChat returns the "/chat" namespace keeping messages in history.
func NewChat(log zerolog.Logger, history History) *Chat {
	routes := NewRoutes[*chatSocket](log, nil)
	Route(routes, "chat:join", (*chatSocket).join)
	Route(routes, "chat:leave", (*chatSocket).leave)
	Route(routes, "chat:send", (*chatSocket).send)
	Route(routes, "chat:typing", (*chatSocket).typing)
	Route(routes, "chat:history", (*chatSocket).historyBefore)
	return &Chat{
		log:      log.With().Str("nsp", "/chat").Logger(),
		routes:   routes,
		history:  history,
		presence: newPresence(),
		base:     context.Background(),
	}
}

// Name implements Namespace.
func (*Chat) Name() string { return "/chat" }

// RoomRequest is the payload of chat:join and chat:leave.
type RoomRequest struct {
	Room string `json:"room"`
}

// Validate implements Validator.
func (r RoomRequest) Validate() error { return checkRoom("room", r.Room) }

// JoinReply is the ack data of chat:join.
type JoinReply struct {
	Room    string    `json:"room"`
	Members []User    `json:"members"`
	History []Message `json:"history"`
}

// LeaveReply is the ack data of chat:leave.
type LeaveReply struct {
	Room string `json:"room"`
}

// SendRequest is the payload of chat:send.
type SendRequest struct {
	Room string  `json:"room"`
	Text *string `json:"text"`
}

// Validate implements Validator.
func (r SendRequest) Validate() error {
	if err := checkRoom("room", r.Room); err != nil {
		return err
	}
	if r.Text == nil {
		return Errorf(CodeBadRequest, "text must be a string")
	}
	if n := utf8.RuneCountInString(*r.Text); n < 1 || n > MaxTextLength {
		return Errorf(CodeBadRequest, "text must be 1-%d characters", MaxTextLength)
	}
	return nil
}

// SendReply is the ack data of chat:send.
type SendReply struct {
	ID string `json:"id"`
	TS int64  `json:"ts"`
}

// TypingRequest is the payload of chat:typing.
type TypingRequest struct {
	Room   string `json:"room"`
	Typing *bool  `json:"typing"`
}

// Validate implements Validator.
func (r TypingRequest) Validate() error {
	if err := checkRoom("room", r.Room); err != nil {
		return err
	}
	if r.Typing == nil {
		return Errorf(CodeBadRequest, "typing must be a boolean")
	}
	return nil
}

// HistoryRequest is the payload of chat:history.
type HistoryRequest struct {
	Room   string  `json:"room"`
	Before *string `json:"before"`
	Limit  *int    `json:"limit"`
}

// Validate implements Validator.
func (r HistoryRequest) Validate() error {
	if err := checkRoom("room", r.Room); err != nil {
		return err
	}
	if r.Before != nil && !ValidMessageID(*r.Before) {
		return Errorf(CodeBadRequest, "before must be a message id")
	}
	if r.Limit != nil && (*r.Limit < 1 || *r.Limit > MaxHistoryLimit) {
		return Errorf(CodeBadRequest, "limit must be 1-%d", MaxHistoryLimit)
	}
	return nil
}

// HistoryReply is the ack data of chat:history.
type HistoryReply struct {
	Messages []Message `json:"messages"`
}

// PresenceEvent is the argument of chat:user-joined and chat:user-left.
type PresenceEvent struct {
	Room string `json:"room"`
	User User   `json:"user"`
}

// TypingEvent is the argument of chat:typing as the others receive it.
type TypingEvent struct {
	Room   string `json:"room"`
	User   User   `json:"user"`
	Typing bool   `json:"typing"`
}

// ValidMessageID reports whether id is a message id: the decimal form of a room's sequence
// number (1-20 digits).
func ValidMessageID(id string) bool {
	if len(id) < 1 || len(id) > 20 {
		return false
	}
	_, err := strconv.ParseUint(id, 10, 64)
	return err == nil
}

// chatSocket is one connected socket of the namespace with what its handlers share.
type chatSocket struct {
	*Chat
	nsp socket.Namespace
	s   *socket.Socket
	ctx context.Context
	m   member
}

// Register implements Namespace.
func (c *Chat) Register(nsp socket.Namespace) {
	onConnection(nsp, func(s *socket.Socket, _ Identity) {
		ctx, cancel := context.WithCancel(c.base)
		cs := &chatSocket{Chat: c, nsp: nsp, s: s, ctx: ctx}
		_ = s.On("disconnecting", func(...any) { cs.disconnecting() })
		_ = s.On("disconnect", func(...any) {
			cancel()
			c.presence.forget(s.Id())
		})
		if !s.Connected() {
			// Gone before its listeners were in place: nothing to announce or to clean up.
			cancel()
			return
		}
		if s.Recovered() {
			cs.recovered()
		}
		c.routes.Serve(s, cs)
	})
}

// isChatRoom tells the rooms presence is about from the socket's own id room and user rooms.
func (cs *chatSocket) isChatRoom(room socket.Room) bool {
	return room != socket.Room(cs.s.Id()) && !strings.HasPrefix(string(room), UserRoomPrefix)
}

func (cs *chatSocket) in(room string) bool { return cs.s.Rooms().Has(socket.Room(room)) }

func (cs *chatSocket) join(req RoomRequest) (JoinReply, error) {
	id := IdentityOf(cs.s)
	if !id.MayJoin(req.Room) {
		return JoinReply{}, Errorf(CodeForbidden, "not allowed to join %q", req.Room)
	}
	if err := cs.enter(id, req.Room); err != nil {
		return JoinReply{}, err
	}
	members, err := cs.presence.members(cs.ctx, cs.nsp, req.Room)
	if err != nil {
		return JoinReply{}, err
	}
	history, err := cs.history.Before(cs.ctx, req.Room, "", JoinHistoryLimit)
	if err != nil {
		return JoinReply{}, err
	}
	return JoinReply{Room: req.Room, Members: members, History: history}, nil
}

// enter puts the socket in room and tells the room when it is the user's first socket there.
// Joining a room the socket is already in changes nothing.
func (cs *chatSocket) enter(id Identity, room string) error {
	cs.m.mu.Lock()
	defer cs.m.mu.Unlock()
	if cs.m.gone {
		return Errorf(CodeForbidden, "the socket is disconnecting")
	}
	if cs.in(room) {
		return nil
	}
	unlock := cs.presence.lock(room, id.User.ID)
	defer unlock()
	cs.s.Join(socket.Room(room))
	alone, err := cs.presence.alone(cs.ctx, cs.nsp, room, id.User.ID, cs.s.Id())
	if err != nil {
		cs.s.Leave(socket.Room(room))
		return err
	}
	if alone {
		_ = cs.nsp.To(socket.Room(room)).Except(socket.Room(cs.s.Id())).Emit("chat:user-joined", PresenceEvent{Room: room, User: id.User})
	}
	return nil
}

func (cs *chatSocket) leave(req RoomRequest) (LeaveReply, error) {
	id := IdentityOf(cs.s)
	if req.Room == UserRoom(id.User.ID) {
		return LeaveReply{}, Errorf(CodeForbidden, "the user room %q cannot be left", req.Room)
	}
	cs.m.mu.Lock()
	defer cs.m.mu.Unlock()
	if cs.m.gone || !cs.in(req.Room) {
		return LeaveReply{Room: req.Room}, nil
	}
	unlock := cs.presence.lock(req.Room, id.User.ID)
	defer unlock()
	cs.s.Leave(socket.Room(req.Room))
	if err := cs.announceLeft(cs.ctx, id, req.Room); err != nil {
		return LeaveReply{}, err
	}
	return LeaveReply{Room: req.Room}, nil
}

// announceLeft sends chat:user-left to room when no other socket of the user is present in it.
// The caller holds the (room, user) lock.
func (cs *chatSocket) announceLeft(ctx context.Context, id Identity, room string) error {
	alone, err := cs.presence.alone(ctx, cs.nsp, room, id.User.ID, cs.s.Id())
	if err != nil {
		return err
	}
	if alone {
		_ = cs.nsp.To(socket.Room(room)).Except(socket.Room(cs.s.Id())).Emit("chat:user-left", PresenceEvent{Room: room, User: id.User})
	}
	return nil
}

// disconnecting runs while the socket is still in its rooms: a user whose last socket in a room
// this was has left it.
//
// It runs once per socket: the library can close a socket twice at once (its namespace DISCONNECT
// and its transport closing both pass the socket's connected check), and the second run must not
// mark the socket departed again after "disconnect" has forgotten it.
func (cs *chatSocket) disconnecting() {
	cs.m.mu.Lock()
	defer cs.m.mu.Unlock()
	if cs.m.gone {
		return
	}
	cs.m.gone = true
	id := IdentityOf(cs.s)
	ctx, cancel := context.WithTimeout(cs.base, presenceTimeout)
	defer cancel()
	for _, room := range cs.s.Rooms().Keys() {
		if !cs.isChatRoom(room) {
			continue
		}
		unlock := cs.presence.lock(string(room), id.User.ID)
		// Departed first: a member list asked for once chat:user-left is out must not hold it.
		cs.presence.depart(cs.s.Id(), id.User.ID, string(room))
		err := cs.announceLeft(ctx, id, string(room))
		unlock()
		if err != nil {
			cs.log.Warn().Err(err).Str("sid", string(cs.s.Id())).Str("room", string(room)).Msg("presence on disconnect")
		}
	}
}

// recovered announces a socket that connection state recovery put back in its rooms: its
// disconnection announced chat:user-left where it was the user's last socket, so the same rooms
// now hear chat:user-joined.
func (cs *chatSocket) recovered() {
	cs.m.mu.Lock()
	defer cs.m.mu.Unlock()
	if cs.m.gone {
		return
	}
	id := IdentityOf(cs.s)
	for _, room := range cs.s.Rooms().Keys() {
		if !cs.isChatRoom(room) {
			continue
		}
		unlock := cs.presence.lock(string(room), id.User.ID)
		alone, err := cs.presence.alone(cs.ctx, cs.nsp, string(room), id.User.ID, cs.s.Id())
		if err == nil && alone {
			_ = cs.nsp.To(room).Except(socket.Room(cs.s.Id())).Emit("chat:user-joined", PresenceEvent{Room: string(room), User: id.User})
		}
		unlock()
		if err != nil {
			cs.log.Warn().Err(err).Str("sid", string(cs.s.Id())).Str("room", string(room)).Msg("presence on recovery")
		}
	}
}

func (cs *chatSocket) send(req SendRequest) (SendReply, error) {
	if !cs.in(req.Room) {
		return SendReply{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	msg := Message{Room: req.Room, User: IdentityOf(cs.s).User, Text: *req.Text, TS: time.Now().UnixMilli()}
	to := cs.nsp.To(socket.Room(req.Room))
	msg, err := cs.history.Append(cs.ctx, msg, func(m Message) { _ = to.Emit("chat:message", m) })
	if err != nil {
		return SendReply{}, err
	}
	return SendReply{ID: msg.ID, TS: msg.TS}, nil
}

// typing tells the room's other users, not the sender's other tabs; volatile, as a lost
// indicator is soon replaced by the next.
func (cs *chatSocket) typing(req TypingRequest) (struct{}, error) {
	if !cs.in(req.Room) {
		return struct{}{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	id := IdentityOf(cs.s)
	_ = cs.nsp.To(socket.Room(req.Room)).Except(socket.Room(UserRoom(id.User.ID)), socket.Room(cs.s.Id())).Volatile().
		Emit("chat:typing", TypingEvent{Room: req.Room, User: id.User, Typing: *req.Typing})
	return struct{}{}, nil
}

func (cs *chatSocket) historyBefore(req HistoryRequest) (HistoryReply, error) {
	if !cs.in(req.Room) {
		return HistoryReply{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	limit, before := DefaultHistoryLimit, ""
	if req.Limit != nil {
		limit = *req.Limit
	}
	if req.Before != nil {
		before = *req.Before
	}
	msgs, err := cs.history.Before(cs.ctx, req.Room, before, limit)
	if err != nil {
		return HistoryReply{}, err
	}
	return HistoryReply{Messages: msgs}, nil
}
