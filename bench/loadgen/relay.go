package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// PlayerMarker starts the player stamp of relay messages: "bply:<player>:" right before the
// sequence stamp, so that a receiver knows whose value it got (the user id is the socket's).
const PlayerMarker = "bply:"

// relayPlayer is one member of the relay scenario: it publishes and it receives. Only its read
// loop touches what it received.
type relayPlayer struct {
	last []int           // per player: the highest sequence number received, -1 for none
	seq  []SeqTracker    // per player (unkeyed: every message must arrive, in order)
	lat  []time.Duration // arrival − send time of every stamped message
	ooo  int             // keyed: a value older than one received before
	got  int
}

// relayRun is the shared state of one relay run.
type relayRun struct {
	deliveries
	finals atomic.Int64 // (member, player) pairs whose player's last message arrived
}

// runRelay puts N players in one room of "/relay"; each publishes Rate messages a second for
// Duration (keyed "pos" values with Keyed, else unkeyed ones) without an ack, as a game does,
// and receives the others'. Against Switchboard a keyed value reaches each member at most once
// per tick, the latest; against Node's naive relay (bench/node/server.js) every message goes to
// every member. It measures what the members receive (deliveries, latency, lost and reordered
// messages, the final values), what the server wrote (bytes), its CPU per publish and per
// delivery, and its memory.
func runRelay(ctx context.Context, o Options) (Result, error) {
	var res Result
	if o.N < 2 {
		return res, fmt.Errorf("loadgen: relay needs at least 2 players, got %d", o.N)
	}
	d := o.dialer(o.Addr)
	run := &relayRun{deliveries: deliveries{base: time.Now()}}
	period := time.Second / time.Duration(max(o.Rate, 1))
	perPlayer := max(int(o.Duration/period), 1)
	players := make([]*relayPlayer, o.N)
	clients, failures, err := dialAll(ctx, o, d, "/relay", o.N, func(i int) func(Frame, time.Time) bool {
		p := &relayPlayer{last: make([]int, o.N), seq: make([]SeqTracker, o.N)}
		for j := range p.last {
			p.last[j] = -1
		}
		players[i] = p
		return run.handler(func(data []byte, now time.Duration) bool {
			from, seq, sent, ok := findRelayStamp(data)
			if !ok || from < 0 || from >= o.N {
				return false // presence events
			}
			p.lat = append(p.lat, now-time.Duration(sent))
			p.got++
			if o.Keyed {
				if seq < p.last[from] {
					p.ooo++
				}
			} else {
				p.seq[from].Observe(seq)
			}
			if seq == perPlayer-1 && p.last[from] < seq {
				run.finals.Add(1)
			}
			p.last[from] = max(p.last[from], seq)
			return true
		})
	})
	if err != nil {
		return res, err
	}
	defer closeAll(o, clients)
	if failures > 0 {
		return res, fmt.Errorf("loadgen: relay: %d of %d players failed to connect", failures, o.N)
	}
	// dialAll keeps the order of the successful connections: with none failed, clients[i] is
	// player i.
	if err := joinAll(ctx, o, clients, d.Event("/relay", "relay:join", fmt.Appendf(nil, `{"room":%q}`, o.Room))); err != nil {
		return res, err
	}
	settle(ctx, &run.frames, time.Second, 60*time.Second) // the joins' presence traffic

	p0, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	w0, werr := ReadWritten(o.pids())
	self0, _ := ReadProc(os.Getpid())
	start := time.Now().Add(20 * time.Millisecond)
	startAt := start.Sub(run.base)

	// Memory while publishing, every 250 ms: the highest in each half of the window, so that a
	// backlog that grows shows as growth from the first half to the second.
	var rssMax, rssFirst, rssSecond atomic.Int64
	rssMax.Store(p0.RSS)
	half := start.Add(o.Duration / 2)
	sampling, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-t.C:
				s, err := ReadProcs(o.pids())
				if err != nil {
					continue
				}
				rssMax.Store(max(rssMax.Load(), s.RSS))
				if s.At.Before(half) {
					rssFirst.Store(max(rssFirst.Load(), s.RSS))
				} else {
					rssSecond.Store(max(rssSecond.Load(), s.RSS))
				}
			}
		}
	})

	// Each player publishes on its own schedule, spread over the period; a message is stamped
	// with the time it was due, so that the load generator's own lag counts against the server.
	var (
		published atomic.Int64
		sendLag   atomic.Int64
		sendErr   atomic.Value
		wg        sync.WaitGroup
	)
	for i, c := range clients {
		wg.Go(func() {
			offset := period * time.Duration(i) / time.Duration(len(clients))
			var buf []byte
			for k := range perPlayer {
				due := start.Add(offset + time.Duration(k)*period)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				} else if lag := int64(-wait); lag > sendLag.Load() {
					sendLag.Store(lag) // racy max: a report figure, not a check
				}
				if ctx.Err() != nil {
					return
				}
				buf = appendRelayPublish(buf[:0], o.Room, o.Keyed, i, k, int64(due.Sub(run.base)))
				if err := c.Emit(d.Event("/relay", "relay:publish", buf), -1); err != nil {
					sendErr.CompareAndSwap(nil, err)
					return
				}
				published.Add(1)
			}
		})
	}
	wg.Wait()
	endAt := time.Since(run.base)
	if err, _ := sendErr.Load().(error); err != nil {
		stopSampling()
		sampler.Wait()
		return res, fmt.Errorf("loadgen: relay: publish: %w", err)
	}

	// Drain: until every member has every other player's last message (and, unkeyed, every
	// message), or deliveries stop for 3 s; at most 60 s.
	pairs, naive := int64(o.N*(o.N-1)), published.Load()*int64(o.N-1)
	last, lastChange, drainEnd := run.delivered.Load(), time.Now(), time.Now().Add(60*time.Second)
	for time.Since(lastChange) < 3*time.Second && time.Now().Before(drainEnd) && ctx.Err() == nil {
		if run.finals.Load() == pairs && (o.Keyed || run.delivered.Load() >= naive) {
			break
		}
		time.Sleep(20 * time.Millisecond)
		if n := run.delivered.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	stopSampling()
	sampler.Wait()
	p1, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	w1, _ := ReadWritten(o.pids())
	self1, _ := ReadProc(os.Getpid())
	closeAll(o, clients) // the read loops end here, so their state can be read
	clients = nil

	var (
		all                        []time.Duration
		got, ooo, lost, dups, miss int
	)
	for i, p := range players {
		all = append(all, p.lat...)
		got += p.got
		ooo += p.ooo
		for j := range players {
			if j == i {
				continue
			}
			if p.last[j] != perPlayer-1 {
				miss++
			}
			if !o.Keyed {
				lost += p.seq[j].Lost(perPlayer)
				ooo += p.seq[j].OutOfOrder
				dups += p.seq[j].Duplicates
			}
		}
	}
	lat := Summarize(all)
	pubs := int(published.Load())
	window := endAt - startAt
	span := max(time.Duration(run.lastAt.Load())-startAt, window)
	cpu := p1.CPU - p0.CPU
	res.set("players", float64(o.N))
	res.set("published", float64(pubs))
	res.set("publishes_per_s", float64(pubs)/window.Seconds())
	res.set("naive_per_s", float64(pubs*(o.N-1))/window.Seconds())
	res.set("delivered", float64(got))
	res.set("delivered_per_s", float64(got)/span.Seconds())
	res.set("delivered_pct", 100*float64(got)/float64(max(pubs*(o.N-1), 1)))
	if werr == nil {
		res.set("bytes_per_s", float64(w1-w0)/span.Seconds())
		res.set("bytes_per_delivery", float64(w1-w0)/float64(max(got, 1)))
	} else {
		res.note("bytes written not read: %v", werr)
	}
	res.set("cpu_per_publish_us", perUnit(cpu, pubs))
	res.set("cpu_per_delivery_us", perUnit(cpu, got))
	res.set("server_cpu_pct", 100*cpu.Seconds()/span.Seconds())
	res.setLatency("", lat)
	res.set("drain_ms", ms(max(time.Duration(run.lastAt.Load())-endAt, 0)))
	res.set("final_missing", float64(miss))
	res.set("out_of_order", float64(ooo))
	if !o.Keyed {
		res.set("lost", float64(lost))
		res.set("duplicates", float64(dups))
	}
	if o.Keyed && o.Tick > 0 {
		// What a member gets at most: one value of each other player per tick of the window.
		perTick := float64(o.N*(o.N-1)) * window.Seconds() / o.Tick.Seconds()
		res.set("tick_coverage_pct", 100*float64(got)/perTick)
	}
	res.set("rss_kib", float64(p1.RSS)/1024)
	res.set("rss_max_kib", float64(rssMax.Load())/1024)
	res.set("rss_growth_kib", float64(rssMax.Load()-p0.RSS)/1024)
	if rssFirst.Load() > 0 && rssSecond.Load() > 0 {
		res.set("rss_late_growth_kib", float64(rssSecond.Load()-rssFirst.Load())/1024)
	}
	res.set("send_lag_max_ms", ms(time.Duration(sendLag.Load())))
	res.set("loadgen_cpu_pct", 100*(self1.CPU-self0.CPU).Seconds()/span.Seconds())
	return res, nil
}

// appendRelayPublish appends a relay:publish payload from player seq k, stamped with sent.
func appendRelayPublish(dst []byte, room string, keyed bool, player, k int, sent int64) []byte {
	dst = fmt.Appendf(dst, `{"room":%q,"event":"move",`, room)
	if keyed {
		dst = append(dst, `"key":"pos",`...)
	}
	dst = fmt.Appendf(dst, `"data":{"x":%d,"y":%d,"m":"%s%d:`, k%1000, (k*7)%1000, PlayerMarker, player)
	dst = AppendStamp(dst, k, sent)
	return append(dst, `"}}`...)
}

// findRelayStamp finds the player and sequence stamps in a relay:message frame.
func findRelayStamp(b []byte) (player, seq int, sent int64, ok bool) {
	i := bytes.Index(b, []byte(PlayerMarker))
	if i < 0 {
		return 0, 0, 0, false
	}
	p, n := leadingInt(b[i+len(PlayerMarker):])
	if n == 0 {
		return 0, 0, 0, false
	}
	seq, sent, ok = FindStamp(b[i:])
	return int(p), seq, sent, ok
}
