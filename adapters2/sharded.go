package adapters

import (
	"errors"

	"github.com/switchboard/switchboard/socketio"
)

func (b *redisBackend) newSharded(*socketio.Namespace) (socketio.Adapter, error) {
	return nil, errors.New("adapters: the redis-sharded adapter is not built yet")
}
