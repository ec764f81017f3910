package server

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// joinRequest is the body of POST /api/v1/sockets/join.
type joinRequest struct {
	target
	Join []string `json:"join"`
}

// leaveRequest is the body of POST /api/v1/sockets/leave.
type leaveRequest struct {
	target
	Leave []string `json:"leave"`
}

// disconnectRequest is the body of POST /api/v1/sockets/disconnect.
type disconnectRequest struct {
	target
	// Close also closes the underlying connection (every namespace of that client), as
	// disconnectSockets(true) does.
	Close bool `json:"close"`
}

var okReply = apiReply{http.StatusOK, okBody}

// socketsJoin makes the selected sockets join rooms.
func (s *Server) socketsJoin(w http.ResponseWriter, r *http.Request) (apiReply, error) {
	req, err := decodeBody[joinRequest](w, r, s.cfg.MaxPayload, s.cfg.bodyReadTimeout())
	if err != nil {
		return apiReply{}, err
	}
	if err := checkRoomList("join", req.Join, true); err != nil {
		return apiReply{}, err
	}
	_, op, err := s.operator(req.target)
	if err != nil {
		return apiReply{}, err
	}
	if err := op.SocketsJoin(r.Context(), req.Join...); err != nil {
		return apiReply{}, err
	}
	return okReply, nil
}

// socketsLeave makes the selected sockets leave rooms.
func (s *Server) socketsLeave(w http.ResponseWriter, r *http.Request) (apiReply, error) {
	req, err := decodeBody[leaveRequest](w, r, s.cfg.MaxPayload, s.cfg.bodyReadTimeout())
	if err != nil {
		return apiReply{}, err
	}
	if err := checkRoomList("leave", req.Leave, true); err != nil {
		return apiReply{}, err
	}
	_, op, err := s.operator(req.target)
	if err != nil {
		return apiReply{}, err
	}
	if err := op.SocketsLeave(r.Context(), req.Leave...); err != nil {
		return apiReply{}, err
	}
	return okReply, nil
}

// socketsDisconnect disconnects the selected sockets (a server-side disconnect: the clients do
// not reconnect by themselves).
func (s *Server) socketsDisconnect(w http.ResponseWriter, r *http.Request) (apiReply, error) {
	req, err := decodeBody[disconnectRequest](w, r, s.cfg.MaxPayload, s.cfg.bodyReadTimeout())
	if err != nil {
		return apiReply{}, err
	}
	_, op, err := s.operator(req.target)
	if err != nil {
		return apiReply{}, err
	}
	if err := op.DisconnectSockets(r.Context(), req.Close); err != nil {
		return apiReply{}, err
	}
	return okReply, nil
}

// socketInfo is one entry of GET /api/v1/sockets: who is connected and where.
type socketInfo struct {
	ID   string          `json:"id"`
	User namespaces.User `json:"user"`
	// Rooms are the socket's rooms without its own id room, sorted.
	Rooms []string `json:"rooms"`
}

// socketsQuery lists the query parameters GET /api/v1/sockets accepts.
var socketsQuery = map[string]bool{"namespace": true, "room": true}

// listSockets answers who is connected: every socket of the namespace, or those in any of the
// given rooms (?room= may repeat), across the cluster.
func (s *Server) listSockets(_ http.ResponseWriter, r *http.Request) (apiReply, error) {
	q := r.URL.Query()
	if err := checkQuery(q, socketsQuery); err != nil {
		return apiReply{}, err
	}
	if len(q["namespace"]) > 1 {
		return apiReply{}, badRequest("namespace must be given once")
	}
	sockets, err := s.fetchSockets(r.Context(), target{Namespace: q.Get("namespace"), Rooms: q["room"]}, "room")
	if err != nil {
		return apiReply{}, err
	}
	out := make([]socketInfo, 0, len(sockets))
	for _, rs := range sockets {
		out = append(out, describeSocket(rs))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return apiReply{http.StatusOK, map[string]any{"sockets": out}}, nil
}

// checkQuery refuses query parameters outside allowed, so that a misspelt filter is an error
// rather than a list of everyone.
func checkQuery(q url.Values, allowed map[string]bool) error {
	for k := range q {
		if !allowed[k] {
			return badRequest("unknown query parameter %q", k)
		}
	}
	return nil
}

// fetchSockets validates t and returns the matching sockets of every node. roomsField names the
// rooms in errors ("rooms" in bodies, "room" in the query).
func (s *Server) fetchSockets(ctx context.Context, t target, roomsField string) ([]socketio.RemoteSocket, error) {
	nsp, err := s.namespace("namespace", t.Namespace)
	if err != nil {
		return nil, err
	}
	if err := checkRoomList(roomsField, t.Rooms, false); err != nil {
		return nil, err
	}
	sockets, err := nsp.To(t.Rooms...).FetchSockets(ctx)
	if err != nil {
		return nil, fmt.Errorf("api: fetch sockets of %s: %w", nsp.Name(), err)
	}
	return sockets, nil
}

// describeSocket reads a socket's user and rooms; a socket without identity data (none should
// exist) is described as anonymous.
func describeSocket(rs socketio.RemoteSocket) socketInfo {
	ident, ok := namespaces.IdentityFromData(rs.Data)
	if !ok {
		ident = namespaces.Anonymous(rs.ID, rs.Handshake.Auth)
	}
	return socketInfo{ID: rs.ID, User: ident.User, Rooms: ownRoomsExcluded(rs.ID, rs.Rooms)}
}

// ownRoomsExcluded lists rooms, sorted, without the socket's own id room.
func ownRoomsExcluded(id string, rooms []string) []string {
	out := make([]string, 0, len(rooms))
	for _, r := range rooms {
		if r != id {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}
