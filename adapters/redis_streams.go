package adapters

import (
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// RedisStreams shares rooms between nodes through a Redis stream (broadcasts, joins, leaves,
// disconnects) and pub/sub (fetchSockets, serverSideEmit, broadcast acks), in the format of
// Node's @socket.io/redis-streams-adapter. Because broadcasts stay in the stream (up to
// streamMaxLen entries) and sessions are stored in Redis, a client that drops from one node and
// reconnects to another within the recovery window gets its id, rooms and missed packets back.
type RedisStreams struct {
	*redisConn
	ctor socket.AdapterConstructor
}

var (
	_ Backend  = (*RedisStreams)(nil)
	_ Reporter = (*RedisStreams)(nil)
)

// streamMaxLen bounds the stream (approximately, as XADD MAXLEN ~): a client can recover the
// packets it missed only while they are among the newest streamMaxLen broadcasts of the cluster.
const streamMaxLen = 10_000

// NewRedisStreams connects to cfg.RedisURL; it fails when Redis does not answer.
func NewRedisStreams(cfg Config) (*RedisStreams, error) {
	conn, err := dialRedis(cfg)
	if err != nil {
		return nil, err
	}
	opts := adapter.DefaultRedisStreamsAdapterOptions()
	opts.SetStreamName(conn.prefix)
	opts.SetChannelPrefix(conn.prefix)
	if cfg.Prefix != "" {
		opts.SetSessionKeyPrefix(cfg.Prefix + ":session:")
	}
	opts.SetMaxLen(streamMaxLen)
	lib := &adapter.RedisStreamsAdapterBuilder{Redis: conn.lib, Opts: opts}
	return &RedisStreams{redisConn: conn, ctor: &countingBuilder{lib: lib, conn: conn, log: conn.log}}, nil
}

// Constructor implements Backend.
func (r *RedisStreams) Constructor() socket.AdapterConstructor { return r.ctor }
