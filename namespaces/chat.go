package namespaces

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// presenceTimeout bounds the presence work that runs when a socket disconnects, when no request
// context is left to bound it.
const presenceTimeout = 5 * time.Second

// Chat is the "/chat" namespace: rooms whose members talk, with presence, typing indicators and
// bounded history.
//
// Presence is kept as sockets join and leave (socketio.Presence: in this process, or in Redis
// for a cluster), counting each user's sockets per room: chat:user-joined goes out when a user's
// count goes from 0 to 1, chat:user-left when it goes back to 0, and the members of chat:join
// are the users counted. Nothing lists sockets to answer either. Presence counts the rooms a
// socket entered by chat:join (or got back by connection state recovery); rooms joined through
// the HTTP API or a hook are rooms, not chat membership.
//
// Each member learns of each other exactly once: from the member list of its chat:join, or from
// a chat:user-joined after it. On a node that holds because a room's presence work is done under
// the room's lock: a join puts the socket in the room, counts it, reads the members and sends its
// own announcement (whose recipients are chosen then) before the next one starts, so an
// announcement either reaches a joiner or was counted before its member list. Across nodes the
// announcement travels through the adapter and may arrive after a later joiner on another node
// read its list: then that joiner hears of the member twice (README, "Running several nodes").
//
// A node that dies (killed, crashed) leaves its members counted in cluster presence until the
// presence reaps them (a bounded time, adapters' doc); one survivor then reports each departure
// (socketio.Presence.OnExpired) and the room hears chat:user-left from it, once in the cluster.
// OnMember tells an observer (the events webhook, SPEC §8.3) of every arrival and departure,
// those of dead nodes included.
type Chat struct {
	log      zerolog.Logger
	routes   *Routes[*socketio.Socket]
	history  History
	presence socketio.Presence
	fallback Fallback
	nsp      *socketio.Namespace
	onMember func(room string, u User, present bool)

	rooms keyedMutex // presence work, one room at a time

	mu     sync.Mutex
	counts map[*socketio.Socket][]string // the rooms presence counts each socket in
}

var _ Namespace = (*Chat)(nil)

// NewChat returns the "/chat" namespace keeping messages in history and presence in presence;
// fallback gets the events it does not handle.
func NewChat(log zerolog.Logger, history History, presence socketio.Presence, fallback Fallback) *Chat {
	c := &Chat{
		log:      log.With().Str("nsp", "/chat").Logger(),
		history:  history,
		presence: presence,
		fallback: fallback,
		counts:   map[*socketio.Socket][]string{},
	}
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
	nsp.Use(joinUserRoom)
	nsp.OnConnection(func(s *socketio.Socket) {
		if s.Recovered() {
			c.recovered(s)
		}
	})
	nsp.OnEvent(func(s *socketio.Socket, ev *socketio.Event) {
		if !c.routes.Handle(s, ev) && c.fallback != nil {
			c.fallback(s, ev)
		}
	})
	nsp.OnDisconnect(func(s *socketio.Socket, _ string) { c.disconnected(s) })
	c.presence.OnExpired(c.expired)
}

// expired handles members whose node died: cluster presence reaps them on one survivor, which
// announces the departures the dead node never could.
func (c *Chat) expired(room, _ string, info []byte, ch socketio.PresenceChange) {
	if !ch.Member {
		return
	}
	var u User
	if json.Unmarshal(info, &u) != nil || u.ID == "" {
		return
	}
	unlock := c.rooms.Lock(room)
	defer unlock()
	c.member(room, u, false)
	if err := c.nsp.To(room).Emit("chat:user-left", PresenceEvent{Room: room, User: u}); err != nil {
		c.log.Warn().Err(err).Str("room", room).Msg("announce an expired member")
	}
}

// isChatRoom tells the rooms presence is about from user rooms.
func isChatRoom(room string) bool { return !strings.HasPrefix(room, UserRoomPrefix) }

func (c *Chat) counted(s *socketio.Socket, room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.counts[s], room)
}

func (c *Chat) count(s *socketio.Socket, room string) {
	c.mu.Lock()
	c.counts[s] = append(c.counts[s], room)
	c.mu.Unlock()
}

func (c *Chat) uncount(s *socketio.Socket, room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	rooms := c.counts[s]
	i := slices.Index(rooms, room)
	if i < 0 {
		return false
	}
	rooms = slices.Delete(rooms, i, i+1)
	if len(rooms) == 0 {
		delete(c.counts, s)
	} else {
		c.counts[s] = rooms
	}
	return true
}

func userInfo(u User) []byte {
	b, _ := json.Marshal(u)
	return b
}

func (c *Chat) join(s *socketio.Socket, req RoomRequest) (JoinReply, error) {
	id := IdentityOf(s)
	if !id.MayJoin(req.Room) {
		return JoinReply{}, Errorf(CodeForbidden, "not allowed to join %q", req.Room)
	}
	ctx := s.Context()
	unlock := c.rooms.Lock(req.Room)
	if !c.counted(s, req.Room) {
		if err := c.enter(ctx, s, id.User, req.Room); err != nil {
			unlock()
			return JoinReply{}, err
		}
	}
	members, err := presentUsers(ctx, c.presence, req.Room)
	unlock()
	if err != nil {
		return JoinReply{}, err
	}
	history, err := c.history.Before(ctx, req.Room, "", JoinHistoryLimit)
	if err != nil {
		return JoinReply{}, err
	}
	return JoinReply{Room: req.Room, Members: members, History: history}, nil
}

// enter puts s in room and counts it; the room hears chat:user-joined when this is the user's
// first socket there.
func (c *Chat) enter(ctx context.Context, s *socketio.Socket, u User, room string) error {
	s.Join(room)
	ch, err := c.presence.Join(ctx, room, u.ID, userInfo(u))
	if err != nil {
		s.Leave(room)
		return err
	}
	c.count(s, room)
	if ch.Member {
		c.member(room, u, true)
		if err := c.nsp.To(room).Except(s.ID()).Emit("chat:user-joined", PresenceEvent{Room: room, User: u}); err != nil {
			c.log.Warn().Err(err).Str("room", room).Msg("announce a member")
		}
	}
	return nil
}

func (c *Chat) leave(s *socketio.Socket, req RoomRequest) (LeaveReply, error) {
	id := IdentityOf(s)
	if req.Room == UserRoom(id.User.ID) {
		return LeaveReply{}, Errorf(CodeForbidden, "the user room %q cannot be left", req.Room)
	}
	unlock := c.rooms.Lock(req.Room)
	defer unlock()
	s.Leave(req.Room)
	if c.uncount(s, req.Room) {
		if err := c.depart(s.Context(), s.ID(), id.User, req.Room); err != nil {
			return LeaveReply{}, err
		}
	}
	return LeaveReply{Room: req.Room}, nil
}

// depart uncounts a socket of u in room; the room hears chat:user-left when it was the user's
// last.
func (c *Chat) depart(ctx context.Context, sid string, u User, room string) error {
	ch, err := c.presence.Leave(ctx, room, u.ID)
	if err != nil {
		return err
	}
	if ch.Member {
		c.member(room, u, false)
		if err := c.nsp.To(room).Except(sid).Emit("chat:user-left", PresenceEvent{Room: room, User: u}); err != nil {
			c.log.Warn().Err(err).Str("room", room).Msg("announce a departure")
		}
	}
	return nil
}

// disconnected uncounts a socket from every room it was counted in.
func (c *Chat) disconnected(s *socketio.Socket) {
	c.mu.Lock()
	rooms := c.counts[s]
	delete(c.counts, s)
	c.mu.Unlock()
	if len(rooms) == 0 {
		return
	}
	u := IdentityOf(s).User
	ctx, cancel := context.WithTimeout(context.Background(), presenceTimeout)
	defer cancel()
	for _, room := range rooms {
		unlock := c.rooms.Lock(room)
		err := c.depart(ctx, s.ID(), u, room)
		unlock()
		if err != nil {
			c.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("presence on disconnect")
		}
	}
}

// recovered counts a socket that connection state recovery put back in its rooms: its
// disconnection uncounted it, so the rooms where it is the user's first socket again hear
// chat:user-joined.
func (c *Chat) recovered(s *socketio.Socket) {
	u := IdentityOf(s).User
	for _, room := range s.Rooms() {
		if !isChatRoom(room) || c.counted(s, room) {
			continue
		}
		unlock := c.rooms.Lock(room)
		ch, err := c.presence.Join(s.Context(), room, u.ID, userInfo(u))
		if err != nil {
			unlock()
			c.log.Warn().Err(err).Str("sid", s.ID()).Str("room", room).Msg("presence on recovery")
			continue
		}
		c.count(s, room)
		if ch.Member {
			c.member(room, u, true)
			_ = c.nsp.To(room).Except(s.ID()).Emit("chat:user-joined", PresenceEvent{Room: room, User: u})
		}
		unlock()
	}
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
