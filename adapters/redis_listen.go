package adapters

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// relayReady bounds the wait for Redis to confirm a subscription made when a namespace is made;
// past it the subscription still completes in the background.
const relayReady = redisIOTimeout

// listen waits, up to relayReady, for Redis to confirm ps (so that what is published once it
// returns is heard), then hands every message's payload to handle, one at a time on a goroutine
// of its own, until the connection closes. go-redis redials and resubscribes by itself after an
// outage, which the prober logs.
func (c *redisConn) listen(ps *redis.PubSub, what string, handle func(payload []byte)) {
	ctx, cancel := context.WithTimeout(c.ctx, relayReady)
	defer cancel()
	if _, err := ps.Receive(ctx); err != nil {
		c.log.Warn().Err(err).Msg("redis: subscription for " + what + " not confirmed yet")
	}
	go func() {
		defer func() { _ = ps.Close() }()
		for {
			msg, err := ps.ReceiveMessage(c.ctx)
			if err != nil {
				if errors.Is(err, redis.ErrClosed) || c.ctx.Err() != nil {
					return
				}
				continue
			}
			handle([]byte(msg.Payload))
		}
	}()
}
