package adapters

// redis_requests.go: the classic adapter's side of other nodes' requests and answers.

import (
	"fmt"
	"sync"

	"github.com/switchboard/switchboard/socketio"
)

// Requests from other nodes.

func requestKey(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// onRequest handles another node's (or the emitter's) request; the joins, leaves, disconnects
// and broadcasts run here, in the order they were published.
func (a *classicAdapter) onRequest(_, payload string) {
	v, err := decodeAny([]byte(payload))
	if err != nil {
		a.log.Debug().Err(err).Msg("ignore a malformed request")
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	typ, ok := m["type"].(float64)
	if !ok {
		return
	}
	uid, _ := m["uid"].(string)
	rid, withID := m["requestId"]
	mine := uid == a.uid
	switch int(typ) {
	case reqSockets:
		if mine {
			return
		}
		var ids []string
		for _, s := range a.Match(socketio.BroadcastOptions{Rooms: roomList(m["rooms"])}) {
			ids = append(ids, s.ID())
		}
		a.answerJSON(uid, map[string]any{"requestId": rid, "sockets": nonNil(ids)})
	case reqAllRooms:
		if mine {
			return
		}
		rooms := a.Rooms()
		for _, s := range a.nsp.Sockets() {
			rooms = append(rooms, s.ID()) // Node's rooms include each socket's own
		}
		a.answerJSON(uid, map[string]any{"requestId": rid, "rooms": rooms})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconn:
		if _, ok := m["opts"]; ok {
			if mine {
				return // applied when it was published
			}
			opts := decodeOpts(m["opts"])
			switch int(typ) {
			case reqRemoteJoin:
				a.AddLocal(opts, roomList(m["rooms"]))
			case reqRemoteLeave:
				a.DelLocal(opts, roomList(m["rooms"]))
			default:
				c, _ := m["close"].(bool)
				a.DisconnectLocal(opts, c)
			}
			return
		}
		// The 7.x form: one socket, by id, answered.
		sid, _ := m["sid"].(string)
		s := a.nsp.Socket(sid)
		if s == nil {
			return
		}
		room, _ := roomName(m["room"])
		switch int(typ) {
		case reqRemoteJoin:
			s.Join(room)
		case reqRemoteLeave:
			s.Leave(room)
		default:
			c, _ := m["close"].(bool)
			s.Disconnect(c)
		}
		a.answerJSON(uid, map[string]any{"requestId": rid})
	case reqRemoteFetch:
		if mine {
			return
		}
		local := a.FetchLocal(decodeOpts(m["opts"]))
		sockets := make([]wireSocket, 0, len(local))
		for _, rs := range local {
			sockets = append(sockets, encodeSocket(rs))
		}
		a.answerJSON(uid, map[string]any{"requestId": rid, "sockets": sockets})
	case reqServerSideEmit:
		if mine {
			return
		}
		data, ok := m["data"].([]any)
		if !ok {
			return
		}
		if name, ok := sseName(data); !ok || reservedSSE[name] {
			return
		}
		var ack func(...any)
		if withID {
			ack = a.sseAck(rid)
		}
		a.sse.do(func() { a.nsp.ServerSideEvent(data, ack) })
	case reqBroadcast:
		if mine || a.acks.has(requestKey(rid)) {
			return
		}
		p, ok := decodePacket(m["packet"], a.nsp.Name())
		if !ok {
			return
		}
		o := decodeOpts(m["opts"])
		opts := socketio.BroadcastOptions{Rooms: o.Rooms, Except: o.Except} // Node's receiver drops the flags
		relay := &ackRelay{send: func(ack *socketio.Args) {
			r := map[string]any{"type": reqBroadcastAck, "requestId": rid}
			if v, ok := firstArg(ack); ok {
				r["packet"] = v
			}
			msg, err := socketio.EncodeMsgpack(r)
			if err != nil {
				a.log.Debug().Err(err).Msg("encode a broadcast ack")
				return
			}
			a.answer(uid, msg)
		}}
		n := a.BroadcastWithAckLocal(p, opts, relay.onAck)
		a.answerJSON(uid, map[string]any{"type": reqBroadcastCount, "requestId": rid, "clientCount": n})
		relay.counted()
	}
}

func (a *classicAdapter) answerJSON(requester string, v any) {
	msg, err := socketio.MarshalJSON(v)
	if err != nil {
		a.log.Debug().Err(err).Msg("encode an answer")
		return
	}
	a.answer(requester, msg)
}

// sseAck answers a serverSideEmit once, with the first argument, on the shared response
// channel (where Node always answers those).
func (a *classicAdapter) sseAck(rid any) func(...any) {
	var once sync.Once
	return func(args ...any) {
		once.Do(func() {
			r := map[string]any{"type": reqServerSideEmit, "requestId": rid}
			if len(args) > 0 {
				r["data"] = args[0]
			}
			msg, err := socketio.MarshalJSON(r)
			if err != nil {
				a.log.Debug().Err(err).Msg("encode a serverSideEmit answer")
				return
			}
			a.answerOn(a.responseChannel, msg)
		})
	}
}

// onResponse takes another node's answer to one of our requests (answers carry no uid: they
// are told apart by request id).
func (a *classicAdapter) onResponse(_, payload string) {
	v, err := decodeAny([]byte(payload))
	if err != nil {
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	key := requestKey(m["requestId"])
	if key == "" {
		return
	}
	if !a.acks.answer(key, m) {
		a.pending.answer(key, m)
	}
}
