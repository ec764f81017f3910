package adapters

// streams_recovery.go: connection state recovery of the redis-streams backend: sessions in
// Redis as Node keeps them, and the missed events read back from the stream.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/socketio"
)

// streamSession is a session as Node keeps it: base64 of msgpack {sid, pid, rooms, data}, rooms
// holding the socket's own id.
type streamSession struct {
	SID   string   `json:"sid"`
	PID   string   `json:"pid"`
	Rooms []string `json:"rooms"`
	Data  any      `json:"data"`
}

// PersistSession implements socketio.Adapter: SET <session prefix><pid> with the rest of the
// recovery window as its expiry (PX), as Node writes it.
func (a *streamsAdapter) PersistSession(s *socketio.Session) {
	if a.b.window <= 0 {
		return
	}
	ttl := a.b.window
	if !s.DisconnectedAt.IsZero() {
		ttl -= time.Since(s.DisconnectedAt)
	}
	if ttl <= 0 {
		return
	}
	rooms := append([]string{s.SID}, slices.DeleteFunc(slices.Clone(s.Rooms), func(r string) bool { return r == s.SID })...)
	data := wireValue(s.Data)
	if data == nil {
		data = map[string]any{}
	}
	raw, err := socketio.EncodeMsgpack(streamSession{SID: s.SID, PID: s.PID, Rooms: rooms, Data: data})
	if err != nil {
		a.log.Warn().Err(err).Str("sid", s.SID).Msg("encode a session for recovery")
		return
	}
	ctx, cancel := context.WithTimeout(a.b.ctx, streamsCallTimeout)
	defer cancel()
	if err := a.b.conn.Client().Set(ctx, a.b.sessionPrefix+s.PID, base64.StdEncoding.EncodeToString(raw), ttl).Err(); err != nil {
		a.log.Debug().Err(err).Str("sid", s.SID).Msg("keep a session for recovery")
	}
}

// streamOffset is the form of a stream entry id (Node refuses any other offset).
var streamOffset = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// RestoreSession implements socketio.Adapter: it takes the session out of Redis (GET and DEL at
// once: a session is restored once), checks that the offset is still in the stream, has the
// socket join the session's rooms, then collects the events broadcast since the offset to the
// session's rooms (those not volatile), each with its entry id appended. No session, an expired
// one or an offset no longer in the stream give nil: the client gets a new session.
func (a *streamsAdapter) RestoreSession(ctx context.Context, pid, offset string, join func(*socketio.Session)) (*socketio.Session, error) {
	if a.b.window <= 0 || !streamOffset.MatchString(offset) {
		return nil, nil
	}
	cl := a.b.conn.Client()
	key := a.b.sessionPrefix + pid
	var get *redis.StringCmd
	if _, err := cl.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		p.Del(ctx, key)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("adapters: restore session: %w", err)
	}
	raw, err := get.Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adapters: restore session: %w", err)
	}
	at, err := cl.XRange(ctx, a.b.stream, offset, offset).Result()
	if err != nil {
		return nil, fmt.Errorf("adapters: restore session: check the offset: %w", err)
	}
	if len(at) == 0 {
		return nil, nil // the offset was trimmed: the events since are not all there
	}
	sess, err := decodeSession(raw)
	if err != nil {
		a.log.Debug().Err(err).Msg("ignore a malformed session")
		return nil, nil
	}
	join(sess)
	rooms := append([]string{sess.SID}, sess.Rooms...)
	from := offset
	for range restoreRounds {
		entries, err := cl.XRangeN(ctx, a.b.stream, "("+from, "+", restoreBatch).Result()
		if err != nil {
			return nil, fmt.Errorf("adapters: restore session: read the stream: %w", err)
		}
		for _, e := range entries {
			from = e.ID
			if data := a.missed(e, rooms); data != nil {
				sess.Missed = append(sess.Missed, data)
			}
		}
		if len(entries) < restoreBatch {
			return sess, nil
		}
	}
	return nil, nil // more than the stream holds came in meanwhile: no gap, no recovery
}

// missed is the data (with its offset appended) of a stream entry a socket in rooms would have
// got, or nil.
func (a *streamsAdapter) missed(e redis.XMessage, rooms []string) []any {
	if nsp, _ := e.Values["nsp"].(string); nsp != a.nsp.Name() {
		return nil
	}
	if typ, _ := e.Values["type"].(string); typ != strconv.Itoa(msgBroadcast) {
		return nil
	}
	s, _ := e.Values["data"].(string)
	data, err := decodeStreamData(s)
	if err != nil {
		return nil
	}
	if rid, ok := data["requestId"]; ok && rid != nil {
		return nil
	}
	p, ok := decodePacket(data["packet"], a.nsp.Name())
	if !ok || p.ID >= 0 {
		return nil
	}
	opts := decodeOpts(data["opts"])
	if opts.Volatile || !opts.Reaches(rooms) {
		return nil
	}
	return append(p.Data, e.ID)
}

// reaches is socketio's BroadcastOptions.Reaches, under the name FuzzStreamsEntry calls.
func reaches(rooms []string, opts socketio.BroadcastOptions) bool { return opts.Reaches(rooms) }

// decodeSession reads a session Node (or this adapter) wrote.
func decodeSession(raw string) (*socketio.Session, error) {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	v, err := socketio.DecodeMsgpack(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("adapters: a session is not an object")
	}
	sid, _ := m["sid"].(string)
	pid, _ := m["pid"].(string)
	if sid == "" || pid == "" {
		return nil, errors.New("adapters: a session without sid or pid")
	}
	s := &socketio.Session{SID: sid, PID: pid, Data: m["data"]}
	for _, r := range roomList(m["rooms"]) {
		if r != sid {
			s.Rooms = append(s.Rooms, r)
		}
	}
	return s, nil
}
