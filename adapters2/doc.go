// Package adapters holds the cluster backends of the Socket.IO server (package socketio): the
// adapters that share rooms, broadcasts and requests between nodes through Redis, and the Redis
// connection they hold (conn.go). The full description is written with the adapters.
//
// # Presence on Redis
//
// RedisPresence (presence_redis.go, presence_node.go) is socketio.Presence for a cluster: each
// node counts the sockets of each member in each room, in Redis, as they join and leave. Every
// change is one Lua script, fenced like the adapters' calls (it does nothing if Redis runs it
// late, so an error always means "not counted"), so exactly one caller in the cluster sees a
// member's or a room's first arrival and last departure.
//
// Keys (P is the backend's prefix, N the presence's name, R a room, id a node's 16-hex id; a
// room's keys share the hash tag {R}, so each script touches one slot of a Redis Cluster):
//
//	P:presence:N:{R}:m       hash  member → its sockets in R, all nodes together
//	P:presence:N:{R}:i       hash  member → its info (the newest Join's)
//	P:presence:N:{R}:n:<id>  hash  member → its sockets in R that node id counted
//	P:presence-node:{<id>}   set   "N NUL R" for each room node id may have counts in
//	P:presence-nodes:{presence}  sorted set  live node id → Redis's clock (ms) at its last heartbeat
//	P:presence-dead:{presence}   sorted set  claimed node id → Redis's clock at its claim
//
// Nothing grows without bound: a room's keys go with its last member, a node's set loses a room
// when its counts there end, an id leaves the live set when it is claimed or closes, and the
// dead set 16 s after its claim (reaped again at each heartbeat until then, for a write it had
// in flight).
//
// Dead nodes, and the bound: every node heartbeats every 2 s (PresenceHeartbeat). A node unseen
// for 6 s (PresenceTimeout, by Redis's clock, so no two nodes' clocks are compared) is claimed
// dead by one survivor (one script moves it from the live set to the dead set: one claim wins),
// and the survivors reap its counts room by room, each room in one script that returns the
// departures it made, which OnExpired reports on that node: once in the cluster. A node killed
// (SIGKILL, a crash, a lost host) has its members removed and reported within 8 s of its last
// heartbeat (Timeout + one heartbeat), provided one survivor has been heartbeating cleanly for 6 s
// (a node that just started, or that just saw a Redis outage, waits that long before it claims
// anyone: after an outage every live node gets the time to beat again, so an outage claims
// nobody). A node that closes with members counted hands them to the others at once (they are
// reported at the next heartbeat). A node that was taken for dead while it lived (paused longer
// than the timeout) finds its id gone at its next heartbeat and counts under a new id from then
// on; its earlier sockets, reported gone, stay gone (their Leaves change nothing). A Leave that
// fails (Redis down) is retried at each heartbeat; the departure it then makes goes to
// OnExpired.
package adapters
