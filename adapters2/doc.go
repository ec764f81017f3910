// Package adapters holds the cluster backends of the Socket.IO server (package socketio): the
// adapters that share rooms, broadcasts and requests between nodes through Redis, and the Redis
// connection they hold (conn.go). The full description is written with the adapters.
//
// # redis-streams: @socket.io/redis-streams-adapter 0.3.1 on the wire
//
// streams.go, streams_adapter.go and streams_recovery.go speak 0.3.1's format (the Node
// adapter extends the plain ClusterAdapter; P is the prefix, which is also the stream's name):
//
//   - Broadcasts without ack, socketsJoin, socketsLeave and disconnectSockets are entries of the
//     stream P: XADD P MAXLEN ~ 10000 * uid <uid> nsp <nsp> type "3"|"4"|"5"|"6" data <JSON, or
//     standard base64 of msgpack when the event holds binary>, run by a fenced script. Every
//     node reads the stream (XREAD COUNT 100 BLOCK 5000, on a connection of its own, unblocked
//     at Close) in stream order; the entry id is the event's connection state recovery offset,
//     appended as its last argument when recovery is on (an event without ack, not volatile).
//   - The same script pushes each entry a Go node adds, with the id of the entry before it, on
//     the channel {P}-entries, which only Go nodes subscribe: a Go node delivers it from there
//     at once, and from the stream what the push did not bring (an entry of a Node server, or
//     one pushed while its subscription was away). The push leaves Redis in the same pass of
//     its event loop as the caller's answer, so an entry answered as added reaches the Go nodes
//     even when Redis dies right after it, stream and all (a reader between two XREADs would
//     miss it: the kill test fails without the push).
//   - fetchSockets (7), serverSideEmit (9, with or without ack) and broadcasts with acks (3 with
//     a requestId) are PUBLISHed on P#NSP#, their answers (8, 10, 11, 12) on
//     P#NSP#<requester's uid>#, each one msgpack map {type, data, uid, nsp} (msgpack only, as
//     0.3.1 reads them). Every node subscribes both channels once per namespace.
//   - Nodes are counted by PUBSUB NUMSUB P#NSP#, as 0.3.1 counts them (it sends no heartbeats:
//     those were 0.2.x's, and a count by heartbeat would not see a 0.3.1 Node server). After a
//     Redis outage a node is ready again only once as many nodes listen on each namespace as
//     before (HoldRecovery), so a request right after it reaches every node.
//   - Sessions: SET <session prefix><pid> base64(msgpack {sid, pid, rooms (its own id first),
//     data}) PX <what is left of the recovery window>. The session prefix is Node's default,
//     "sio:session:", with the default prefix, and "P:session:" with any other (give Node
//     servers that sessionKeyPrefix). Restoring takes the session out (MULTI GET DEL: it is
//     restored once), checks that the offset is still in the stream (XRANGE offset offset),
//     puts the socket in the session's rooms, then reads the entries after the offset (XRANGE,
//     1000 at a time, at most 100 times) and replays the type-3 ones of the namespace that
//     reached the session's rooms (Node's rule), each with its entry id. No session, an expired
//     one, or an offset no longer in the stream (trimmed past 10,000 entries) give a new session.
//
// What interoperates with Node 0.3.1 (streams_node_test.go, a Go node and a Node 4.8.4 server on
// one Redis, each way): broadcasts to everyone, rooms, a socket id, with except, with binary
// arguments (both read each other's JSON and msgpack entries, and both append the same offsets);
// socketsJoin, socketsLeave, disconnectSockets; fetchSockets (id, rooms, data, handshake);
// serverSideEmit with and without ack, binary included; broadcasts with acks (every client
// counted, every ack collected); serverCount (each counts 2); and connection state recovery: a
// client that dropped from a Node server recovers on a Go node, and the other way round, with
// its id, rooms, data and missed events.
//
// What does not, or differs:
//   - streamCount > 1 (Node spreads namespaces over streams P-<hash>): Go reads and writes the one
//     stream P; run Node servers with streamCount 1, the default.
//   - useShardedPubSub: Go uses PUBLISH/SUBSCRIBE; run Node servers without it, the default.
//   - Volatile events: Node replays them on recovery, Go does not (they have no offset).
//   - Go reads the stream from its end when it starts; Node from "$" once its first XREAD runs
//     (what is added before that, Node misses).
//   - Node 0.2.x (heartbeats and requests in the stream) is not understood.
//   - A session's data comes back as plain values (a Go struct as the map of its JSON fields).
//   - Restoring needs Redis 6.2 or newer (an exclusive XRANGE).
//   - What a Node server adds reaches Go nodes through the stream only, so if Redis dies before a
//     Go node read it, it is lost to that node (as it is to other Node servers).
//
// During an outage: broadcasts, joins, leaves and disconnects fail at once with
// socketio.ErrUnavailable (and deliver nothing, locally included) while Redis is known down
// (within 750 ms, conn.go); a call in flight when Redis stops (SIGSTOP) fails after at most its
// 900 ms read timeout, and takes effect only if Redis ran it before it stopped (then the others
// get it late: the one ambiguity no fence removes). Sequential broadcasts keep their order on
// every node; the stream's reader and the subscriptions come back by themselves.
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
