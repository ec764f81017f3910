package server

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"
)

// namespaceStats counts one namespace across the cluster.
type namespaceStats struct {
	// Sockets connected to the namespace.
	Sockets int `json:"sockets"`
	// Rooms with at least one socket in them, the sockets' own id rooms not counted (user: rooms
	// are).
	Rooms int `json:"rooms"`
}

// statsReply is the answer of GET /api/v1/stats.
type statsReply struct {
	// Connections is the number of sockets over every namespace, cluster-wide (a client connected
	// to "/" and "/chat" counts twice, as it has two sockets).
	Connections int                       `json:"connections"`
	Namespaces  map[string]namespaceStats `json:"namespaces"`
	// Nodes is how many servers the adapter sees, this one included.
	Nodes         int64  `json:"nodes"`
	UptimeSeconds int64  `json:"uptimeSeconds"`
	Version       string `json:"version"`
}

// stats counts sockets and rooms per namespace through the adapters (cluster-wide with Redis).
func (s *Server) stats(_ http.ResponseWriter, r *http.Request) (apiReply, error) {
	if err := checkQuery(r.URL.Query(), nil); err != nil {
		return apiReply{}, err
	}
	res := statsReply{
		Namespaces:    make(map[string]namespaceStats, len(s.nsps)),
		Nodes:         s.serverCount(r.Context()),
		UptimeSeconds: int64(time.Since(s.started) / time.Second),
		Version:       Version,
	}
	for name := range s.nsps {
		sockets, err := s.fetchSockets(r.Context(), target{Namespace: name}, "rooms")
		if err != nil {
			return apiReply{}, err
		}
		rooms := map[string]struct{}{}
		for _, rs := range sockets {
			for _, room := range ownRoomsExcluded(rs.ID, rs.Rooms) {
				rooms[room] = struct{}{}
			}
		}
		res.Namespaces[name] = namespaceStats{Sockets: len(sockets), Rooms: len(rooms)}
		res.Connections += len(sockets)
	}
	return apiReply{http.StatusOK, res}, nil
}

// serverCount is how many servers the adapter sees, this one included. Every namespace's adapter
// sees the same cluster; "/" is asked when this node serves it (it may not: conformance mode
// serves other namespaces), and a node serving none counts itself.
func (s *Server) serverCount(ctx context.Context) int64 {
	nsp, ok := s.nsps["/"]
	if !ok {
		for _, name := range slices.Sorted(maps.Keys(s.nsps)) {
			nsp = s.nsps[name]
			break
		}
	}
	if nsp == nil {
		return 1
	}
	n, err := nsp.Adapter().ServerCount(ctx)
	if err != nil || n < 1 {
		return 1
	}
	return int64(n)
}
