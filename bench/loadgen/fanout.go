package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// receiver is one room member of the fanout scenario; only its read loop touches it.
type receiver struct {
	node int // index of the node it is connected to: 0 is Addr, 1… are Peers
	seq  SeqTracker
	lat  []time.Duration
}

// deliveries is what the members of one fanout or relay run received, counted by their read
// loops.
type deliveries struct {
	base      time.Time    // stamps are nanoseconds since base
	delivered atomic.Int64 // stamped messages received by members
	frames    atomic.Int64 // every frame received by members (to see the setup traffic settle)
	lastAt    atomic.Int64 // nanoseconds since base of the last delivery
}

// handler makes a member's frame handler: every frame counts in frames, and the data of each
// event goes to stamped with its arrival time since base; when stamped says it was a delivery
// (a message of the run, not presence), it counts in delivered and lastAt. Events are consumed;
// acks are left to the client.
func (d *deliveries) handler(stamped func(data []byte, now time.Duration) bool) func(Frame, time.Time) bool {
	return func(f Frame, at time.Time) bool {
		d.frames.Add(1)
		if f.SIO != sioEvent {
			return false
		}
		now := at.Sub(d.base)
		if stamped(f.Data, now) {
			d.delivered.Add(1)
			d.lastAt.Store(int64(now))
		}
		return true
	}
}

// runFanout puts N members in one room, publishes Rate messages per second for Duration to it
// (through the HTTP API, or through a member-like publisher's chat:send), and measures what the
// members receive: deliveries per second, server CPU per delivery, end-to-end latency, lost,
// reordered and duplicated messages.
func runFanout(ctx context.Context, o Options) (Result, error) {
	var res Result
	d := o.dialer(o.Addr)
	nsp, join := "/", d.Event("/", "subscribe", roomsPayload(o.Room))
	var publish func(seq int, sent int64) error
	run := &deliveries{base: time.Now()}

	switch o.Via {
	case "api":
		api := newAPIPublisher(o, run.base)
		if err := api.probe(ctx); err != nil {
			return res, err
		}
		publish = api.publish
	case "chat":
		nsp, join = "/chat", d.Event("/chat", "chat:join", fmt.Appendf(nil, `{"room":%q}`, o.Room))
	default:
		return res, fmt.Errorf("loadgen: fanout via %q: want api or chat", o.Via)
	}

	members := make([]*receiver, o.N)
	clients, failures, err := dialSpread(ctx, o, nsp, func(i, node int) func(Frame, time.Time) bool {
		r := &receiver{node: node}
		members[i] = r
		return run.handler(func(data []byte, now time.Duration) bool {
			seq, sent, ok := FindStamp(data)
			if !ok {
				return false
			}
			r.seq.Observe(seq)
			r.lat = append(r.lat, now-time.Duration(sent))
			return true
		})
	})
	if err != nil {
		return res, err
	}
	defer closeAll(o, clients)
	if failures > 0 {
		res.note("%d of %d members failed to connect", failures, o.N)
	}
	if err := joinAll(ctx, o, clients, join); err != nil {
		return res, err
	}

	var pub *chatPublisher
	if o.Via == "chat" {
		pub, err = newChatPublisher(ctx, o, d)
		if err != nil {
			return res, err
		}
		defer pub.Close()
		publish = pub.publish
	}
	// Joining a chat room notifies the other members: wait for that traffic to end.
	settle(ctx, &run.frames, time.Second, 60*time.Second)

	total := o.Rate * int(o.Duration/time.Second)
	p0, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	self0, _ := ReadProc(os.Getpid())
	firstPublish := time.Since(run.base)
	// Messages are stamped on a fixed schedule and sent in order by one sender: when the server
	// answers an API call late (it answers once it did its part of the fan-out), the next messages
	// wait in the publisher's queue, and that wait counts in their latency, as it would for a
	// backend. One sender keeps the order, so reordering can only come from the server.
	type stamped struct {
		seq  int
		sent int64
	}
	queue := make(chan stamped, total)
	sent := make(chan error, 1)
	go func() {
		for m := range queue {
			if err := publish(m.seq, m.sent); err != nil {
				sent <- fmt.Errorf("loadgen: fanout: publish %d: %w", m.seq, err)
				for range queue {
				}
				return
			}
		}
		sent <- nil
	}()
	published := 0
	tick := time.NewTicker(time.Second / time.Duration(max(o.Rate, 1)))
	for published < total {
		queue <- stamped{published, int64(time.Since(run.base))}
		published++
		if published < total {
			<-tick.C
		}
	}
	tick.Stop()
	close(queue)
	if err := <-sent; err != nil {
		return res, err
	}
	expected := int64(published) * int64(len(clients))
	// Drain: until every member got every message, or nothing arrives for 3 s.
	last, lastChange := run.delivered.Load(), time.Now()
	for run.delivered.Load() < expected && time.Since(lastChange) < 3*time.Second {
		time.Sleep(20 * time.Millisecond)
		if n := run.delivered.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	p1, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	self1, _ := ReadProc(os.Getpid())
	if pub != nil && pub.bad.Load() > 0 {
		res.note("%d chat:send acks were errors", pub.bad.Load())
	}
	closeAll(o, clients) // the read loops end here, so their state can be read
	clients = nil

	var (
		all                  []time.Duration
		lost, ooo, dups, got int
		nodes                = 1 + len(o.Peers)
		gotOn, lostOn        = make([]int, nodes), make([]int, nodes)
	)
	for _, m := range members {
		if m == nil {
			continue
		}
		all = append(all, m.lat...)
		lost += m.seq.Lost(published)
		ooo += m.seq.OutOfOrder
		dups += m.seq.Duplicates
		got += m.seq.Received
		gotOn[m.node] += m.seq.Received
		lostOn[m.node] += m.seq.Lost(published)
	}
	if nodes > 1 {
		for k := range nodes {
			res.set(fmt.Sprintf("delivered_node%d", k+1), float64(gotOn[k]))
			res.set(fmt.Sprintf("lost_node%d", k+1), float64(lostOn[k]))
		}
	}
	lat := Summarize(all)
	span := time.Duration(run.lastAt.Load()) - firstPublish
	res.set("members", float64(len(members)-failures))
	res.set("published", float64(published))
	res.set("expected", float64(expected))
	res.set("delivered", float64(got))
	res.set("delivered_per_s", float64(got)/max(span.Seconds(), o.Duration.Seconds()/2))
	res.set("cpu_per_delivery_us", perUnit(p1.CPU-p0.CPU, got))
	res.set("loadgen_cpu_per_delivery_us", perUnit(self1.CPU-self0.CPU, got))
	res.setLatency("", lat)
	res.set("lost", float64(lost))
	res.set("out_of_order", float64(ooo))
	res.set("duplicates", float64(dups))
	res.set("rss_kib", float64(p1.RSS)/1024)
	return res, nil
}

// dialSpread connects o.N members to nsp, spread round-robin over o.Addr and o.Peers (see
// spread). frames(i, node) makes member i's frame handler; node 0 is o.Addr.
func dialSpread(ctx context.Context, o Options, nsp string, frames func(i, node int) func(Frame, time.Time) bool) ([]*client, int, error) {
	addrs := append([]string{o.Addr}, o.Peers...)
	var (
		all      []*client
		failures int
	)
	for node, ids := range spread(o.N, len(addrs)) {
		cs, failed, err := dialAll(ctx, o, o.dialer(addrs[node]), nsp, len(ids), func(j int) func(Frame, time.Time) bool {
			return frames(ids[j], node)
		})
		if err != nil {
			closeAll(o, all)
			return nil, 0, fmt.Errorf("node %s: %w", addrs[node], err)
		}
		all, failures = append(all, cs...), failures+failed
	}
	return all, failures, nil
}

// spread deals member indices 0..n-1 round-robin to nodes: member i goes to node i mod nodes.
func spread(n, nodes int) [][]int {
	out := make([][]int, nodes)
	for i := range n {
		out[i%nodes] = append(out[i%nodes], i)
	}
	return out
}

// joinAll puts every client in the room with the join request; a missing or failed ack makes the
// scenario n/a.
func joinAll(ctx context.Context, o Options, clients []*client, join Event) error {
	errs := make(chan error, len(clients))
	sem := make(chan struct{}, max(o.Concurrency, 1))
	for _, c := range clients {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			data, err := c.request(ctx, join, 0, 30*time.Second)
			if err == nil && !AckOK(data) {
				err = notAvailable("join answered %.80s", data)
			}
			errs <- err
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		if _, ok := first.(*errNA); ok {
			return first
		}
		return notAvailable("join: %v", first)
	}
	return nil
}

// settle waits until counter stopped changing for quiet (at most limit).
func settle(ctx context.Context, counter *atomic.Int64, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, since := counter.Load(), time.Now()
	for time.Since(since) < quiet && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if n := counter.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// apiPublisher publishes through POST /api/v1/emit.
type apiPublisher struct {
	url, key, room string
	base           time.Time
	http           *http.Client
}

// newAPIPublisher keeps one keep-alive connection per call in flight (o.InFlight, at least one),
// so that no call pays for a TCP handshake.
func newAPIPublisher(o Options, base time.Time) *apiPublisher {
	conns := max(o.InFlight, 1)
	return &apiPublisher{
		url: "http://" + o.Addr + "/api/v1/emit", key: o.APIKey, room: o.Room, base: base,
		http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute,
			DisableCompression: true,
		}},
	}
}

func (p *apiPublisher) post(ctx context.Context, room string, seq int, sent int64) error {
	body := fmt.Appendf(nil, `{"namespace":"/","rooms":[%q],"event":"tick","data":{"m":"`, room)
	body = AppendStamp(body, seq, sent)
	body = append(body, `"}}`...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return notAvailable("POST /api/v1/emit answered %d: %.80s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return nil
}

// probe checks that the API exists, with a message to a room nobody is in.
func (p *apiPublisher) probe(ctx context.Context) error {
	return p.post(ctx, p.room+"-probe", -1, int64(time.Since(p.base)))
}

func (p *apiPublisher) publish(seq int, sent int64) error {
	return p.post(context.Background(), p.room, seq, sent)
}

// chatPublisher is one more chat member that sends chat:send with an ack.
type chatPublisher struct {
	*client
	d    *Dialer // its events' parser
	room string
	buf  []byte
	bad  atomic.Int64
}

func newChatPublisher(ctx context.Context, o Options, d *Dialer) (*chatPublisher, error) {
	p := &chatPublisher{room: o.Room, d: d}
	cs, _, err := dialAll(ctx, Options{Concurrency: 1}, d, "/chat", 1, func(int) func(Frame, time.Time) bool {
		return func(f Frame, _ time.Time) bool {
			if f.SIO == sioAck && f.AckID > 0 {
				if !AckOK(f.Data) {
					p.bad.Add(1)
				}
				return true
			}
			return f.SIO == sioEvent // its own chat:message and presence events
		}
	})
	if err != nil {
		return nil, err
	}
	p.client = cs[0]
	if err := joinAll(ctx, Options{Concurrency: 1}, cs, d.Event("/chat", "chat:join", fmt.Appendf(nil, `{"room":%q}`, o.Room))); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *chatPublisher) publish(seq int, sent int64) error {
	p.buf = fmt.Appendf(p.buf[:0], `{"room":%q,"text":"`, p.room)
	p.buf = AppendStamp(p.buf, seq, sent)
	p.buf = append(p.buf, `"}`...)
	return p.Emit(p.d.Event("/chat", "chat:send", p.buf), int64(seq)+1)
}
