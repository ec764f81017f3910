package adapters

// redis_requests.go: the classic adapter's side of other nodes' requests and answers.

import (
	"github.com/switchboard/switchboard/socketio"
)

// onRequest handles another node's (or the emitter's) request; the joins, leaves, disconnects
// and broadcasts run here, in the order they were published.
func (a *classicAdapter) onRequest(_, payload string) {
	m := a.object(payload, decodeAny, "request")
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
		op := remoteOp(int(typ) - reqRemoteJoin)
		if _, ok := m["opts"]; ok {
			if !mine { // ours was applied when it was published
				a.onRemote(op, m)
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
		switch op {
		case remoteJoin:
			s.Join(room)
		case remoteLeave:
			s.Leave(room)
		default:
			c, _ := m["close"].(bool)
			s.Disconnect(c)
		}
		a.answerJSON(uid, map[string]any{"requestId": rid})
	case reqRemoteFetch:
		if !mine {
			a.onFetch(uid, rid, m["opts"])
		}
	case reqServerSideEmit:
		if data, ok := m["data"].([]any); ok && !mine {
			a.onServerSideEmit(uid, rid, data, withID)
		}
	case reqBroadcast:
		if mine || a.pending.has(requestKey(rid)) {
			return
		}
		p, ok := decodePacket(m["packet"], a.nsp.Name())
		if !ok {
			return
		}
		o := decodeOpts(m["opts"])
		a.onBroadcastWithAck(uid, rid, p, socketio.BroadcastOptions{Rooms: o.Rooms, Except: o.Except}) // Node's receiver drops the flags
	}
}

// onResponse takes another node's answer to one of our requests (answers carry no uid: they
// are told apart by request id).
func (a *classicAdapter) onResponse(_, payload string) {
	m := a.object(payload, decodeAny, "")
	if key := requestKey(m["requestId"]); key != "" {
		typ, _ := m["type"].(float64)
		a.pending.answer(key, typ, m)
	}
}

// Answers to other nodes: JSON on P-response#NSP# (a client's ack: msgpack).

func (a *classicAdapter) answerJSON(requester string, v any) {
	msg, err := socketio.MarshalJSON(v)
	if err != nil {
		a.log.Debug().Err(err).Msg("encode an answer")
		return
	}
	a.queueAnswer(a.responseTo(requester), msg)
}

// answerCount implements clusterWire (type 8, with 0 too: Node's emitWithAck waits for it).
func (a *classicAdapter) answerCount(requester string, rid any, clients int) {
	a.answerJSON(requester, map[string]any{"type": reqBroadcastCount, "requestId": rid, "clientCount": clients})
}

// answerAck implements clusterWire (type 9, msgpack: the ack may hold binary).
func (a *classicAdapter) answerAck(requester string, rid any, v any, ok bool) {
	a.answerValue(a.responseTo(requester), reqBroadcastAck, rid, "packet", v, ok, true)
}

// answerSockets implements clusterWire.
func (a *classicAdapter) answerSockets(requester string, rid any, sockets []wireSocket) {
	a.answerJSON(requester, map[string]any{"requestId": rid, "sockets": sockets})
}

// answerSSE implements clusterWire: JSON, on the shared response channel (where Node always
// answers those).
func (a *classicAdapter) answerSSE(_ string, rid any, v any, ok bool) {
	a.answerValue(a.responseChannel, reqServerSideEmit, rid, "data", v, ok, false)
}

// answerValue sends {type, requestId, key: v} on channel, in msgpack or JSON; key is left out
// without v (Node's undefined).
func (a *classicAdapter) answerValue(channel string, typ int, rid any, key string, v any, ok, msgpack bool) {
	r := map[string]any{"type": typ, "requestId": rid}
	if ok {
		r[key] = v
	}
	var msg []byte
	var err error
	if msgpack {
		msg, err = socketio.EncodeMsgpack(r)
	} else {
		msg, err = socketio.MarshalJSON(r)
	}
	if err != nil {
		a.log.Debug().Err(err).Msg("encode an answer")
		return
	}
	a.queueAnswer(channel, msg)
}
