package adapters

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/switchboard/switchboard/socketio"
)

// The sharded adapter's messages and channels are Node's (redis-wire notes §5.2, §5.3).
func TestShardedWire(t *testing.T) {
	a := &shardedAdapter{uid: "0ca360f20765ad50", channel: "socket.io#/#"}
	a.clusterAdapter = &clusterAdapter{nsp: rootNamespace(t)}
	enc := func(typ int, data any, binary bool) string {
		t.Helper()
		b, err := a.encode(typ, data, binary)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// remote is a join, leave or disconnect of the sockets in r1 as sendRemote writes it.
	remote := func(op remoteOp, rooms []string, close bool) string {
		typ, data := remoteData(op, socketio.BroadcastOptions{Rooms: []string{"r1"}}, rooms, close)
		return enc(typ, data, false)
	}
	tests := []struct {
		name, got, want string
	}{
		{"broadcast", enc(msgBroadcast, broadcastData{Packet: wirePacket{Type: 2, Data: []any{"hello", "x"}}, Opts: encodeOpts(socketio.BroadcastOptions{Rooms: []string{"r1"}})}, false),
			`{"type":3,"data":{"packet":{"type":2,"data":["hello","x"]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"0ca360f20765ad50","nsp":"/"}`},
		{"fetch", enc(msgFetchSockets, fetchData{Opts: encodeOpts(socketio.BroadcastOptions{Rooms: []string{"r1"}}), RequestID: "5dca91675e4fe641"}, false),
			`{"type":7,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"requestId":"5dca91675e4fe641"},"uid":"0ca360f20765ad50","nsp":"/"}`},
		{"join", remote(remoteJoin, []string{"r2"}, false),
			`{"type":4,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r2"]},"uid":"0ca360f20765ad50","nsp":"/"}`},
		{"leave", remote(remoteLeave, nil, false),
			`{"type":5,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":[]},"uid":"0ca360f20765ad50","nsp":"/"}`},
		{"disconnect", remote(remoteDisconnect, nil, false),
			`{"type":6,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"close":false},"uid":"0ca360f20765ad50","nsp":"/"}`},
		{"sse", enc(msgServerSideEmit, sseData{Packet: []any{"sse", map[string]any{"x": 1}}}, false),
			`{"type":9,"data":{"packet":["sse",{"x":1}]},"uid":"0ca360f20765ad50","nsp":"/"}`},
		{"sse with ack", enc(msgServerSideEmit, sseData{RequestID: "54eb89b8bc727971", Packet: []any{"sse-ack", 42}}, false),
			`{"type":9,"data":{"requestId":"54eb89b8bc727971","packet":["sse-ack",42]},"uid":"0ca360f20765ad50","nsp":"/"}`},
		// 84 a4"type" 09 a4"data" 81{a6"packet" 92[a3"sse" c4 01 07]} a3"uid" b0"0ca3…" a3"nsp" a1"/"
		{"binary sse", enc(msgServerSideEmit, sseData{Packet: []any{"sse", []byte{7}}}, true),
			"\x84\xa4type\x09\xa4data\x81\xa6packet\x92\xa3sse\xc4\x01\x07\xa3uid\xb00ca360f20765ad50\xa3nsp\xa1/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("\n got %q\nwant %q", tt.got, tt.want)
			}
		})
	}
	channels := []struct {
		name    string
		typ     int
		withAck bool
		rooms   []string
		want    string
	}{
		{"one room", msgBroadcast, false, []string{"r1"}, "socket.io#/#r1#"},
		{"a socket id", msgBroadcast, false, []string{"9zTFrHRIOntFd0tmAAAB"}, "socket.io#/#"},
		{"20 UTF-16 units", msgBroadcast, false, []string{"ééééééééééééééééééé𝄞"[2:]}, "socket.io#/#"},
		{"two rooms", msgBroadcast, false, []string{"r1", "r2"}, "socket.io#/#"},
		{"namespace", msgBroadcast, false, nil, "socket.io#/#"},
		{"with ack", msgBroadcast, true, []string{"r1"}, "socket.io#/#"},
		{"join", msgSocketsJoin, false, []string{"r1"}, "socket.io#/#"},
	}
	for _, tt := range channels {
		t.Run("channel/"+tt.name, func(t *testing.T) {
			if got := a.channelFor(tt.typ, tt.withAck, tt.rooms); got != tt.want {
				t.Fatalf("%v: %s, want %s", tt.rooms, got, tt.want)
			}
		})
	}
}

var shardedTrio = trio{adapter: "redis-sharded", url: localRedis}

// clusterChecks are redis_test.go's interop checks, which the sharded adapter passes too.
// oneChannel marks those that need the order of one client's events across rooms, which a Redis
// Cluster keeps only per channel (the rooms' channels sit on different masters).
var clusterChecks = []struct {
	name       string
	run        func(*testing.T, *cluster3)
	oneChannel bool
}{
	{"broadcast", runBroadcast, false},
	{"broadcast with ack", runBroadcastWithAck, false},
	{"fetchSockets", runFetchSockets, false},
	{"remote rooms", runRemoteRooms, false},
	{"serverSideEmit and count", runServerSideEmitAndCount, false},
	{"binary", runBinary, true},
	{"order", runOrder, false},
}

// The sharded adapter on one Redis 7 (sharded pub/sub works without a cluster), with a Node
// peer on createShardedAdapter: the same checks as the classic adapter's.
func TestSharded(t *testing.T) {
	for _, tc := range clusterChecks {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, startCluster3(t, shardedTrio)) })
	}
}

// A Redis stopped or killed under the sharded adapter: the classic adapter's outage checks.
func TestShardedOutage(t *testing.T) { runOutage(t, "redis-sharded") }

// The sharded adapter on a Redis Cluster of three masters that the test starts, with two Go
// nodes (go-redis's ClusterClient, a subscription connection per master) and a Node peer
// (node-redis createCluster with createShardedAdapter): room channels spread over the masters.
func TestShardedCluster(t *testing.T) {
	url := startRedisCluster(t)
	tr := trio{adapter: "redis-sharded", url: url, nodes: strings.Split(strings.TrimPrefix(url, "redis+cluster://"), ",")}
	t.Run("spread", func(t *testing.T) {
		c := startCluster3(t, tr)
		conn := c.a.b.(*redisBackend).conn
		masters := map[string]bool{}
		for _, room := range []string{"", "r1#", "r2#", "r3#"} {
			m, err := conn.Client().(*redis.ClusterClient).MasterForKey(t.Context(), c.prefix+"#/#"+room)
			if err != nil {
				t.Fatal(err)
			}
			masters[m.Options().Addr] = true
		}
		if len(masters) < 2 {
			t.Fatalf("the channels sit on %d master(s), want them spread", len(masters))
		}
	})
	for _, tc := range clusterChecks {
		if tc.oneChannel {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { tc.run(t, startCluster3(t, tr)) })
	}
}

// Closing the server and then the backend ends every goroutine both pub/sub backends started
// (subscription readers, the pinger, the node counter, answer queues), after requests of every
// kind went through.
func TestBackendCloseLeavesNothing(t *testing.T) {
	for _, name := range []string{"redis", "redis-sharded"} {
		t.Run(name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			prefix := uniquePrefix(t)
			var backends []Backend
			var servers []*socketio.Server
			var nsps []*socketio.Namespace
			for range 2 {
				b, err := New(Config{Name: name, RedisURL: localRedis, Prefix: prefix, Logger: zerolog.Nop()})
				if err != nil {
					t.Fatal(err)
				}
				srv, nsp := serve(t, b, 0, zerolog.Nop())
				nsp.OnServerSideEmit(func(args []any, ack func(...any)) {
					if ack != nil {
						ack("ok")
					}
				})
				backends, servers, nsps = append(backends, b), append(servers, srv), append(nsps, nsp)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := nsps[0].To("r").Emit("e"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := nsps[0].All().EmitWithAck(ctx, "e"); err != nil {
				t.Fatal(err)
			}
			if got, err := nsps[0].All().FetchSockets(ctx); err != nil || len(got) != 0 {
				t.Fatalf("fetch: %v, %v", got, err)
			}
			if res, err := nsps[0].Adapter().(acker).ServerSideEmitWithAck(ctx, []any{"x"}); err != nil || len(res) != 1 {
				t.Fatalf("serverSideEmit: %v, %v", res, err)
			}
			if err := nsps[1].All().SocketsJoin(ctx, "j"); err != nil {
				t.Fatal(err)
			}
			for i, srv := range servers {
				srv.Close(ctx)
				if err := backends[i].Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A join, leave or disconnect from another node without opts is dropped: read as no rooms it
// would reach every socket of the namespace, where Node's adapters throw on it. The messages
// after it in the channel are still applied.
func TestShardedRemoteWithoutOpts(t *testing.T) {
	prefix := uniquePrefix(t)
	n := startNode(t, Config{Name: "redis-sharded", RedisURL: localRedis, Prefix: prefix}, nil)
	c := dial(t, n.url, "c")
	s := n.socket(c.sid)
	ropts, err := redis.ParseURL(localRedis)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	ctx := context.Background()
	channel := prefix + "#/#"
	for _, msg := range []string{
		`{"type":6,"data":{"close":true},"uid":"elsewhere","nsp":"/"}`,
		`{"type":6,"uid":"elsewhere","nsp":"/"}`,
		`{"type":4,"data":{"rooms":["everyone"]},"uid":"elsewhere","nsp":"/"}`,
		`{"type":6,"data":{"opts":"all","close":true},"uid":"elsewhere","nsp":"/"}`,
		`{"type":4,"data":{"opts":{"rooms":[],"except":[]},"rooms":["marker"]},"uid":"elsewhere","nsp":"/"}`,
	} {
		if err := rdb.SPublish(ctx, channel, msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the valid join after the malformed messages", func() bool { return s.In("marker") })
	if !s.Connected() || s.In("everyone") {
		t.Fatalf("connected %v, rooms %v: a message without opts was applied", s.Connected(), s.Rooms())
	}
}
