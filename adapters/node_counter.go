package adapters

// node_counter.go: how many nodes listen on each namespace, so that after a Redis outage a
// backend's connection is ready again only once as many listen as before.

import (
	"context"
	"sync"
	"time"
)

// nodeCounter counts, every second while Redis is up, the subscribers of the channels by which
// NUMSUB (or SHARDNUMSUB) counts a backend's nodes, one per namespace. Its recovery check
// (Conn.HoldRecovery) passes once every channel has as many as before the outage, so that a
// request right after an outage (fetchSockets, a broadcast with acks) reaches every node; a node
// that died meanwhile holds the recovery back until the connection's bound (3 s).
type nodeCounter struct {
	conn    *Conn
	sharded bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	hold    func()

	mu      sync.Mutex
	counted map[string]int64 // channel → the count last seen while Redis was up
}

func newNodeCounter(conn *Conn, sharded bool) *nodeCounter {
	ctx, cancel := context.WithCancel(context.Background())
	c := &nodeCounter{conn: conn, sharded: sharded, ctx: ctx, cancel: cancel, done: make(chan struct{}), counted: map[string]int64{}}
	c.hold = conn.HoldRecovery(c.everyNodeBack)
	go c.run()
	return c
}

// watch starts (add) or stops counting the nodes on channel.
func (c *nodeCounter) watch(channel string, add bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !add {
		delete(c.counted, channel)
	} else if _, ok := c.counted[channel]; !ok {
		c.counted[channel] = 0
	}
}

func (c *nodeCounter) run() {
	defer close(c.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if !c.conn.Ready() {
			continue
		}
		counts, err := c.numSub(c.ctx)
		if err != nil {
			continue
		}
		c.mu.Lock()
		for ch, n := range counts {
			if _, ok := c.counted[ch]; ok {
				c.counted[ch] = n
			}
		}
		c.mu.Unlock()
	}
}

func (c *nodeCounter) numSub(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	channels := make([]string, 0, len(c.counted))
	for ch := range c.counted {
		channels = append(channels, ch)
	}
	c.mu.Unlock()
	return c.conn.NumSub(ctx, c.sharded, channels...)
}

// everyNodeBack is the recovery check.
func (c *nodeCounter) everyNodeBack(ctx context.Context) bool {
	counts, err := c.numSub(ctx)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch, before := range c.counted {
		if counts[ch] < before {
			return false
		}
	}
	return true
}

// close stops counting and removes the recovery check.
func (c *nodeCounter) close() {
	c.cancel()
	<-c.done
	c.hold()
}
