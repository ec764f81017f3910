// Package adapters holds the room/broadcast backends of the Socket.IO server (package
// socketio). New(Config) returns a Backend: the adapter factory of every namespace, presence,
// the Redis command client and Status, for
//
//   - memory: one node, socketio's own adapter (it recovers sessions) and presence;
//   - redis: Redis pub/sub, Node's createAdapter of @socket.io/redis-adapter 8.3 (redis.go);
//   - redis-sharded: Redis 7 sharded pub/sub, Node's createShardedAdapter of the same package,
//     for a Redis Cluster (sharded.go);
//   - redis-streams: Redis Streams, @socket.io/redis-streams-adapter 0.3.1, the one that
//     recovers sessions across nodes (streams*.go).
//
// Each cluster adapter embeds socketio's LocalAdapter (this node's sockets and rooms) and speaks
// its Node counterpart's wire exactly, so Node servers, the Node emitter and Go nodes share one
// cluster. The package also owns the Redis connection they hold (conn.go): its URL forms, its
// outage detection, its fail-fast and its fenced calls. It is one package past 2,000 lines
// because the backends share that connection, its fences and recovery hold, the subscriptions,
// the wire helpers and the request bookkeeping; its files split by concept (conn, subscriber,
// wire, requests, adapter: the calls and the handling of other nodes' requests the three Redis
// adapters share, one or more per adapter for its wire, presence). The Redis adapters have
// ServerSideEmitWithAck(ctx, args) ([]any, error) beside socketio.Adapter (Node's
// serverSideEmit with an ack: the first argument of each other node's answer).
//
// # Redis URLs
//
// redis://[user:password@]host:port[/db] or rediss:// (TLS) name one server. A Redis Cluster is
// redis+cluster://[user:password@]host:port,host:port,... (rediss+cluster:// for TLS), or a
// redis:// URL with several comma-separated addresses: they are seeds (the layout is read from
// them), with database 0 only. Query options are go-redis's (dial_timeout=3s, ...).
//
// # Outages and their bounds (conn.go)
//
//   - Detection: a pinger asks every master the time every 250 ms and gives it 500 ms, so a Redis
//     that stopped (SIGSTOP) or died is marked down within 750 ms; a command that loses its
//     connection or times out marks it down at once.
//   - While down, every command fails at once with ErrRedisDown, and the adapters answer
//     socketio.ErrUnavailable for every call that would reach the cluster (broadcasts, acks,
//     joins, leaves, disconnects, fetches, serverSideEmit, server count), delivering nothing,
//     locally included: an error means nobody got it. A call in flight when Redis stops fails
//     within 900 ms.
//   - Fenced calls: what the adapters send for their callers runs in a Lua script that first
//     checks Redis's clock against a deadline 250 ms after the call (in Redis's time base, from
//     the pinger's measures): a command that Redis runs later (it stayed in a socket buffer
//     through a SIGSTOP) does nothing, so a call answered as failed never takes effect after.
//     Subscribers see the script's PUBLISH/SPUBLISH/XADD as Node's.
//   - Recovery by itself: while down the pinger asks every 100 ms; once Redis answers, the
//     connection waits (HoldRecovery) until as many nodes listen on each namespace as before the
//     outage (NUMSUB or SHARDNUMSUB, counted every second while up), on two rounds 100 ms apart,
//     at most 3 s: a broadcast answered as done right after an outage does not miss a node (Go
//     or Node) that is still resubscribing. Until then calls still fail fast.
//   - Logs: one error line when the outage begins, one info line when it ends (with its
//     duration), component=adapter. Status: redis up/down (down while the recovery waits),
//     downSince, outages, failures.
//   - Order: sequential Broadcast calls keep their order on every node (one fenced publish, then
//     local delivery; each node delivers what it receives in order), with one exception:
//     redis-sharded on a Redis Cluster (below).
//   - What no fence removes: a Redis that dies between answering a publish and writing it to
//     its subscribers (microseconds) loses it for them; a process that stalls 650 ms while
//     Redis's answer waits in its socket reports a call failed that took effect; a message
//     published while a node's subscription is away (outside an outage this node saw) is lost
//     for that node, as pub/sub is.
//
// # redis: @socket.io/redis-adapter 8.3.0 createAdapter on the wire
//
// P is the prefix (Config.Prefix, "socket.io" by default: Node's key), NSP the namespace.
//
//   - Each namespace PSUBSCRIBEs P#NSP#* (escaped), then SUBSCRIBEs P-request#NSP#,
//     P-response#NSP# and P-response#NSP#<uid># on the backend's one subscription connection.
//   - Broadcast: notepack-compatible msgpack [uid, {type: 2, data: [event, ...args], nsp},
//     {rooms: [...], except: [...], flags: {volatile?}}] on P#NSP#<room># for exactly one room,
//     P#NSP# otherwise; binary stays msgpack bin in data. Receivers skip a room channel without
//     a local member before decoding, drop their own uid, take a missing nsp for /, accept rooms
//     given as numbers.
//   - Requests on P-request#NSP#, JSON (broadcast with ack: msgpack), both read on receipt:
//     0 sockets, 1 all rooms, 2/3/4 join/leave/disconnect (with opts; also the 7.x form by sid,
//     answered), 5 fetchSockets, 6 serverSideEmit (with requestId: acked, on the shared response
//     channel), 7 broadcast with ack, answered by one type-8 client count (0 included) then one
//     type-9 msgpack per client ack (its first argument). Joins, leaves and disconnects from the
//     emitter carry no uid and are applied; ours are applied locally once Redis took them and
//     their echo is skipped. Answers go to the shared P-response#NSP# (Node's default; Go
//     listens on both). Reserved serverSideEmit names (connect, connection, new_namespace) are
//     neither sent nor handed on.
//   - Server count: PUBSUB NUMSUB P-request#NSP# summed over the masters; fetchSockets and
//     serverSideEmit with ack wait for count-1 answers, 5 s at most (then what arrived and an
//     error wrapping context.DeadlineExceeded); broadcasts with acks end once every counted
//     node reported its count and every counted client acked, or when the caller's context ends
//     (flags.timeout carries what is left of it).
//
// Interoperates (redis_test.go, with Node 20, socket.io 4.8.4, @socket.io/redis-adapter 8.3.0,
// @socket.io/redis-emitter 5.1.0, node-redis 5): broadcasts every way (rooms, except, volatile,
// socket ids, binary) between Go and Node servers and from the emitter; broadcasts with acks
// started on either side; fetchSockets both ways (id, rooms, data as JSON, Node's handshake
// object); socketsJoin, socketsLeave and disconnectSockets from Go, Node and the emitter;
// serverSideEmit with and without ack both ways and from the emitter; the server count.
// Differs: no connection state recovery (as Node's classic adapter); serverSideEmit is JSON, so
// binary arrives as Node's Buffer JSON {"type":"Buffer","data":[...]} (as between Node
// servers); the request timeout is Node's default, 5 s; never share a prefix with the sharded or
// streams adapter (their channels match P#NSP#*).
//
// # redis-sharded: createShardedAdapter (8.3.0, subscriptionMode "dynamic") on the wire
//
//   - socket.io-adapter 2.5's ClusterAdapter messages {type, data, uid, nsp}: JSON, or one
//     msgpack map when the data holds binary; both read on receipt. Types 3 broadcast (packet
//     without nsp; with requestId: with ack), 4/5 join/leave, 6 disconnect, 7 fetch, 9
//     serverSideEmit ({packet}, with requestId: with ack), answers 8, 10, 11, 12.
//   - SSUBSCRIBE P#NSP# (everything), P#NSP#<uid># (answers to us) and P#NSP#<room># for every
//     local room that is not a local socket's id, subscribed when it appears and left when it
//     empties, in the background (as Node: a broadcast to a room published before a node's
//     subscription is done misses it). A broadcast without ack to exactly one room goes to the
//     room's channel unless the room is 20 UTF-16 units long (a socket id: Go's are 20 too);
//     everything else to P#NSP#; answers to P#NSP#<requester>#.
//   - Server count: PUBSUB SHARDNUMSUB P#NSP# summed over the masters.
//   - On a Redis Cluster each channel is subscribed on its slot's master (one connection per
//     master), channel by channel; a channel whose slot moves is subscribed again on its new
//     master. The fenced SPUBLISH runs on the channel's master.
//
// Interoperates (sharded_test.go, Node peer with createShardedAdapter, on one Redis 7 and on a
// Redis Cluster of three masters with node-redis's cluster client): every check of the classic
// adapter but the emitter's, with binary serverSideEmit kept. Differs: only subscriptionMode
// "dynamic" (Node servers must keep that default; "static" and "dynamic-private" route
// socket-id and room broadcasts elsewhere); the emitter does not reach sharded nodes (it speaks
// the classic protocol, in Node too); on a Redis Cluster, sequential broadcasts keep their order
// per channel only (a broadcast to one room and one to several rooms go through different
// masters), as in Node; Node's junk offsets with connection state recovery on ("" or null) are
// not imitated.
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
// OnExpired. A Redis that loses its data (restarted without persistence, flushed) loses presence
// with it: every node finds its id gone, counts under a new one, and no departure is reported
// for the sockets it had (they count again when they next join).
package adapters
