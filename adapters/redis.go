package adapters

import (
	"github.com/zishang520/socket.io/adapters/redis/v3/adapter"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Redis shares rooms between nodes through Redis pub/sub, on the channels of Node's
// @socket.io/redis-adapter 8.x (prefix "socket.io" by default), so Switchboard and Node servers
// can share one cluster and @socket.io/redis-emitter reaches both. Pub/sub keeps nothing: a
// client that reconnects to another node starts a new session, as in Node.
type Redis struct {
	*redisConn
	ctor socket.AdapterConstructor
}

var (
	_ Backend  = (*Redis)(nil)
	_ Reporter = (*Redis)(nil)
)

// NewRedis connects to cfg.RedisURL; it fails when Redis does not answer.
func NewRedis(cfg Config) (*Redis, error) {
	conn, err := dialRedis(cfg)
	if err != nil {
		return nil, err
	}
	opts := adapter.DefaultRedisAdapterOptions()
	opts.SetKey(conn.prefix)
	opts.SetParser(jsonShapedMsgPack{})
	lib := &adapter.RedisAdapterBuilder{Redis: conn.lib, Opts: opts}
	return &Redis{redisConn: conn, ctor: &relayBuilder{lib: lib, conn: conn, direct: cfg.Direct}}, nil
}

// Constructor implements Backend.
func (r *Redis) Constructor() socket.AdapterConstructor { return r.ctor }
