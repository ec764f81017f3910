package server

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Bounds of emitRequest.AckTimeoutMs.
const (
	minAckTimeoutMs = 1
	maxAckTimeoutMs = 60_000
)

// reservedEvents are the event names Socket.IO keeps for itself; a client would take an emit of
// one for the library's own signal.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

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
	// Acks holds the first argument of each client's ack that arrived in time.
	Acks []any `json:"acks"`
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

// flags are the request's broadcast flags, with the ack timeout when it waits for acks.
func (req *emitRequest) flags(timeout *time.Duration) *socket.BroadcastFlags {
	flags := &socket.BroadcastFlags{Timeout: timeout}
	flags.Volatile = req.Volatile
	return flags
}

// emit broadcasts an event to the selected sockets: 202 at once, or with ackTimeoutMs 200 once
// every matching client acked or the timeout passed.
//
// It hands the packet to the namespace's adapter itself, as the library's BroadcastOperator.Emit
// does after its checks (args already made them): building the operator with To and Except
// copies the room sets three times over, for nothing the adapter needs.
func (s *Server) emit(w http.ResponseWriter, r *http.Request) (apiReply, error) {
	req, err := decodeBody[emitRequest](w, r, s.cfg.MaxPayload, s.cfg.bodyReadTimeout())
	if err != nil {
		return apiReply{}, err
	}
	args, err := req.args()
	if err != nil {
		return apiReply{}, err
	}
	nsp, err := s.selection(req.target)
	if err != nil {
		return apiReply{}, err
	}
	if req.AckTimeoutMs == nil {
		packet := &parser.Packet{Type: parser.EVENT, Data: append([]any{req.Event}, args...)}
		nsp.Adapter().Broadcast(packet, req.broadcastOptions(req.flags(nil)))
		return apiReply{http.StatusAccepted, okBody}, nil
	}
	timeout := time.Duration(*req.AckTimeoutMs) * time.Millisecond
	res := emitWithAcks(r, nsp, req, args, timeout)
	return apiReply{http.StatusOK, res}, nil
}

// emitWithAcks broadcasts through the namespace's adapter and collects one value per client ack:
// the first argument. It is the library's BroadcastOperator.Emit with an ack, except that
// operator flattens every argument of every ack into one list, where the API promises one entry
// per client. Like the operator it is complete when every server the adapter counts reported how
// many clients it reached and that many acks arrived, and it forgets the pending acks of local
// sockets when the timeout (or the HTTP client leaving) ends the wait.
func emitWithAcks(r *http.Request, nsp socket.Namespace, req *emitRequest, args []any, timeout time.Duration) emitAcks {
	adapter := nsp.Adapter()
	packet := &parser.Packet{Type: parser.EVENT, Data: append([]any{req.Event}, args...)}
	opts := req.broadcastOptions(req.flags(&timeout))

	var (
		mu      sync.Mutex
		acks    = []any{}
		servers int64
		clients uint64
		done    = make(chan struct{})
		// complete: every expected ack arrived; closed: no more acks are taken.
		complete, closed bool
	)
	expected := int64(-1)
	// check closes done once the collection is complete; mu is held.
	check := func() {
		if !closed && expected >= 0 && servers == expected && uint64(len(acks)) == clients {
			complete, closed = true, true
			close(done)
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	adapter.BroadcastWithAck(packet, opts, func(n uint64) {
		mu.Lock()
		defer mu.Unlock()
		servers++
		clients += n
		check()
	}, func(res []any, _ error) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		var first any
		if len(res) > 0 {
			first = res[0]
		}
		acks = append(acks, first)
		check()
	})
	mu.Lock()
	expected = adapter.ServerCount()
	check()
	mu.Unlock()

	select {
	case <-done:
	case <-timer.C:
	case <-r.Context().Done():
	}
	mu.Lock()
	defer mu.Unlock()
	if !closed {
		closed = true
		if packet.Id != nil {
			id := *packet.Id
			nsp.Sockets().Range(func(_ socket.SocketId, s *socket.Socket) bool {
				s.Acks().Delete(id)
				return true
			})
		}
	}
	return emitAcks{Acks: append([]any{}, acks...), TimedOut: !complete}
}
