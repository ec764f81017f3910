package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/switchboard/switchboard/socketio"
)

// Bounds of emitRequest.AckTimeoutMs.
const (
	minAckTimeoutMs = 1
	maxAckTimeoutMs = 60_000
)

// reservedEvents are the event names Socket.IO keeps for itself; a client would take an emit of
// one for its own signal.
var reservedEvents = socketio.ReservedEvents

// emitRequest is the body of POST /api/v1/emit: the Socket.IO broadcast operator as JSON.
type emitRequest struct {
	target
	Event string `json:"event"`
	// Data is the event's one argument; Args its argument list. At most one of them is given;
	// neither means an event without arguments.
	Data         json.RawMessage `json:"data"`
	Args         *[]any          `json:"args"`
	Volatile     bool            `json:"volatile"`
	AckTimeoutMs *int64          `json:"ackTimeoutMs"`
}

// emitAcks is the answer of an emit that waited for acknowledgements.
type emitAcks struct {
	// Acks holds the first argument of each client's ack that arrived in time (binary data as
	// {"type":"Buffer","data":[...]}, the JSON of Node's Buffer; null for an ack without
	// arguments).
	Acks []json.RawMessage `json:"acks"`
	// TimedOut says the timeout ended the wait before every matching client acked.
	TimedOut bool `json:"timedOut"`
}

// args validates the request and returns the event's arguments.
func (req *emitRequest) args() ([]any, error) {
	if req.Event == "" {
		return nil, badRequest("event must be a non-empty string")
	}
	if reservedEvents[req.Event] {
		return nil, badRequest("event %q is reserved by Socket.IO", req.Event)
	}
	if req.AckTimeoutMs != nil && (*req.AckTimeoutMs < minAckTimeoutMs || *req.AckTimeoutMs > maxAckTimeoutMs) {
		return nil, badRequest("ackTimeoutMs must be an integer from %d to %d", minAckTimeoutMs, maxAckTimeoutMs)
	}
	switch {
	case req.Data != nil && req.Args != nil:
		return nil, badRequest("data and args cannot both be given: data is one argument, args a list")
	case req.Args != nil:
		return *req.Args, nil
	case req.Data != nil:
		var v any
		if err := json.Unmarshal(req.Data, &v); err != nil {
			return nil, badRequest("data must be a JSON value")
		}
		return []any{v}, nil
	default:
		return []any{}, nil
	}
}

// emit broadcasts an event to the selected sockets: 202 once the cluster took it, or with
// ackTimeoutMs 200 once every matching client acked or the timeout passed. While the cluster
// cannot take it (Redis down) it fails at once with 503 and nothing is delivered.
func (s *Server) emit(w http.ResponseWriter, r *http.Request) (apiReply, error) {
	req, err := decodeBody[emitRequest](w, r, s.cfg.MaxPayload, s.cfg.bodyReadTimeout())
	if err != nil {
		return apiReply{}, err
	}
	args, err := req.args()
	if err != nil {
		return apiReply{}, err
	}
	nsp, op, err := s.operator(req.target)
	if err != nil {
		return apiReply{}, err
	}
	if req.Volatile {
		op = op.Volatile()
	}
	if req.AckTimeoutMs == nil {
		if err := op.Emit(req.Event, args...); err != nil {
			return apiReply{}, err
		}
		return apiReply{http.StatusAccepted, okBody}, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(*req.AckTimeoutMs)*time.Millisecond)
	defer cancel()
	acks, timedOut, err := op.EmitWithAck(ctx, req.Event, args...)
	if err != nil {
		return apiReply{}, err
	}
	res := emitAcks{Acks: make([]json.RawMessage, 0, len(acks)), TimedOut: timedOut}
	for _, a := range acks {
		first, err := a.JSON(0)
		if err != nil {
			first = json.RawMessage("null") // an ack without arguments
		}
		res.Acks = append(res.Acks, first)
	}
	s.metrics.ObserveAcks(nsp.Name(), len(acks), timedOut)
	return apiReply{http.StatusOK, res}, nil
}
