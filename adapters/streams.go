package adapters

// streams.go: the redis-streams backend, @socket.io/redis-streams-adapter 0.3.1 on the wire (see
// doc.go, "redis-streams"): broadcasts, joins, leaves and disconnects go into one Redis stream
// (XADD ... MAXLEN ~ 10000, read back by every node with XREAD BLOCK; the entry id is the
// connection state recovery offset), requests and their answers go through pub/sub as msgpack
// maps (fetchSockets, serverSideEmit, broadcasts with acks), nodes are counted by PUBSUB NUMSUB
// of the namespace's public channel, and recovery sessions live in Redis, so that a client
// recovers on any node.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/socketio"
)

// Stream settings: Node's defaults (maxLen, readCount, blockTimeInMs).
const (
	// StreamMaxLen bounds the stream (approximately, as XADD MAXLEN ~): a client recovers only
	// while the last event it got is among the newest StreamMaxLen entries of the cluster.
	StreamMaxLen  = 10_000
	streamCount   = 100
	streamBlock   = 5 * time.Second
	restoreBatch  = 1000 // entries per XRANGE while restoring a session
	restoreRounds = 100  // XRANGE calls at most per restore (Node's RESTORE_SESSION_MAX_XRANGE_CALLS)

	streamsCallTimeout   = time.Second // one of our calls to Redis (a fenced XADD or PUBLISH)
	streamsAnswerTimeout = time.Second // an answer to another node's request
)

// streamsBackend is the redis-streams backend: one connection, one reader of the stream and one
// subscriber shared by every namespace (as Node shares its clients), and this node's uid.
type streamsBackend struct {
	redisHold     // its prefix is the stream's name and the channels' prefix
	stream        string
	sessionPrefix string
	uid           string
	window        time.Duration
	sub           *classicSub
	pushed        string        // the Go nodes' channel of pushed entries
	pushSub       *redis.PubSub // this node's subscription to it
	pushDone      chan struct{}

	// deliverMu orders the deliveries of the stream's entries, whether they come through the
	// push or the stream; delivered is the id of the last one.
	deliverMu sync.Mutex
	delivered string

	ctx    context.Context
	cancel context.CancelFunc
	read   chan struct{} // closed when the stream's reader returned
	nodes  *nodeCounter  // the nodes listening on each namespace, for the recovery hold

	readerMu sync.Mutex
	readerID int64 // CLIENT ID of the reader's connection, to unblock it at Close
	readerOn *redis.Client

	mu       sync.Mutex
	adapters map[string]*streamsAdapter // by namespace
}

var _ Backend = (*streamsBackend)(nil)

// newStreamsBackend connects to cfg.RedisURL, finds the end of the stream (what is added from
// now on is read) and starts reading it.
func newStreamsBackend(cfg Config) (Backend, error) {
	conn, err := DialRedis(ConnConfig{URL: cfg.RedisURL, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	prefix := prefixOf(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	b := &streamsBackend{
		redisHold:     redisHold{log: cfg.Logger.With().Str("component", "adapter").Str("adapter", "redis-streams").Logger(), conn: conn, prefix: prefix},
		stream:        prefix,
		sessionPrefix: sessionPrefixOf(cfg),
		uid:           randomID(8),
		window:        cfg.RecoveryWindow,
		ctx:           ctx,
		cancel:        cancel,
		read:          make(chan struct{}),
		pushDone:      make(chan struct{}),
		adapters:      map[string]*streamsAdapter{},
	}
	sctx, scancel := context.WithTimeout(ctx, redisStartTimeout)
	last, err := b.streamEnd(sctx)
	scancel()
	if err != nil {
		cancel()
		_ = conn.Close()
		return nil, fmt.Errorf("adapters: redis-streams: read the end of stream %q: %w", b.stream, err)
	}
	b.delivered = last
	// The push channel shares the stream's hash tag: on a Redis Cluster it lives on the
	// stream's master, where the script publishes it.
	b.pushed = "{" + b.stream + "}-entries"
	b.pushSub = conn.Subscriber().Subscribe(ctx, b.pushed)
	confirmed := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(b.pushDone)
		receiveLoop(ctx, conn, b.pushSub, func(msg any) {
			switch m := msg.(type) {
			case *redis.Message:
				b.onPushed(m.Channel, m.Payload)
			case *redis.Subscription:
				once.Do(func() { close(confirmed) })
			}
		}, nil)
	}()
	waitAll(ctx, []chan struct{}{confirmed})
	b.sub = newClassicSub(conn)
	b.nodes = newNodeCounter(conn, false)
	go b.readStream()
	return b, nil
}

// sessionPrefixOf is where sessions are kept: Node's default key with Node's default prefix,
// "<prefix>:session:" with another (give Node peers the same sessionKeyPrefix).
func sessionPrefixOf(cfg Config) string {
	if p := prefixOf(cfg); p != "socket.io" {
		return p + ":session:"
	}
	return "sio:session:"
}

// streamEnd is the id of the stream's newest entry ("0-0" when there is none): reading starts
// after it, so that nothing added after the backend started is missed (Node reads from "$", and
// misses what is added before its first XREAD answers).
func (b *streamsBackend) streamEnd(ctx context.Context) (string, error) {
	msgs, err := b.conn.Client().XRevRangeN(ctx, b.stream, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// Adapter implements Backend.
func (b *streamsBackend) Adapter() socketio.AdapterFactory { return b.newAdapter }

// Close implements Backend: the stream's reader stops, then the subscriber, presence and the
// connection.
func (b *streamsBackend) Close() error {
	b.cancel()
	b.stopReader()
	b.nodes.close()
	b.sub.close()
	_ = b.pushSub.Close()
	<-b.pushDone
	return b.release()
}

// The stream.

// xaddScript adds an entry as Node's XADD does (MAXLEN ~, the fields uid, nsp, type, data in
// that order), fenced: a call Redis runs late adds nothing. It also pushes the entry, with the id
// of the entry before it, to the Go nodes' channel (pushed): a Go node delivers it from there at
// once, and from the stream only what the push did not bring. The push reaches every Go node in
// the same pass of Redis's event loop as the caller's answer, so an entry answered as added
// reaches them even if Redis dies right after (and its stream with it); a blocked XREAD may not
// have been waiting then. KEYS stream; ARGV maxlen, uid, nsp, type, data, channel.
var xaddScript = NewFencedScript(`local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = '0-0'
if #last > 0 then prev = last[1][1] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
  'uid', ARGV[2], 'nsp', ARGV[3], 'type', ARGV[4], 'data', ARGV[5])
redis.call('PUBLISH', ARGV[6], cmsgpack.pack({prev, id, ARGV[2], ARGV[3], ARGV[4], ARGV[5]}))
return id`)

// xadd appends one message to the stream and returns its entry id.
func (b *streamsBackend) xadd(ctx context.Context, nsp string, typ int, data string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, streamsCallTimeout)
	defer cancel()
	res, err := b.conn.RunFenced(ctx, xaddScript, []string{b.stream}, StreamMaxLen, b.uid, nsp, strconv.Itoa(typ), data, b.pushed)
	if err != nil {
		return "", Unavailable(err)
	}
	id, _ := res.(string)
	return id, nil
}

// encodeStreamData is an entry's data as Node writes it: JSON text, or standard base64 of
// msgpack when it holds binary (JSON would turn the bytes into Buffer objects).
func encodeStreamData(v any, binary bool) (string, error) {
	if binary {
		b, err := socketio.EncodeMsgpack(v)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	b, err := socketio.MarshalJSON(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// decodeStreamData reads an entry's data: JSON when it starts with '{', base64 msgpack
// otherwise (Node's test).
func decodeStreamData(s string) (map[string]any, error) {
	var v any
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, err
		}
	} else {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, err
		}
		if v, err = socketio.DecodeMsgpack(raw); err != nil {
			return nil, err
		}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("adapters: stream entry data is not an object")
	}
	return m, nil
}

// readStream reads the stream until Close, from after what was delivered (through the push or
// the stream), and delivers what the push did not bring. It reads on a connection of its own,
// unblocked at Close.
func (b *streamsBackend) readStream() {
	defer close(b.read)
	var rc *redis.Conn
	defer func() {
		if rc != nil {
			_ = rc.Close()
		}
	}()
	for b.ctx.Err() == nil {
		if rc == nil {
			c, err := b.readerConn(b.ctx)
			if err != nil {
				b.conn.Failed(err)
				b.pause()
				continue
			}
			rc = c
		}
		b.deliverMu.Lock()
		from := b.delivered
		b.deliverMu.Unlock()
		res, err := rc.XRead(b.ctx, &redis.XReadArgs{Streams: []string{b.stream, from}, Count: streamCount, Block: streamBlock}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing new within the block time, or unblocked at Close
		}
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			b.conn.Failed(err)
			_ = rc.Close()
			rc = nil
			b.pause()
			continue
		}
		for _, s := range res {
			for _, m := range s.Messages {
				uid, _ := m.Values["uid"].(string)
				nsp, _ := m.Values["nsp"].(string)
				typ := fmt.Sprint(m.Values["type"])
				data, _ := m.Values["data"].(string)
				b.deliverAfter("", m.ID, uid, nsp, typ, data)
			}
		}
	}
}

// onPushed takes an entry a Go node pushed as it added it: [id before it, id, uid, nsp, type,
// data].
func (b *streamsBackend) onPushed(_, payload string) {
	v, err := socketio.DecodeMsgpack([]byte(payload))
	arr, _ := v.([]any)
	if err != nil || len(arr) != 6 {
		return
	}
	var f [6]string
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return
		}
		f[i] = s
	}
	if f[0] == "" {
		return
	}
	b.deliverAfter(f[0], f[1], f[2], f[3], f[4], f[5])
}

// deliverAfter delivers the entry id, in stream order and once: from the stream (prev empty)
// when it comes after what was delivered, from the push when it comes right after it (prev:
// the entry before it). A push that does not follow on (a Node entry between, a push lost in an
// outage) is left to the stream.
func (b *streamsBackend) deliverAfter(prev, id, uid, nsp, typ, data string) {
	b.deliverMu.Lock()
	defer b.deliverMu.Unlock()
	if prev != "" && prev != b.delivered || compareIDs(id, b.delivered) <= 0 {
		return
	}
	b.delivered = id
	if nsp == "" || uid == b.uid {
		return // our own (delivered when it was added), or not a namespace's: Node skips those
	}
	b.onEntry(id, uid, nsp, typ, data)
}

// compareIDs orders two stream ids (ms-seq).
func compareIDs(x, y string) int {
	xm, xs := splitID(x)
	ym, ys := splitID(y)
	if xm != ym {
		if xm < ym {
			return -1
		}
		return 1
	}
	switch {
	case xs < ys:
		return -1
	case xs > ys:
		return 1
	}
	return 0
}

func splitID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}

// readerConn opens the reader's connection (to the stream's master on a cluster) and notes its
// client id.
func (b *streamsBackend) readerConn(ctx context.Context) (*redis.Conn, error) {
	var node *redis.Client
	switch cl := b.conn.Subscriber().(type) {
	case *redis.Client:
		node = cl
	case *redis.ClusterClient:
		m, err := cl.MasterForKey(ctx, b.stream)
		if err != nil {
			return nil, err
		}
		node = m
	default:
		return nil, fmt.Errorf("adapters: unexpected redis client %T", cl)
	}
	rc := node.Conn()
	cctx, cancel := context.WithTimeout(ctx, redisIOTimeout)
	id, err := rc.ClientID(cctx).Result()
	cancel()
	if err != nil {
		_ = rc.Close()
		return nil, err
	}
	b.readerMu.Lock()
	b.readerID, b.readerOn = id, node
	b.readerMu.Unlock()
	return rc, nil
}

// pause waits a little before the reader tries again (Redis is away).
func (b *streamsBackend) pause() {
	t := time.NewTimer(redisSubRetry)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
	case <-t.C:
	}
}

// stopReader unblocks the reader's XREAD (CLIENT UNBLOCK) until it returned: a blocked read
// does not watch its context.
func (b *streamsBackend) stopReader() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		b.readerMu.Lock()
		id, node := b.readerID, b.readerOn
		b.readerMu.Unlock()
		if node != nil {
			ctx, cancel := context.WithTimeout(context.Background(), redisIOTimeout)
			_ = node.ClientUnblock(ctx, id).Err()
			cancel()
		}
		select {
		case <-b.read:
			return
		case <-t.C:
		}
	}
}

// onEntry hands one entry to its namespace's adapter; the caller holds deliverMu.
func (b *streamsBackend) onEntry(id, uid, nsp, typStr, raw string) {
	b.mu.Lock()
	a := b.adapters[nsp]
	b.mu.Unlock()
	if a == nil {
		return
	}
	typ, err := strconv.Atoi(typStr)
	if err != nil {
		return
	}
	var data map[string]any
	if raw != "" {
		if data, err = decodeStreamData(raw); err != nil {
			a.log.Debug().Err(err).Msg("ignore a malformed stream entry")
			return
		}
	}
	a.onMessage(uid, typ, data, id)
}
