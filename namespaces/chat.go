package namespaces

import (
	"context"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Chat limits (SPEC §4).
const (
	MaxTextLength       = 4000
	JoinHistoryLimit    = 50
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 100
)

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

// Chat is the "/chat" namespace: rooms whose members talk, with presence, typing indicators and
// bounded history.
//
// Presence (presence.go) counts each user's sockets per room as they join, leave, disconnect and
// recover: chat:user-joined goes out when a user's first socket enters a room by chat:join,
// chat:user-left when its last one leaves, and the members of chat:join are the users counted;
// on a node, each member learns of each other exactly once. A node that dies leaves its members
// counted until cluster presence reaps them; then the room hears chat:user-left once in the
// cluster. OnMember tells an observer (the events webhook, SPEC §8.3) of every arrival and
// departure, those of dead nodes included.
type Chat struct {
	log      zerolog.Logger
	routes   *Routes[*socketio.Socket]
	history  History
	members  *roomPresence
	fallback Fallback
	nsp      *socketio.Namespace
	onMember func(room string, u User, present bool)
}

var _ Namespace = (*Chat)(nil)

// NewChat returns the "/chat" namespace keeping messages in history and presence in presence;
// fallback gets the events it does not handle.
func NewChat(log zerolog.Logger, history History, presence socketio.Presence, fallback Fallback) *Chat {
	c := &Chat{
		log:      log.With().Str("nsp", "/chat").Logger(),
		history:  history,
		fallback: fallback,
	}
	c.members = newRoomPresence(context.Background(), c.log, presence, "chat:user-joined", "chat:user-left", presenceHooks{
		arrived:  func(room string, u User) { c.member(room, u, true) },
		departed: func(_ context.Context, room string, u User, _ socketio.PresenceChange) { c.member(room, u, false) },
	})
	routes := NewRoutes[*socketio.Socket](log)
	Route(routes, "chat:join", c.join)
	Route(routes, "chat:leave", c.leave)
	Route(routes, "chat:send", c.send)
	Route(routes, "chat:typing", c.typing)
	Route(routes, "chat:history", c.historyBefore)
	c.routes = routes
	return c
}

// Name implements Namespace.
func (*Chat) Name() string { return "/chat" }

// OnMember sets a function told of every change of a room's members, as chat:user-joined and
// chat:user-left announce them: present is true for a user's arrival, false for its departure.
// It is called once per change in the cluster, under the room's presence lock, so it must not
// block (the events webhook only queues). Set it before Register.
func (c *Chat) OnMember(fn func(room string, u User, present bool)) { c.onMember = fn }

func (c *Chat) member(room string, u User, present bool) {
	if c.onMember != nil {
		c.onMember(room, u, present)
	}
}

// Handles reports whether event is one of the namespace's own.
func (c *Chat) Handles(event string) bool { return c.routes.Has(event) }

// Register implements Namespace.
func (c *Chat) Register(nsp *socketio.Namespace) {
	c.nsp = nsp
	c.members.register(nsp)
	nsp.Use(joinUserRoom)
	nsp.OnConnection(func(s *socketio.Socket) {
		if s.Recovered() {
			c.members.recovered(s)
		}
	})
	nsp.OnEvent(func(s *socketio.Socket, ev *socketio.Event) {
		if !c.routes.Handle(s, ev) && c.fallback != nil {
			c.fallback(s, ev)
		}
	})
	nsp.OnDisconnect(func(s *socketio.Socket, _ string) { c.members.disconnected(s) })
}

func (c *Chat) join(s *socketio.Socket, req RoomRequest) (JoinReply, error) {
	id := IdentityOf(s)
	if !id.MayJoin(req.Room) {
		return JoinReply{}, Errorf(CodeForbidden, "not allowed to join %q", req.Room)
	}
	ctx := s.Context()
	members, err := c.members.join(ctx, s, id.User, req.Room)
	if err != nil {
		return JoinReply{}, err
	}
	history, err := c.history.Before(ctx, req.Room, "", JoinHistoryLimit)
	if err != nil {
		return JoinReply{}, err
	}
	return JoinReply{Room: req.Room, Members: members, History: history}, nil
}

func (c *Chat) leave(s *socketio.Socket, req RoomRequest) (LeaveReply, error) {
	if err := c.members.leave(s, IdentityOf(s).User, req.Room); err != nil {
		return LeaveReply{}, err
	}
	return LeaveReply{Room: req.Room}, nil
}

func (c *Chat) send(s *socketio.Socket, req SendRequest) (SendReply, error) {
	if !s.In(req.Room) {
		return SendReply{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	msg := Message{Room: req.Room, User: IdentityOf(s).User, Text: *req.Text, TS: time.Now().UnixMilli()}
	to := c.nsp.To(req.Room)
	msg, err := c.history.Append(s.Context(), msg, func(m Message) error { return to.Emit("chat:message", m) })
	if err != nil {
		return SendReply{}, err
	}
	return SendReply{ID: msg.ID, TS: msg.TS}, nil
}

// typing tells the room's other users, not the sender's other tabs; volatile, as a lost
// indicator is soon replaced by the next.
func (c *Chat) typing(s *socketio.Socket, req TypingRequest) (struct{}, error) {
	if !s.In(req.Room) {
		return struct{}{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	id := IdentityOf(s)
	err := c.nsp.To(req.Room).Except(UserRoom(id.User.ID), s.ID()).Volatile().
		Emit("chat:typing", TypingEvent{Room: req.Room, User: id.User, Typing: *req.Typing})
	return struct{}{}, err
}

func (c *Chat) historyBefore(s *socketio.Socket, req HistoryRequest) (HistoryReply, error) {
	if !s.In(req.Room) {
		return HistoryReply{}, Errorf(CodeForbidden, "not a member of %q", req.Room)
	}
	limit, before := DefaultHistoryLimit, ""
	if req.Limit != nil {
		limit = *req.Limit
	}
	if req.Before != nil {
		before = *req.Before
	}
	msgs, err := c.history.Before(s.Context(), req.Room, before, limit)
	if err != nil {
		return HistoryReply{}, err
	}
	return HistoryReply{Messages: msgs}, nil
}
