package adapters

// adapter.go: what the three Redis adapters share, as Node's ClusterAdapter is shared by its
// subclasses: the socketio.Adapter calls that reach the cluster, the wait for the other nodes'
// answers, and what this node does with the other nodes' requests. Each adapter (redis.go,
// sharded.go, streams_adapter.go) supplies only its wire (clusterWire): how its Node counterpart
// writes each call and each answer, and how it reads what arrives.

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// Node's defaults.
const (
	requestsTimeout   = 5 * time.Second // other nodes' answers to fetchSockets and serverSideEmit
	defaultAckTimeout = 5 * time.Second // flags.timeout when the caller's context has no deadline
)

// clusterWire is one adapter's wire format. The send methods return once Redis took the
// message (or fail with socketio.ErrUnavailable); the answer methods queue an answer to the
// request rid (as it arrived) of the node requester, through clusterAdapter.queueAnswer.
type clusterWire interface {
	// sendBroadcast sends a broadcast without ack and returns the packet this node then
	// delivers (redis-streams appends its offset).
	sendBroadcast(p *socketio.Packet, opts socketio.BroadcastOptions) (*socketio.Packet, error)
	// sendBroadcastWithAck sends a broadcast whose client counts and acks answer rid; opts
	// carries flags.timeout.
	sendBroadcastWithAck(ctx context.Context, rid string, p *socketio.Packet, opts wireOpts) error
	// sendRemote sends socketsJoin, socketsLeave (rooms) or disconnectSockets (close).
	sendRemote(ctx context.Context, op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) error
	sendFetch(ctx context.Context, rid string, opts socketio.BroadcastOptions) error
	// sendServerSideEmit sends args to the other nodes; rid is empty without ack.
	sendServerSideEmit(ctx context.Context, rid string, args []any) error

	answerCount(requester string, rid any, clients int)
	// answerAck carries a client's ack: v its first argument, ok false when it had none.
	answerAck(requester string, rid any, v any, ok bool)
	answerSockets(requester string, rid any, sockets []wireSocket)
	// answerSSE answers a serverSideEmit with the handler's first argument (ok false: none).
	answerSSE(requester string, rid any, v any, ok bool)
}

// remoteOp is a call on other nodes' sockets, in the order both protocols number them (the
// classic request types 2, 3, 4; ClusterAdapter's message types 4, 5, 6).
type remoteOp int

const (
	remoteJoin remoteOp = iota
	remoteLeave
	remoteDisconnect
)

// answerForm is where a wire puts what the answers to our requests carry.
type answerForm struct {
	count, ack int    // the message types of a node's client count and of a client's ack
	sseValue   string // the body's key of a serverSideEmit answer's value
}

// clusterAdapter is one namespace's adapter of a Redis backend, but for its wire: socketio's
// LocalAdapter (this node's sockets and rooms) and the calls that reach the other nodes.
type clusterAdapter struct {
	*socketio.LocalAdapter
	nsp  *socketio.Namespace
	log  zerolog.Logger
	wire clusterWire
	conn *Conn
	ctx  context.Context // the backend's, which ends at its Close: answers to other nodes
	clusterSpec

	pending pendingSet // our fetchSockets, serverSideEmits and broadcasts with ack, by request id
	out     serial     // answers to other nodes, in order
	sse     serial     // other nodes' serverSideEmits, handed to the namespace in order
}

// clusterSpec is what tells the adapters apart beyond the encoding.
type clusterSpec struct {
	form    answerForm
	idBytes int // a request id is randomID(idBytes), as long as the Node counterpart's
	// counted is the channel whose subscribers are the namespace's nodes, as Node counts them
	// (SHARDNUMSUB with sharded, NUMSUB otherwise); sharded also answers with SPUBLISH.
	counted       string
	sharded       bool
	answerTimeout time.Duration // one answer to another node
}

func newClusterAdapter(nsp *socketio.Namespace, log zerolog.Logger, conn *Conn, ctx context.Context, wire clusterWire, spec clusterSpec) *clusterAdapter {
	return &clusterAdapter{
		LocalAdapter: socketio.NewLocalAdapter(nsp, socketio.LocalOptions{Recovery: false}),
		nsp:          nsp,
		log:          log.With().Str("nsp", nsp.Name()).Logger(),
		wire:         wire,
		conn:         conn,
		ctx:          ctx,
		clusterSpec:  spec,
	}
}

// queueAnswer publishes an answer to another node after those queued before it, without
// holding up the subscription's reader.
func (c *clusterAdapter) queueAnswer(channel string, msg []byte) {
	c.out.do(func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.answerTimeout)
		defer cancel()
		var err error
		if c.sharded {
			err = c.conn.Client().SPublish(ctx, channel, msg).Err()
		} else {
			err = c.conn.Client().Publish(ctx, channel, msg).Err()
		}
		if err != nil {
			c.log.Debug().Err(err).Msg("answer another node")
		}
	})
}

// object decodes a message with decode; nil when it is not an object. A malformed one is logged
// (debug) as what, unless what is empty.
func (c *clusterAdapter) object(payload string, decode func([]byte) (any, error), what string) map[string]any {
	v, err := decode([]byte(payload))
	if err != nil {
		if what != "" {
			c.log.Debug().Err(err).Msg("ignore a malformed " + what)
		}
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}

// drain waits until the queued answers left and the serverSideEmits handed on returned.
func (c *clusterAdapter) drain() {
	c.out.wait()
	c.sse.wait()
}

// Calls of this node.

// Broadcast implements socketio.Adapter: it returns once Redis took the message (then delivers
// locally), or fails with socketio.ErrUnavailable and delivers nothing.
func (c *clusterAdapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	if opts.Local {
		c.BroadcastLocal(p, opts)
		return nil
	}
	local, err := c.wire.sendBroadcast(p, opts)
	if err != nil {
		return err
	}
	c.BroadcastLocal(local, opts)
	return nil
}

// BroadcastWithAck implements socketio.Adapter: every node (Node servers and Go ones) reports
// its client count and forwards each client's ack (its first argument); it ends when every node
// counted by ServerCount reported and every counted client acked, or when ctx ends (timedOut;
// flags.timeout carries what is left of it).
func (c *clusterAdapter) BroadcastWithAck(ctx context.Context, p *socketio.Packet, opts socketio.BroadcastOptions) ([]*socketio.Args, bool, error) {
	if opts.Local {
		return c.LocalAdapter.BroadcastWithAck(ctx, p, opts)
	}
	rid := randomID(c.idBytes)
	g := newAckGather()
	remove := c.pending.add(rid, func(typ float64, body map[string]any) {
		switch typ {
		case float64(c.form.count):
			n, _ := body["clientCount"].(float64)
			g.count(int(n))
		case float64(c.form.ack):
			if v, ok := body["packet"]; ok {
				g.ack(socketio.ValuesArgs([]any{v}))
			} else {
				g.ack(socketio.ValuesArgs([]any{}))
			}
		}
	})
	defer remove()
	deadline, hasDeadline := ctx.Deadline()
	wo := encodeOpts(opts)
	wo.Flags.Timeout = timeoutMS(deadline, hasDeadline, defaultAckTimeout)
	if err := c.wire.sendBroadcastWithAck(ctx, rid, p, wo); err != nil {
		return nil, false, err
	}
	g.count(c.BroadcastWithAckLocal(p, opts, g.ack))
	go func() {
		if n, err := c.ServerCount(ctx); err == nil {
			g.expect(n)
		}
	}()
	acks, timedOut := g.wait(ctx)
	return acks, timedOut, nil
}

// ServerCount implements socketio.Adapter: the subscribers of the counted channel (every node
// subscribes it once per namespace), summed over the masters.
func (c *clusterAdapter) ServerCount(ctx context.Context) (int, error) {
	n, err := c.conn.NumSub(ctx, c.sharded, c.counted)
	if err != nil {
		return 0, Unavailable(err)
	}
	return int(n[c.counted]), nil
}

// FetchSockets implements socketio.Adapter. Every other node counted must answer within 5 s (as
// in Node); otherwise what arrived is returned with an error wrapping context.DeadlineExceeded.
func (c *clusterAdapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.RemoteSocket, error) {
	local := c.FetchLocal(opts)
	if opts.Local {
		return local, nil
	}
	n, err := c.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return local, nil
	}
	rid := randomID(c.idBytes)
	g := newGather(n-1, local)
	remove := c.pending.add(rid, func(_ float64, body map[string]any) { g.add(decodeSockets(body["sockets"])...) })
	defer remove()
	if err := c.wire.sendFetch(ctx, rid, opts); err != nil {
		return nil, err
	}
	return g.await(ctx, "fetch sockets")
}

// AddSockets implements socketio.Adapter: once Redis took the request, the local sockets join
// (the other nodes skip their own echo by uid).
func (c *clusterAdapter) AddSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	return c.remote(ctx, remoteJoin, opts, rooms, false)
}

// DelSockets implements socketio.Adapter (as AddSockets).
func (c *clusterAdapter) DelSockets(ctx context.Context, opts socketio.BroadcastOptions, rooms []string) error {
	return c.remote(ctx, remoteLeave, opts, rooms, false)
}

// DisconnectSockets implements socketio.Adapter (as AddSockets).
func (c *clusterAdapter) DisconnectSockets(ctx context.Context, opts socketio.BroadcastOptions, close bool) error {
	return c.remote(ctx, remoteDisconnect, opts, nil, close)
}

func (c *clusterAdapter) remote(ctx context.Context, op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) error {
	if !opts.Local {
		if err := c.wire.sendRemote(ctx, op, opts, rooms, close); err != nil {
			return err
		}
	}
	c.applyLocal(op, opts, rooms, close)
	return nil
}

func (c *clusterAdapter) applyLocal(op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) {
	switch op {
	case remoteJoin:
		c.AddLocal(opts, rooms)
	case remoteLeave:
		c.DelLocal(opts, rooms)
	default:
		c.DisconnectLocal(opts, close)
	}
}

// ServerSideEmit implements socketio.Adapter. Reserved names (connect, connection,
// new_namespace) are refused, as Node refuses them.
func (c *clusterAdapter) ServerSideEmit(ctx context.Context, args []any) error {
	if err := checkSSE(args); err != nil {
		return err
	}
	return c.wire.sendServerSideEmit(ctx, "", args)
}

// ServerSideEmitWithAck sends args to every other node's namespace and returns the first
// argument of each node's answer; every other node counted must answer within 5 s (a node whose
// handler does not call its ack never does, as in Node), otherwise what arrived is returned with
// an error wrapping context.DeadlineExceeded.
func (c *clusterAdapter) ServerSideEmitWithAck(ctx context.Context, args []any) ([]any, error) {
	if err := checkSSE(args); err != nil {
		return nil, err
	}
	n, err := c.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return []any{}, nil
	}
	rid := randomID(c.idBytes)
	g := newGather[any](n-1, nil)
	remove := c.pending.add(rid, func(_ float64, body map[string]any) { g.add(body[c.form.sseValue]) })
	defer remove()
	if err := c.wire.sendServerSideEmit(ctx, rid, args); err != nil {
		return nil, err
	}
	return g.await(ctx, "serverSideEmit")
}

// Requests of other nodes.

// onRemote applies another node's join, leave or disconnect: body holds its opts, and its rooms
// or close.
//
// Without an opts object the message is dropped: read as no rooms it would mean every socket of
// the namespace (a disconnect of everyone), where Node's adapters throw on it and do nothing.
func (c *clusterAdapter) onRemote(op remoteOp, body map[string]any) {
	if _, ok := body["opts"].(map[string]any); !ok {
		c.log.Debug().Int("op", int(op)).Msg("ignore a join, leave or disconnect without opts")
		return
	}
	close, _ := body["close"].(bool)
	c.applyLocal(op, decodeOpts(body["opts"]), roomList(body["rooms"]), close)
}

// onFetch answers another node's fetchSockets with the local sockets opts (as it arrived)
// selects.
func (c *clusterAdapter) onFetch(requester string, rid any, opts any) {
	local := c.FetchLocal(decodeOpts(opts))
	sockets := make([]wireSocket, 0, len(local))
	for _, rs := range local {
		sockets = append(sockets, encodeSocket(rs))
	}
	c.wire.answerSockets(requester, rid, sockets)
}

// onBroadcastWithAck runs another node's broadcast with acks here: the client count goes back
// first, then each client's ack.
func (c *clusterAdapter) onBroadcastWithAck(requester string, rid any, p *socketio.Packet, opts socketio.BroadcastOptions) {
	relay := &ackRelay{send: func(ack *socketio.Args) {
		v, ok := firstArg(ack)
		c.wire.answerAck(requester, rid, v, ok)
	}}
	n := c.BroadcastWithAckLocal(p, opts, relay.onAck)
	c.wire.answerCount(requester, rid, n)
	relay.counted()
}

// onServerSideEmit hands another node's serverSideEmit to the namespace, in order; withAck, the
// handler's ack answers it once, with its first argument. A reserved name is dropped (Node
// refuses to send one but does not check what it receives).
func (c *clusterAdapter) onServerSideEmit(requester string, rid any, args []any, withAck bool) {
	if name, ok := sseName(args); !ok || reservedSSE[name] {
		return
	}
	var ack func(...any)
	if withAck {
		var once sync.Once
		ack = func(vals ...any) {
			once.Do(func() {
				if len(vals) > 0 {
					c.wire.answerSSE(requester, rid, vals[0], true)
				} else {
					c.wire.answerSSE(requester, rid, nil, false)
				}
			})
		}
	}
	c.sse.do(func() { c.nsp.ServerSideEvent(args, ack) })
}

// onClusterRequest applies a ClusterAdapter request (the sharded and streams wires) but a
// broadcast, as socket.io-adapter's ClusterAdapter.onMessage does: joins, leaves, disconnects,
// fetchSockets and serverSideEmit; rid is its request id, withID whether it has one.
func (c *clusterAdapter) onClusterRequest(requester string, typ int, d map[string]any, rid any, withID bool) {
	switch typ {
	case msgSocketsJoin, msgSocketsLeave, msgDisconnectSockets:
		c.onRemote(remoteOp(typ-msgSocketsJoin), d)
	case msgFetchSockets:
		c.onFetch(requester, rid, d["opts"])
	case msgServerSideEmit:
		if args, ok := d["packet"].([]any); ok {
			c.onServerSideEmit(requester, rid, args, withID)
		}
	}
}
