package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
)

// joiner is one member of the chat-join scenario. sent is written by the joining goroutine; the
// rest only by the member's read loop until the join was answered (acked closed) or the run ended.
type joiner struct {
	sent     atomic.Int64 // send time of chat:join, nanoseconds since the run's base
	acked    chan struct{}
	answered bool // the read loop's: a second answer must not close acked again
	lat      time.Duration
	members  []string // user ids of the join's answer
	failed   string   // an error answer
	notified map[string]int
}

// joinAck is the answer to chat:join.
type joinAck []struct {
	Data *struct {
		Members []struct {
			ID string `json:"id"`
		} `json:"members"`
	} `json:"data"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

var userJoined = []byte(`["chat:user-joined"`)

// runChatJoin connects N anonymous members to /chat (not measured), then has each send
// `chat:join` to one room once, Concurrency in flight, and measures the joins: ack latency, joins
// per second and server CPU from the first join until every member learnt of every other (or
// nothing arrived for 2 s). Presence is checked from outside: every member must know every other
// member exactly once, either from its join's `members` or from one `chat:user-joined` (lost: a
// member it never heard of; duplicated: one it heard of twice).
func runChatJoin(ctx context.Context, o Options) (Result, error) {
	var res Result
	base := time.Now()
	join := NewEvent("/chat", "chat:join", fmt.Appendf(nil, `{"room":%q}`, o.Room))
	var (
		notifications atomic.Int64
		states        = make([]*joiner, o.N)
	)
	clients, failures, err := dialAll(ctx, o, NewDialer(o.Addr, o.Sources), "/chat", o.N, func(i int) func(Frame, time.Time) bool {
		st := &joiner{acked: make(chan struct{}), notified: map[string]int{}}
		states[i] = st
		return func(f Frame, at time.Time) bool {
			switch {
			case f.SIO == sioAck && f.AckID == 1 && st.answered:
				return true // a second answer to one join: not counted as presence
			case f.SIO == sioAck && f.AckID == 1:
				st.answered = true
				st.lat = at.Sub(base) - time.Duration(st.sent.Load())
				var a joinAck
				switch err := json.Unmarshal(f.Data, &a); {
				case err != nil || len(a) != 1:
					st.failed = fmt.Sprintf("%.80s", f.Data)
				case a[0].Error != nil:
					st.failed = a[0].Error.Code
				case a[0].Data == nil:
					st.failed = fmt.Sprintf("%.80s", f.Data)
				default:
					for _, m := range a[0].Data.Members {
						st.members = append(st.members, m.ID)
					}
				}
				close(st.acked)
				return true
			case f.SIO == sioEvent && bytes.HasPrefix(f.Data, userJoined):
				if id, ok := joinedUser(f.Data); ok {
					st.notified[id]++
				}
				notifications.Add(1)
				return true
			}
			return f.SIO == sioEvent
		}
	})
	if err != nil {
		return res, err
	}
	defer func() { closeAll(o, clients) }()
	if failures > 0 {
		res.note("%d of %d members failed to connect", failures, o.N)
	}
	live := states[:0]
	for _, st := range states {
		if st != nil {
			live = append(live, st)
		}
	}

	p0, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	first := time.Now()
	var timedOut atomic.Int64
	parallel(ctx, len(live), o.Concurrency, func(i int) {
		st := live[i]
		st.sent.Store(int64(time.Since(base)))
		if err := clients[i].Emit(join, 1); err != nil {
			timedOut.Add(1)
			return
		}
		select {
		case <-st.acked:
		case <-time.After(60 * time.Second):
			timedOut.Add(1)
		case <-ctx.Done():
		}
	})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	lastAck := time.Now()
	if int(timedOut.Load()) == len(live) {
		return res, notAvailable("chat:join: no ack within 60s")
	}
	// Every member that joined must hear of each later one: wait for those notifications.
	joined, expected := 0, int64(0)
	for _, st := range live {
		select {
		case <-st.acked:
			if st.failed == "" {
				joined++
			}
		default:
		}
	}
	for _, st := range live {
		select {
		case <-st.acked:
			if st.failed == "" {
				expected += int64(joined - len(st.members))
			}
		default:
		}
	}
	last, lastChange := notifications.Load(), time.Now()
	for notifications.Load() < expected && time.Since(lastChange) < 2*time.Second && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if n := notifications.Load(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	p1, err := ReadProcs(o.pids())
	if err != nil {
		return res, err
	}
	sids := make([]string, len(clients))
	for i, c := range clients {
		sids[i] = c.SID
	}
	closeAll(o, clients) // the read loops end here, so the members' state can be read
	clients = nil

	var (
		lat        []time.Duration
		views      []presenceView
		fails      int
		failSample string
	)
	for i, st := range live {
		select {
		case <-st.acked:
		default:
			continue
		}
		if st.failed != "" {
			fails++
			failSample = st.failed
			continue
		}
		lat = append(lat, st.lat)
		views = append(views, presenceView{self: sids[i], listed: st.members, notified: st.notified})
	}
	pc := checkPresence(views)
	if fails > 0 {
		res.note("%d joins were answered with an error, e.g. %s", fails, failSample)
	}
	if n := timedOut.Load(); n > 0 {
		res.note("%d joins were not answered within 60s", n)
	}
	if pc.duplicates > 0 {
		res.note("%d duplicates: %d pairs were in the join's members and announced by chat:user-joined too, the rest announced twice", pc.duplicates, pc.listedAndNotified)
	}
	if pc.unknown > 0 {
		res.note("%d chat:user-joined named a user that is not a member", pc.unknown)
	}
	l := Summarize(lat)
	span := lastAck.Sub(first)
	res.set("members", float64(len(views)))
	res.set("joins_per_s", float64(len(views))/span.Seconds())
	res.setLatency("", l)
	res.set("p90_ms", ms(Percentile(lat, 90)))
	res.set("server_cpu_ms", ms(p1.CPU-p0.CPU))
	res.set("cpu_per_join_us", perUnit(p1.CPU-p0.CPU, len(views)))
	res.set("notifications", float64(notifications.Load()))
	res.set("failures", float64(fails+int(timedOut.Load())))
	res.set("lost", float64(pc.lost))
	res.set("duplicates", float64(pc.duplicates))
	res.set("rss_kib", float64(p1.RSS)/1024)
	return res, nil
}

// joinedUser finds the user id in a chat:user-joined event: `"id":"…"` after `"user"`.
func joinedUser(data []byte) (string, bool) {
	i := bytes.Index(data, []byte(`"user"`))
	if i < 0 {
		return "", false
	}
	rest := data[i:]
	j := bytes.Index(rest, []byte(`"id":"`))
	if j < 0 {
		return "", false
	}
	rest = rest[j+6:]
	k := bytes.IndexByte(rest, '"')
	if k < 0 {
		return "", false
	}
	return string(rest[:k]), true
}

// presenceView is what one member that joined learnt: its own user id, the members its join's
// answer listed, and the users chat:user-joined announced to it (with how many times).
type presenceView struct {
	self     string
	listed   []string
	notified map[string]int
}

// presenceCount is checkPresence's verdict.
type presenceCount struct {
	lost              int // member × other member it never heard of
	duplicates        int // member × other member heard of more than once (each extra time)
	listedAndNotified int // of the duplicates: listed in the answer and announced as well
	unknown           int // announcements of users that are not members
}

// checkPresence checks that every member knows every other member exactly once, from its join's
// answer or from one announcement.
func checkPresence(views []presenceView) presenceCount {
	var pc presenceCount
	members := make(map[string]bool, len(views))
	for _, v := range views {
		members[v.self] = true
	}
	for _, v := range views {
		known := make(map[string]bool, len(members))
		for _, id := range v.listed {
			known[id] = true
		}
		for id, n := range v.notified {
			switch {
			case !members[id]:
				pc.unknown += n
			case known[id]:
				pc.duplicates += n
				pc.listedAndNotified++
			default:
				pc.duplicates += n - 1
				known[id] = true
			}
		}
		for id := range members {
			if id != v.self && !known[id] {
				pc.lost++
			}
		}
	}
	return pc
}
