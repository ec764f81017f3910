package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report renders RESULTS.md.
type report struct {
	Machine machine
	Env     *environment
	Cases   []benchCase
	Reps    int
	Quick   bool
	Results map[string]map[string][]outcome
	Started time.Time
	Took    time.Duration
}

// stat is the median and range of one figure over the repetitions that produced it.
type stat struct {
	Median, Min, Max float64
	N                int
}

// summarize returns the median and range of vs (ok false when empty).
func summarize(vs []float64) (stat, bool) {
	if len(vs) == 0 {
		return stat{}, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}, true
}

// figure collects metric key of one case on one server.
func (r report) figure(caseID, server, key string) (stat, bool) {
	var vs []float64
	for _, o := range r.Results[caseID][server] {
		if o.Err == "" && o.Result.NA == "" {
			if v, ok := o.Result.Metrics[key]; ok {
				vs = append(vs, v)
			}
		}
	}
	return summarize(vs)
}

func (r report) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	cmd := "make bench"
	if r.Quick {
		cmd = "make bench-quick"
	}
	p("# Switchboard vs Node's Socket.IO: benchmark results")
	p("")
	p("Produced by `%s` (`go run ./bench/cmd/benchrun`) on %s in %s. Every figure is the median of %d",
		cmd, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second), r.Reps)
	p("repetitions with the range [min–max] after it; the ratio is Switchboard's median divided by Node's.")
	p("Each repetition starts each server fresh; the two servers take turns going first.")
	if r.Quick {
		p("")
		p("**Quick mode**: small sizes and few repetitions, for iterating; not for comparison.")
	}
	p("")
	p("## Machine")
	p("")
	m := r.Machine
	p("- CPU: %d × %s; memory %s; Linux %s", m.cores, m.cpu, m.memory, m.kernel)
	p("- load average (1/5/15 min) at the start: %s, at the end: %s. The machine is shared: other", m.loadStart, m.loadEnd)
	p("  processes running at the same time show up as noise in the ranges (most in latency and throughput;")
	p("  CPU per operation and memory are steadier).")
	p("- descriptor limit for the servers and the load generator: %s (raised by benchrun)", m.fileLimit)
	p("")
	p("## Versions")
	p("")
	for _, v := range r.Env.versions {
		p("- %s: %s", v[0], v[1])
	}
	p("")
	p("## Settings")
	p("")
	p("- **Pinning**: the server under test runs alone on core %s (`taskset -c %s`), the load generator on core %s", serverCore, serverCore, loadCore)
	p("  (`taskset -c %s`). Switchboard's Go runtime sees one CPU (GOMAXPROCS 1); Node is single-threaded anyway.", loadCore)
	p("- **Network**: loopback only; clients connect from 16 source addresses 127.0.1.3–18 (ephemeral ports), websocket-only")
	p("  Engine.IO v4 transport, no compression (but `connect-polling-…`, below).")
	p("- **Measured from /proc**: server CPU = utime + stime of `/proc/<pid>/stat` (every thread; 10 ms ticks) read at")
	p("  the edges of the measured window; RSS = `VmRSS` of `/proc/<pid>/status`.")
	p("- **Switchboard**: the real binary, `--api-keys benchkey --log-level warn --log-format json --event-rate 0` (warn: no")
	p("  access log line per API call, as Node logs nothing; no per-socket event limit, as Node has none: the echo clients")
	p("  send over 1,000 events a second each), everything else default: ping 25 s / 20 s, 1 MB payloads,")
	p("  connection state recovery 2 min, memory adapter, anonymous clients. The connect cases and churn add `--pprof-addr`")
	p("  (a listener of its own) to count goroutines.")
	p("- **msgpack clients** (`…-msgpack…`): the load generator speaks socket.io-msgpack-parser 3's framing (one")
	p("  binary websocket frame per packet, a msgpack map); Node runs `bench/node/server.js --parser msgpack` (Socket.IO's")
	p("  `parser` option: one parser per server), Switchboard its default `--parser auto`, which picks the parser per")
	p("  connection from its first packet.")
	p("- **Two nodes on Redis** (`fanout-redis-…`): two processes of the same server, **both on core %s** with", serverCore)
	p("  nothing else there (the load generator stays alone on core %s); Switchboard with `--adapter redis --redis-url %s`,", loadCore, r.Env.redisURL)
	p("  Node with `--redis %s` (`@socket.io/redis-adapter` on a node-redis client pair). Both keep the", r.Env.redisURL)
	p("  adapters' default channel prefix `socket.io`, so each pair talks only to itself (the two servers never")
	p("  run at the same time). Redis pub/sub channels are shared by every database and client of that Redis, so")
	p("  each run uses a room of its own (`bench-<benchrun pid>-<server>-<repetition>`); pub/sub stores nothing, so")
	p("  nothing is flushed. Server CPU and RSS are summed over both processes. Redis itself is not pinned and its")
	p("  CPU is not counted.")
	p("- **Stock clients** (`connect-polling-…`): `bench/node/clients.js` opens the sockets with the npm `socket.io-client`")
	p("  of the Versions above (the one `client-js` depends on) in one Node process started by the load generator, so on")
	p("  core %s: `forceNew` (one Engine.IO connection each, as separate tabs have), reconnection off, default transports", loadCore)
	p("  (long-polling first, then the websocket upgrade). The same 16 source addresses, through one `http.Agent` each")
	p("  without keep-alive, as the client's own default (no agent) has: every polling request is its own TCP connection.")
	p("  The driver's CPU and memory are not counted.")
	p("- **Node**: `bench/node/server.js`, socket.io with the same settings (ping 25 s / 20 s, `maxHttpBufferSize` 1 MB,")
	p("  connection state recovery 2 min) and the same contract subset: `/` `subscribe`/`unsubscribe` acked")
	p("  `{data:{rooms}}`, `/chat` `chat:join`/`chat:leave`/`chat:send` (→ `chat:message` to every member),")
	p("  `POST /api/v1/emit` with a bearer key (202 `{\"ok\":true}`); anonymous users in `user:<id>` rooms. `NODE_ENV=production`.")
	p("- **Load generator**: `bench/cmd/loadgen`, a minimal Engine.IO/Socket.IO client on gorilla/websocket: one")
	p("  goroutine per connection, pre-encoded frames, send timestamps and per-publisher sequence numbers in")
	p("  the payloads (`bseq:<seq>:<ns>`) for latency, loss and order. A scenario whose event or endpoint the")
	p("  server lacks (no ack, `connect_error`, 404) reports n/a instead of failing. Its own CPU is reported too;")
	p("  most of it is the kernel's side of one read syscall per delivered frame.")
	p("")
	p("How the figures are computed:")
	p("")
	p("- connections/s = clients connected ÷ time from the first dial to the last namespace ack; RSS per idle")
	p("  connection = (RSS 2 s after the last connect − RSS before the first) ÷ clients; goroutines per idle connection =")
	p("  (goroutines after that RSS reading − goroutines before the first dial) ÷ clients, from the goroutine profile of")
	p("  `--pprof-addr` (Switchboard only); handshake latency = namespace CONNECT answer − dial, per client (the wait for one")
	p("  of the 50 slots is not in it, the server's queue is).")
	p("- stock clients, polling then websocket: a socket is ready once connected, its `subscribe` acked and its transport")
	p("  upgraded; connections/s = ready sockets ÷ (last ready − first dial), which is mostly the Node client's own rate on")
	p("  its core (both servers wait for it), so compare server CPU per connection and memory rather than the rate. Server CPU")
	p("  from before the driver starts until every socket is ready; RSS and goroutines read 5 s later (the last polling")
	p("  requests closed). Failed = sockets not connected and acked within 30 s (or refused); left on long-polling =")
	p("  connected sockets whose transport is not websocket when they are ready or 30 s passed, as the client reports it.")
	p("- echo: acks/s and server CPU per ack over the measured window only; latency = ack arrival − send, per request.")
	p("- echo at a fixed rate: open loop, request k due at start + k/rate on client k mod 50 whatever was answered; one pacer")
	p("  sends what is due and sleeps until the next one. acks/s = acks that arrived in the window ÷ window (sustained when")
	p("  ≥ 99%% of the target, else a note says so); server CPU per ack over the window; latency = ack arrival − actual send,")
	p("  for requests sent in the window, and how late the pacer sent (its own lag, not the server's) is its own row. Lost =")
	p("  requests without an answer once nothing arrived for 3 s after the last send; out of order = an ack that arrived")
	p("  after the ack of a later request of the same client; duplicated = an ack id answered twice.")
	p("- fan-out: messages are stamped on a fixed schedule (10 per second) and sent in order by one publisher, so")
	p("  reordering can only come from the server; when the server answers an API call late, later messages wait")
	p("  in the publisher's queue and that wait counts in their latency, as it would for a backend. delivered/s =")
	p("  deliveries ÷ (last delivery − first publish); server CPU from the first publish until every member got")
	p("  every message (or nothing arrived for 3 s); lost = published messages a member never received.")
	p("- API emit path: every call is its own message (stamped with a sequence number) to a room of %d members, so", emitMembers)
	p("  the server's work per call is parsing, authorising and one emit that reaches %d websockets. calls/s =", emitMembers)
	p("  successful calls that ended inside the measured window ÷ window; server CPU per call over the same window")
	p("  (the %d deliveries included); latency = answer − request start of each call, as the backend sees it (with", emitMembers)
	p("  %d in flight it includes waiting behind the others). Failed = calls that errored or were not answered", emitInFlight)
	p("  202 during the whole run. Deliveries are counted over the whole run, warm-up included, once the callers")
	p("  stopped and the members got everything (or nothing arrived for 3 s): lost = accepted calls × members −")
	p("  what arrived; with several callers the order of arrival says nothing, so it is not counted.")
	p("- two nodes on Redis: as fan-out, with the members dealt alternately to node A and node B and every message")
	p("  posted to node A, so node B's members get theirs only through Redis. A node B that relays nothing shows as")
	p("  half the deliveries lost (the \"of which on node B\" row). Server CPU per delivery = CPU of both processes ÷")
	p("  deliveries on both nodes.")
	p("- members joining one chat room: the N members connect first (not measured); then each sends one `chat:join`, 50 in")
	p("  flight. Latency = ack arrival − send, per join (with 50 in flight it is mostly waiting behind the other joins, so it")
	p("  follows the server's CPU per join); joins/s = N ÷ (last ack − first join); server CPU from the first join until")
	p("  every member heard of every other (or nothing arrived for 2 s). Presence is checked from outside: every member must")
	p("  know every other member exactly once, from its answer's `members` or from one `chat:user-joined`; lost = a pair")
	p("  never heard of, duplicated = a pair heard of twice (a note says how many were both listed and announced). With N")
	p("  joiners there is no single order to check.")
	p("- chat fan-out setup: anonymous members each announce themselves (`chat:user-joined`), so N members cost")
	p("  N²/2 presence messages before the measurement starts (not counted); hence 1,000 members by default.")
	p("")
	p("## Results")
	for _, c := range r.Cases {
		p("")
		p("### %s", c.Title)
		p("")
		p("%s.", c.What)
		p("")
		if c.NodeWould != "" {
			r.switchboardOnly(p, c)
			continue
		}
		p("| figure | Switchboard | Node socket.io | Switchboard/Node |")
		p("|---|---|---|---|")
		for _, mt := range c.Metrics {
			sb, okS := r.figure(c.ID, "switchboard", mt.Key)
			nd, okN := r.figure(c.ID, "node", mt.Key)
			if !okS && !okN && r.allFailed(c.ID) {
				continue
			}
			p("| %s | %s | %s | %s |", mt.heading(), cell(sb, okS, mt.Digits), cell(nd, okN, mt.Digits), ratio(sb, okS, nd, okN))
		}
		for _, s := range servers {
			r.serverNotes(p, c.ID, s)
		}
	}
	p("")
	p("↑ higher is better, ↓ lower is better. n/a: the server lacks the event or endpoint, or the figure does not apply")
	p("(Node has no goroutines).")
	r.calibration(p)
	return b.String()
}

// switchboardOnly renders a case Node does not run: Switchboard's column, then what Node would
// need instead.
func (r report) switchboardOnly(p func(string, ...any), c benchCase) {
	p("| figure | Switchboard |")
	p("|---|---|")
	for _, mt := range c.Metrics {
		sb, ok := r.figure(c.ID, "switchboard", mt.Key)
		if !ok && r.allFailed(c.ID) {
			continue
		}
		p("| %s | %s |", mt.heading(), cell(sb, ok, mt.Digits))
	}
	r.serverNotes(p, c.ID, servers[0]) // Switchboard
	p("")
	p("No Node column: %s.", c.NodeWould)
}

// serverNotes renders, under a case's table, why server s had no figures (n/a) and the notes
// its runs left, each a paragraph of its own.
func (r report) serverNotes(p func(string, ...any), caseID string, s serverKind) {
	if why := r.notAvailable(caseID, s.Name); why != "" {
		p("")
		p("%s: n/a — %s", s.Label, why)
	}
	for _, n := range r.notes(caseID, s.Name) {
		p("")
		p("%s: %s", s.Label, n)
	}
}

// allFailed reports whether no run of the case produced figures on either server.
func (r report) allFailed(caseID string) bool {
	for _, os := range r.Results[caseID] {
		for _, o := range os {
			if o.Err == "" && o.Result.NA == "" {
				return false
			}
		}
	}
	return true
}

// notAvailable explains why a server has no figures for a case.
func (r report) notAvailable(caseID, server string) string {
	var why []string
	for _, o := range r.Results[caseID][server] {
		switch {
		case o.Err == "" && o.Result.NA == "":
			return ""
		case o.Err != "":
			why = append(why, "error: "+o.Err)
		default:
			why = append(why, o.Result.NA)
		}
	}
	slices.Sort(why)
	return strings.Join(slices.Compact(why), "; ")
}

func (r report) notes(caseID, server string) []string {
	var out []string
	for i, o := range r.Results[caseID][server] {
		if o.Err != "" && r.notAvailable(caseID, server) == "" {
			out = append(out, fmt.Sprintf("repetition %d failed: %s", i+1, o.Err))
		}
		for _, n := range o.Result.Notes {
			out = append(out, fmt.Sprintf("repetition %d: %s", i+1, n))
		}
	}
	return out
}

// perfNote is one figure of PERF-NOTES: Node's and the library's.
type perfNote struct {
	caseID, key, label string
	node, lib          float64
}

// perfNotes are the figures of /work/shared/PERF-NOTES.md (Node socket.io 4.8.4 and zishang520
// v3.0.6 with defaults, minimal servers) that this tool must reproduce before it is trusted.
var perfNotes = []perfNote{
	{"connect-10000", "rss_per_conn_kib", "RSS per idle connection at 10,000 (KiB)", 15.6, 40.8},
	{"connect-10000", "conn_per_s", "connections accepted per second", 2894, 3519},
	{"echo", "cpu_per_ack_us", "echo: server CPU per ack (µs)", 18.0, 30.6},
	{"echo", "p99_ms", "echo: p99 latency, 50 clients (ms)", 2.7, 6.0},
	{"fanout-api-1000", "cpu_per_delivery_us", "fan-out 1,000: CPU per delivery (µs)", 15.5, 45.8},
	{"fanout-api-5000", "delivered_per_s", "fan-out 5,000 at 10 msg/s: delivered per second", 50000, 21600},
	{"fanout-api-5000", "p50_ms", "fan-out 5,000: latency p50 (ms)", 53, 6400},
	{"fanout-api-5000", "p99_ms", "fan-out 5,000: latency p99 (ms)", 166, 13000},
}

func (r report) calibration(p func(string, ...any)) {
	if !slices.ContainsFunc(perfNotes, func(pn perfNote) bool { return r.hasCase(pn.caseID) }) {
		return // none of the calibrated cases ran
	}
	p("")
	p("## Calibration against PERF-NOTES")
	p("")
	p("`PERF-NOTES.md` measured minimal servers (echo/join/broadcast handlers only) on a machine like this one.")
	p("This tool's Node figures should land near the Node column there; Switchboard is the product (its")
	p("`subscribe` validates, joins and lists rooms; its fan-out goes through the HTTP API), so it is compared")
	p("with the library's default figures only as an orientation.")
	p("")
	p("| figure | PERF-NOTES Node | this run, Node | Node: this/notes | PERF-NOTES zishang520 v3 | this run, Switchboard |")
	p("|---|---|---|---|---|---|")
	for _, pn := range perfNotes {
		if !r.hasCase(pn.caseID) {
			continue
		}
		nd, okN := r.figure(pn.caseID, "node", pn.key)
		sb, okS := r.figure(pn.caseID, "switchboard", pn.key)
		rel := "n/a"
		if okN && pn.node != 0 {
			rel = strconv.FormatFloat(nd.Median/pn.node, 'f', 2, 64)
		}
		p("| %s | %s | %s | %s | %s | %s |", pn.label, format(pn.node, 1), cell(nd, okN, 1), rel, format(pn.lib, 1), cell(sb, okS, 1))
	}
}

func (r report) hasCase(id string) bool {
	return slices.ContainsFunc(r.Cases, func(c benchCase) bool { return c.ID == id })
}

func cell(s stat, ok bool, digits int) string {
	if !ok {
		return "n/a"
	}
	if s.N == 1 || s.Min == s.Max {
		return format(s.Median, digits)
	}
	return fmt.Sprintf("%s [%s–%s]", format(s.Median, digits), format(s.Min, digits), format(s.Max, digits))
}

func ratio(sb stat, okS bool, nd stat, okN bool) string {
	if !okS || !okN {
		return "n/a"
	}
	if nd.Median == 0 {
		if sb.Median == 0 {
			return "="
		}
		return "—"
	}
	return strconv.FormatFloat(sb.Median/nd.Median, 'f', 2, 64)
}

// format prints v with digits decimals and thousands separators.
func format(v float64, digits int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', digits, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	for i := len(intPart) - 3; i > 0; i -= 3 {
		intPart = intPart[:i] + "," + intPart[i:]
	}
	if frac != "" {
		intPart += "." + frac
	}
	if v < 0 {
		return "-" + intPart
	}
	return intPart
}
