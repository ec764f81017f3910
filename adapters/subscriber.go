package adapters

// subscriber.go: the subscriptions of a backend, shared by all its namespaces as Node shares its
// sub client: one connection for the classic adapter (SUBSCRIBE and PSUBSCRIBE, resubscribed by
// go-redis after a reconnect), one per Redis Cluster master for the sharded one (SSUBSCRIBE
// takes one slot per command, so this file places each channel on its master and resubscribes
// channel by channel after a reconnect or a slot move).

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// subWait bounds how long a new namespace waits for Redis to confirm its subscriptions, so that
// a broadcast right after it exists is not missed; while Redis is down it does not wait.
const subWait = 2 * time.Second

// handler receives one message of a subscribed channel or pattern.
type handler func(channel, payload string)

// confirmations lets subscribers wait for Redis's subscribe answers.
type confirmations struct {
	mu    sync.Mutex
	waits map[string][]chan struct{}
}

func (c *confirmations) expect(kind string, names []string) []chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waits == nil {
		c.waits = map[string][]chan struct{}{}
	}
	out := make([]chan struct{}, 0, len(names))
	for _, n := range names {
		ch := make(chan struct{})
		c.waits[kind+":"+n] = append(c.waits[kind+":"+n], ch)
		out = append(out, ch)
	}
	return out
}

func (c *confirmations) confirmed(kind, name string) {
	c.mu.Lock()
	waits := c.waits[kind+":"+name]
	delete(c.waits, kind+":"+name)
	c.mu.Unlock()
	for _, ch := range waits {
		close(ch)
	}
}

// wait waits for every confirmation, or until subWait passed or ctx ended.
func waitAll(ctx context.Context, chans []chan struct{}) bool {
	t := time.NewTimer(subWait)
	defer t.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// receiveLoop runs ps's reader until ps is closed or ctx ends; on a read error it reports the
// failure and, unless onError says it handled it, waits a little before reading again (go-redis
// reconnects the subscription on the next read).
func receiveLoop(ctx context.Context, conn *Conn, ps *redis.PubSub, onMsg func(any), onError func(error) bool) {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			conn.Failed(err)
			if onError != nil && onError(err) {
				return
			}
			t := time.NewTimer(redisSubRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		onMsg(msg)
	}
}

// classicSub is the classic adapter's subscription connection.
type classicSub struct {
	conn   *Conn
	ps     *redis.PubSub
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	conf   confirmations

	mu       sync.Mutex
	channels map[string]handler
	patterns map[string]handler
}

func newClassicSub(conn *Conn) *classicSub {
	ctx, cancel := context.WithCancel(context.Background())
	s := &classicSub{
		conn: conn, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		channels: map[string]handler{}, patterns: map[string]handler{},
	}
	s.ps = conn.Subscriber().Subscribe(ctx)
	go func() {
		defer close(s.done)
		receiveLoop(ctx, conn, s.ps, s.dispatch, nil)
	}()
	return s
}

func (s *classicSub) dispatch(msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		s.mu.Lock()
		var h handler
		if m.Pattern != "" {
			h = s.patterns[m.Pattern]
		} else {
			h = s.channels[m.Channel]
		}
		s.mu.Unlock()
		if h != nil {
			h(m.Channel, m.Payload)
		}
	case *redis.Subscription:
		s.conf.confirmed(m.Kind, m.Channel)
	}
}

// subscribe adds patterns and channels, patterns first: a node counted by PUBSUB NUMSUB on its
// request channel then already gets the broadcasts. It waits for Redis's confirmations while
// Redis is up.
func (s *classicSub) subscribe(ctx context.Context, patterns, channels map[string]handler) {
	s.mu.Lock()
	pats := make([]string, 0, len(patterns))
	for p, h := range patterns {
		s.patterns[p] = h
		pats = append(pats, p)
	}
	chans := make([]string, 0, len(channels))
	for c, h := range channels {
		s.channels[c] = h
		chans = append(chans, c)
	}
	s.mu.Unlock()
	waits := append(s.conf.expect("psubscribe", pats), s.conf.expect("subscribe", chans)...)
	var errP, errC error
	if len(pats) > 0 { // no arguments would mean every pattern
		errP = s.ps.PSubscribe(ctx, pats...)
	}
	if len(chans) > 0 {
		errC = s.ps.Subscribe(ctx, chans...)
	}
	if errP == nil && errC == nil && s.conn.Ready() {
		waitAll(ctx, waits)
	}
}

func (s *classicSub) unsubscribe(ctx context.Context, patterns, channels []string) {
	s.mu.Lock()
	for _, p := range patterns {
		delete(s.patterns, p)
	}
	for _, c := range channels {
		delete(s.channels, c)
	}
	s.mu.Unlock()
	// Always: go-redis forgets them even when Redis is away, and does not resubscribe them
	// later (a request channel left behind would count a server that does not answer).
	if len(patterns) > 0 {
		_ = s.ps.PUnsubscribe(ctx, patterns...)
	}
	if len(channels) > 0 {
		_ = s.ps.Unsubscribe(ctx, channels...)
	}
}

func (s *classicSub) close() {
	s.cancel()
	_ = s.ps.Close()
	<-s.done
}

// shardSub is the sharded adapter's subscriptions: the wanted shard channels, each placed on a
// connection to its master.
type shardSub struct {
	conn   *Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}
	conf   confirmations
	place  sync.Mutex // one reconcile at a time

	mu     sync.Mutex
	want   map[string]shardWant
	placed map[string]*shardConn
	conns  map[string]*shardConn // by master address
	wg     sync.WaitGroup
}

// shardConn is one subscription connection, to one master.
type shardConn struct {
	addr    string
	ps      *redis.PubSub
	broken  bool
	unsubs  map[string]int // SUNSUBSCRIBEs sent and not yet confirmed
	channel map[string]bool
}

func newShardSub(conn *Conn) *shardSub {
	ctx, cancel := context.WithCancel(context.Background())
	s := &shardSub{
		conn: conn, ctx: ctx, cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1),
		want: map[string]shardWant{}, placed: map[string]*shardConn{}, conns: map[string]*shardConn{},
	}
	go s.loop()
	return s
}

// loop reconciles what is wanted with what is placed when asked, and every second (a master may
// have changed, a connection may have broken).
func (s *shardSub) loop() {
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		s.reconcile(s.ctx)
	}
}

func (s *shardSub) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// shardWant is a wanted shard channel: its handler, and when it is subscribed relative to the
// others after a reconnect (lower first; Redis confirms each level before the next is sent).
// A namespace's main channel, by which SHARDNUMSUB counts the node, comes last: a node counted
// again after an outage then already gets its rooms' broadcasts.
type shardWant struct {
	h     handler
	order int
}

// subscribe wants channels. With wait it places them now and waits for Redis's confirmations
// while Redis is up; without, they are placed in the background.
func (s *shardSub) subscribe(ctx context.Context, channels map[string]shardWant, wait bool) {
	names := make([]string, 0, len(channels))
	s.mu.Lock()
	for c, h := range channels {
		s.want[c] = h
		names = append(names, c)
	}
	s.mu.Unlock()
	if !wait {
		s.poke() // a room's channel: the socket that joined does not wait for Redis
		return
	}
	waits := s.conf.expect("ssubscribe", names)
	s.reconcile(ctx)
	if s.conn.Ready() {
		waitAll(ctx, waits)
	}
}

// unsubscribe stops wanting channels; they are left in the background.
func (s *shardSub) unsubscribe(channels ...string) {
	s.mu.Lock()
	for _, c := range channels {
		delete(s.want, c)
	}
	s.mu.Unlock()
	s.poke()
}

// master is the address of the master of channel, and a client to it.
func (s *shardSub) master(ctx context.Context, channel string) (string, *redis.Client, error) {
	switch cl := s.conn.Subscriber().(type) {
	case *redis.ClusterClient:
		m, err := cl.MasterForKey(ctx, channel)
		if err != nil {
			return "", nil, err
		}
		return m.Options().Addr, m, nil
	case *redis.Client:
		return cl.Options().Addr, cl, nil
	}
	return "", nil, errors.New("adapters: unexpected subscriber client")
}

func (s *shardSub) reconcile(ctx context.Context) {
	s.place.Lock()
	defer s.place.Unlock()
	type move struct {
		channel string
		from    *shardConn
	}
	var drop []move
	var add []string // every wanted channel: those placed are checked (their master may have changed)
	order := map[string]int{}
	s.mu.Lock()
	for c, sc := range s.placed {
		if _, ok := s.want[c]; !ok || sc.broken {
			drop = append(drop, move{c, sc})
		}
	}
	for c, w := range s.want {
		add = append(add, c)
		order[c] = w.order
	}
	s.mu.Unlock()
	sort.SliceStable(add, func(i, j int) bool { return order[add[i]] < order[add[j]] })

	for _, d := range drop {
		s.mu.Lock()
		delete(s.placed, d.channel)
		delete(d.from.channel, d.channel)
		broken := d.from.broken
		if !broken {
			d.from.unsubs[d.channel]++
		}
		s.mu.Unlock()
		if !broken {
			_ = d.from.ps.SUnsubscribe(ctx, d.channel)
		}
	}
	s.closeBroken()
	var sent []chan struct{} // confirmations of the level being placed
	level := -1
	for _, c := range add {
		if order[c] != level {
			if len(sent) > 0 {
				waitAll(ctx, sent)
			}
			sent, level = nil, order[c]
		}
		addr, cl, err := s.master(ctx, c)
		if err != nil {
			continue // the cluster's layout is unknown now: the next round retries
		}
		s.mu.Lock()
		cur := s.placed[c]
		if cur != nil && cur.addr == addr && !cur.broken {
			s.mu.Unlock()
			continue
		}
		if cur != nil { // the slot moved to another master
			delete(s.placed, c)
			delete(cur.channel, c)
			cur.unsubs[c]++
		}
		sc := s.conns[addr]
		if sc == nil || sc.broken {
			sc = s.openLocked(addr, cl)
		}
		sc.channel[c] = true
		s.placed[c] = sc
		s.mu.Unlock()
		if cur != nil {
			_ = cur.ps.SUnsubscribe(ctx, c)
		}
		conf := s.conf.expect("ssubscribe", []string{c})
		if sc.ps.SSubscribe(ctx, c) == nil {
			sent = append(sent, conf...)
		}
	}
}

// openLocked opens a subscription connection to the master at addr.
func (s *shardSub) openLocked(addr string, cl *redis.Client) *shardConn {
	sc := &shardConn{addr: addr, ps: cl.Subscribe(s.ctx), unsubs: map[string]int{}, channel: map[string]bool{}}
	s.conns[addr] = sc
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		receiveLoop(s.ctx, s.conn, sc.ps, func(msg any) { s.dispatch(sc, msg) }, func(err error) bool {
			var reply redis.Error
			if errors.As(err, &reply) {
				return false // a refused SSUBSCRIBE (MOVED while the layout changes): re-placed below
			}
			// The connection broke. go-redis would resubscribe every channel in one SSUBSCRIBE,
			// which a cluster refuses for channels of several slots: start over instead, after a
			// pause (Redis may still be away).
			t := time.NewTimer(redisSubRetry)
			select {
			case <-s.ctx.Done():
			case <-t.C:
			}
			t.Stop()
			s.mu.Lock()
			sc.broken = true
			s.mu.Unlock()
			s.poke()
			return true
		})
	}()
	return sc
}

// closeBroken closes the connections that broke (their channels are placed again elsewhere).
func (s *shardSub) closeBroken() {
	s.mu.Lock()
	var broken []*shardConn
	for addr, sc := range s.conns {
		if sc.broken {
			broken = append(broken, sc)
			delete(s.conns, addr)
			for c := range sc.channel {
				if s.placed[c] == sc {
					delete(s.placed, c)
				}
			}
		}
	}
	s.mu.Unlock()
	for _, sc := range broken {
		_ = sc.ps.Close()
	}
}

func (s *shardSub) dispatch(sc *shardConn, msg any) {
	switch m := msg.(type) {
	case *redis.Message:
		s.mu.Lock()
		h := s.want[m.Channel].h
		s.mu.Unlock()
		if h != nil {
			h(m.Channel, m.Payload)
		}
	case *redis.Subscription:
		switch m.Kind {
		case "ssubscribe":
			s.conf.confirmed(m.Kind, m.Channel)
		case "sunsubscribe":
			s.mu.Lock()
			if sc.unsubs[m.Channel] > 0 {
				sc.unsubs[m.Channel]--
				if sc.unsubs[m.Channel] == 0 {
					delete(sc.unsubs, m.Channel)
				}
				s.mu.Unlock()
				return
			}
			// Redis dropped the channel by itself: its slot moved to another master.
			moved := s.placed[m.Channel] == sc
			if moved {
				delete(s.placed, m.Channel)
				delete(sc.channel, m.Channel)
			}
			s.mu.Unlock()
			if moved {
				s.poke()
			}
		}
	}
}

func (s *shardSub) close() {
	s.cancel()
	<-s.done
	s.place.Lock()
	s.mu.Lock()
	conns := s.conns
	s.conns = map[string]*shardConn{}
	s.mu.Unlock()
	s.place.Unlock()
	for _, sc := range conns {
		_ = sc.ps.Close()
	}
	s.wg.Wait()
}
