package main

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// metric is one figure of a case, as the load generator names it.
type metric struct {
	Key, Label string
	Higher     bool // higher is better
	Digits     int
}

// heading is the metric's row heading in the report: its label and which way is better.
func (m metric) heading() string {
	if m.Higher {
		return m.Label + " ↑"
	}
	return m.Label + " ↓"
}

// benchCase is one scenario at one size.
type benchCase struct {
	ID, Title, What string
	Scenario        string
	Args            []string
	Pprof           bool // start Switchboard with its pprof listener (goroutine counts)
	// NodeClients: the load generator drives stock socket.io-client sockets through
	// bench/node/clients.js (Node processes on the load generator's core).
	NodeClients bool
	// Cluster runs two nodes of the server, sharing rooms through Redis; the load generator
	// spreads the members over both and calls the API of the first.
	Cluster bool
	// Msgpack: the clients speak socket.io-msgpack-parser; Node is started with that parser
	// (it serves one per server), Switchboard as it comes (--parser auto).
	Msgpack bool
	// Flags are Switchboard's own flags for the case (e.g. --relay-tick); Node has no twin.
	Flags []string
	// HookBackend: benchrun starts the app backend of the hook cases (loadgen -hook-backend, on
	// the load generator's core) and points Switchboard's --hook-url at it.
	HookBackend bool
	// NodeWould, when set, makes the case Switchboard's alone: Node is not run, and the report
	// says instead what Node would need to do the same.
	NodeWould string
	Metrics   []metric
}

var (
	// idleConnMetrics are what both connect cases read once every client is connected: the cost
	// of a connection and of keeping it, and how long its handshake took.
	idleConnMetrics = []metric{
		{"cpu_per_conn_us", "server CPU per connection (µs)", false, 1},
		{"rss_per_conn_kib", "server RSS per idle connection (KiB)", false, 1},
		{"rss_kib", "server RSS with every client connected (KiB)", false, 0},
		{"goroutines_per_conn", "server goroutines per idle connection", false, 2},
		{"handshake_p50_ms", "handshake latency p50, dial → namespace CONNECT (ms)", false, 1},
		{"handshake_p99_ms", "handshake latency p99 (ms)", false, 1},
	}
	connectMetrics = slices.Concat([]metric{
		{"conn_per_s", "connections accepted per second", true, 0},
		{"failures", "failed connections", false, 0},
	}, idleConnMetrics)
	pollingMetrics = slices.Concat([]metric{
		{"conn_per_s", "connections per second (connected, subscribed and upgraded)", true, 0},
		{"failures", "failed connections", false, 0},
		{"not_upgraded", "connected sockets left on long-polling", false, 0},
	}, idleConnMetrics, []metric{
		{"upgrade_p99_ms", "dial → websocket upgrade done, p99 (ms)", false, 1},
		{"clients_cpu_pct", "Node client CPU use until ready (% of one core)", false, 0},
	})
	// ackCostMetrics are what both echo cases read of every ack: the server's CPU and the
	// latency.
	ackCostMetrics = []metric{
		{"cpu_per_ack_us", "server CPU per ack (µs)", false, 1},
		{"server_cpu_pct", "server CPU use (% of one core)", false, 0},
		{"p50_ms", "latency p50 (ms)", false, 2},
		{"p90_ms", "latency p90 (ms)", false, 2},
		{"p99_ms", "latency p99 (ms)", false, 2},
		{"max_ms", "latency max (ms)", false, 1},
	}
	echoFixedMetrics = slices.Concat([]metric{
		{"acks_per_s", "acks per second", true, 0},
		{"rate_pct", "acks per second, % of the target", true, 1},
	}, ackCostMetrics, []metric{
		{"lost", "requests never answered", false, 0},
		{"out_of_order", "acks out of order", false, 0},
		{"duplicates", "duplicated acks", false, 0},
		{"send_lag_max_ms", "load generator: latest send behind its schedule (ms)", false, 2},
		{"loadgen_cpu_per_ack_us", "load generator CPU per ack (µs)", false, 1},
	})
	chatJoinMetrics = []metric{
		{"p50_ms", "`chat:join` ack latency p50 (ms)", false, 1},
		{"p90_ms", "`chat:join` ack latency p90 (ms)", false, 1},
		{"p99_ms", "`chat:join` ack latency p99 (ms)", false, 1},
		{"max_ms", "`chat:join` ack latency max (ms)", false, 0},
		{"joins_per_s", "joins per second", true, 0},
		{"server_cpu_ms", "server CPU during the joins (ms)", false, 0},
		{"cpu_per_join_us", "server CPU per join (µs)", false, 0},
		{"failures", "failed or unanswered joins", false, 0},
		{"lost", "presence lost (member × member it never heard of)", false, 0},
		{"duplicates", "presence duplicated (member × member heard of twice)", false, 0},
	}
	echoMetrics = slices.Concat([]metric{
		{"acks_per_s", "acks per second", true, 0},
	}, ackCostMetrics, []metric{
		{"loadgen_cpu_per_ack_us", "load generator CPU per ack (µs)", false, 1},
	})
	fanoutMetrics = []metric{
		{"delivered_per_s", "delivered per second", true, 0},
		{"cpu_per_delivery_us", "server CPU per delivery (µs)", false, 1},
		{"p50_ms", "end-to-end latency p50 (ms)", false, 1},
		{"p99_ms", "end-to-end latency p99 (ms)", false, 1},
		{"max_ms", "end-to-end latency max (ms)", false, 0},
		{"lost", "lost messages (member × message)", false, 0},
		{"out_of_order", "out-of-order messages", false, 0},
		{"duplicates", "duplicated messages", false, 0},
		{"loadgen_cpu_per_delivery_us", "load generator CPU per delivery (µs)", false, 1},
	}
	apiEmitMetrics = []metric{
		{"calls_per_s", "API calls per second", true, 0},
		{"cpu_per_call_us", "server CPU per API call (µs)", false, 1},
		{"server_cpu_pct", "server CPU use (% of one core)", false, 0},
		{"p50_ms", "HTTP call latency p50 (ms)", false, 2},
		{"p99_ms", "HTTP call latency p99 (ms)", false, 2},
		{"max_ms", "HTTP call latency max (ms)", false, 1},
		{"failures", "failed calls", false, 0},
		{"delivered", "deliveries (accepted calls × members, warm-up included)", true, 0},
		{"lost", "lost deliveries", false, 0},
		{"duplicates", "duplicated deliveries", false, 0},
		{"loadgen_cpu_per_call_us", "load generator CPU per call (µs)", false, 1},
		{"loadgen_cpu_pct", "load generator CPU use (% of one core)", false, 0},
	}
	clusterMetrics = []metric{
		{"delivered_per_s", "delivered per second", true, 0},
		{"cpu_per_delivery_us", "server CPU per delivery, both nodes (µs)", false, 1},
		{"p50_ms", "end-to-end latency p50 (ms)", false, 1},
		{"p99_ms", "end-to-end latency p99 (ms)", false, 1},
		{"max_ms", "end-to-end latency max (ms)", false, 0},
		{"lost", "lost messages (member × message)", false, 0},
		{"lost_node2", "of which on node B (relayed through Redis)", false, 0},
		{"delivered_node2", "delivered to members on node B", true, 0},
		{"out_of_order", "out-of-order messages", false, 0},
		{"duplicates", "duplicated messages", false, 0},
		{"loadgen_cpu_per_delivery_us", "load generator CPU per delivery (µs)", false, 1},
	}
	relayKeyedMetrics = []metric{
		{"delivered_per_s", "relay:message delivered per second", true, 0},
		{"naive_per_s", "what a naive relay must deliver per second (publishes × other players)", false, 0},
		{"delivered_pct", "delivered, % of the naive relay's messages", false, 1},
		{"tick_coverage_pct", "Switchboard: deliveries, % of one per player, member and tick", true, 1},
		{"p50_ms", "publish → delivery latency p50 (ms)", false, 1},
		{"p99_ms", "publish → delivery latency p99 (ms)", false, 1},
		{"max_ms", "publish → delivery latency max (ms)", false, 0},
		{"drain_ms", "behind at the end: last delivery after the last publish (ms)", false, 0},
		{"final_missing", "(member, player) pairs without the player's last value", false, 0},
		{"out_of_order", "values older than one received before", false, 0},
		{"bytes_per_s", "bytes written by the server per second", false, 0},
		{"cpu_per_publish_us", "server CPU per publish (µs)", false, 1},
		{"server_cpu_pct", "server CPU use (% of one core)", false, 0},
		{"rss_max_kib", "server RSS, highest while publishing (KiB)", false, 0},
		{"rss_growth_kib", "server RSS growth while publishing (KiB)", false, 0},
		{"rss_late_growth_kib", "server RSS growth from the window's first half to its second (KiB; a backlog grows)", false, 0},
		{"publishes_per_s", "publishes per second (load generator)", true, 0},
		{"send_lag_max_ms", "load generator: latest publish behind its schedule (ms)", false, 1},
		{"loadgen_cpu_pct", "load generator CPU use (% of one core)", false, 0},
	}
	relayUnkeyedMetrics = []metric{
		{"delivered_per_s", "relay:message delivered per second", true, 0},
		{"cpu_per_delivery_us", "server CPU per delivery (µs)", false, 2},
		{"server_cpu_pct", "server CPU use (% of one core)", false, 0},
		{"p50_ms", "publish → delivery latency p50 (ms)", false, 1},
		{"p99_ms", "publish → delivery latency p99 (ms)", false, 1},
		{"max_ms", "publish → delivery latency max (ms)", false, 0},
		{"drain_ms", "behind at the end: last delivery after the last publish (ms)", false, 0},
		{"lost", "lost messages (member × message)", false, 0},
		{"out_of_order", "out-of-order messages", false, 0},
		{"duplicates", "duplicated messages", false, 0},
		{"bytes_per_s", "bytes written by the server per second", false, 0},
		{"rss_max_kib", "server RSS, highest while publishing (KiB)", false, 0},
		{"publishes_per_s", "publishes per second (load generator)", true, 0},
		{"loadgen_cpu_pct", "load generator CPU use (% of one core)", false, 0},
	}
	hookMetrics = []metric{
		{"acks_per_s", "forwarded events answered per second", true, 0},
		{"rate_pct", "answered per second, % of the target", true, 1},
		{"cpu_per_ack_us", "server CPU per forwarded event (µs)", false, 1},
		{"server_cpu_pct", "server CPU use (% of one core)", false, 0},
		{"p50_ms", "client latency p50: event sent → backend's ack arrived (ms)", false, 2},
		{"p99_ms", "client latency p99 (ms)", false, 2},
		{"backend_p50_ms", "the backend's own time p50 (ms)", false, 3},
		{"added_p50_ms", "latency the hook adds over the backend's own time, p50 (ms)", false, 2},
		{"added_p90_ms", "latency the hook adds, p90 (ms)", false, 2},
		{"added_p99_ms", "latency the hook adds, p99 (ms)", false, 2},
		{"max_ms", "client latency max (ms)", false, 1},
		{"lost", "events never answered", false, 0},
		{"out_of_order", "acks out of order", false, 0},
		{"send_lag_max_ms", "load generator: latest send behind its schedule (ms)", false, 2},
	}
	churnMetrics = []metric{
		{"cycles_per_s", "cycles per second", true, 0},
		{"failures", "failed cycles", false, 0},
		{"cpu_per_cycle_us", "server CPU per cycle (µs)", false, 0},
		{"goroutines_before", "server goroutines before", false, 0},
		{"goroutines_after", "server goroutines after", false, 0},
		{"rss_before_kib", "server RSS before (KiB)", false, 0},
		{"rss_after_kib", "server RSS after (KiB)", false, 0},
	}
)

// The API emit case's room and load: small enough that the ten deliveries of a call do not
// dominate its cost, enough calls in flight to keep a one-core server busy.
const (
	emitMembers  = 10
	emitInFlight = 16
)

// The fixed-rate echo case: the rate issue 18 names, from as many clients as the closed-loop echo.
const (
	fixedRate    = 10000
	fixedClients = 50
)

// The backend hook case of issue 19: as many sockets as the echo cases, a rate a one-core node
// forwards with room to spare (every event is an HTTP request to the backend and its answer).
const (
	hookRate    = 2000
	hookClients = 50
	hookSecret  = "bench-hook-secret"
)

// hookNodeWould is what the report says in place of a Node column for the hook case.
const hookNodeWould = "Node's Socket.IO has no hooks. The same needs, in the Node server, a handler for every event that " +
	"POSTs it to the backend (fetch/undici with keep-alive), signs it (crypto.createHmac), keeps a queue per socket so that a " +
	"socket's events reach the backend one at a time and in order, bounds that queue (rate_limited) and the requests in flight, " +
	"times them out, and applies the answer (join, leave, emit, ack, disconnect): an app of its own on top of socket.io, " +
	"whose figures would be that code's, not Socket.IO's"

// The relay cases of issue 20: players in one room, the keyed publish rate of a 60 Hz game, the
// unkeyed path at 1,000 publishes a second in all, and Switchboard's tick.
const (
	relayPlayers      = 50
	relayKeyedRate    = 60
	relayUnkeyedTotal = 1000
	relayTick         = 50 * time.Millisecond
)

// defaultCases are the sizes; quick shrinks them for iteration.
func defaultCases(quick bool) []benchCase {
	connectSizes, pollingSizes, echoClients, echoFor := []int{2000, 10000}, []int{5000}, 50, 10*time.Second
	apiSizes, chatSizes, publishFor, rate, cycles := []int{1000, 5000}, []int{1000}, 10*time.Second, 10, 5000
	joinSizes := []int{1000}
	emitFor, emitWarmup := 10*time.Second, 2*time.Second
	clusterSizes, msgpackSizes := []int{1000}, []int{1000}
	relayN, relayFor := relayPlayers, 10*time.Second
	if quick {
		relayN, relayFor = 20, 3*time.Second
		connectSizes, pollingSizes, echoFor = []int{1000}, []int{500}, 3*time.Second
		apiSizes, chatSizes, publishFor, cycles = []int{500}, []int{500}, 3*time.Second, 1000
		joinSizes = []int{300}
		emitFor, emitWarmup, clusterSizes, msgpackSizes = 3*time.Second, time.Second, []int{500}, []int{500}
	}
	var cs []benchCase
	for _, n := range connectSizes {
		cs = append(cs, benchCase{
			ID: "connect-" + strconv.Itoa(n), Title: "connect " + thousands(n), Scenario: "connect", Pprof: true,
			What: fmt.Sprintf("%s websocket clients connect to `/`, 50 attempts in flight; idle RSS and goroutines read 2 s after the last one connected", thousands(n)),
			Args: []string{"-n", strconv.Itoa(n), "-concurrency", "50"}, Metrics: connectMetrics,
		})
	}
	for _, n := range pollingSizes {
		cs = append(cs, benchCase{
			ID: fmt.Sprintf("connect-polling-%d", n), Title: fmt.Sprintf("connect %s stock socket.io-client sockets, polling then websocket", thousands(n)),
			Scenario: "connect-polling", Pprof: true, NodeClients: true,
			What: fmt.Sprintf("%s sockets of the npm socket.io-client 4.8.4 with its default transports (long-polling, then the websocket upgrade), "+
				"from one Node process (`bench/node/clients.js`) on the load generator's core, 50 in flight, connect to `/`, each `subscribe`s to one room with an ack and idles; "+
				"a socket counts once it is connected, acked and upgraded; idle RSS and goroutines read 5 s after the last one", thousands(n)),
			Args: []string{"-n", strconv.Itoa(n), "-concurrency", "50", "-drivers", "1"}, Metrics: pollingMetrics,
		})
	}
	cs = append(cs, benchCase{
		ID: "echo", Title: fmt.Sprintf("echo, %d clients", echoClients), Scenario: "echo",
		What: fmt.Sprintf("%d clients each send `subscribe` {\"rooms\":[\"bench\"]} with an ack and the next one when the ack arrives; 1 s warm-up, then %s measured", echoClients, echoFor),
		Args: []string{"-n", strconv.Itoa(echoClients), "-duration", echoFor.String(), "-warmup", "1s"}, Metrics: echoMetrics,
	})
	cs = append(cs, benchCase{
		ID: "echo-msgpack", Title: fmt.Sprintf("echo, %d msgpack clients", echoClients), Scenario: "echo", Msgpack: true,
		What: fmt.Sprintf("the echo case with socket.io-msgpack-parser's framing (one binary websocket frame per packet); Node runs with `parser: socket.io-msgpack-parser`, Switchboard with its default `--parser auto`; %d clients, 1 s warm-up, then %s measured", echoClients, echoFor),
		Args: []string{"-parser", "msgpack", "-n", strconv.Itoa(echoClients), "-duration", echoFor.String(), "-warmup", "1s"}, Metrics: echoMetrics,
	})
	cs = append(cs, benchCase{
		ID: fmt.Sprintf("echo-fixed-%d", fixedRate), Title: fmt.Sprintf("echo at a fixed %s acks/s, %d clients", thousands(fixedRate), fixedClients), Scenario: "echo-fixed",
		What: fmt.Sprintf("%d clients send `subscribe` {\"rooms\":[\"bench\"]} with an ack in an open loop: %s requests a second in all, on a fixed schedule round-robin over the clients, never waiting for an answer; 1 s warm-up, then %s measured",
			fixedClients, thousands(fixedRate), echoFor),
		Args:    []string{"-n", strconv.Itoa(fixedClients), "-rate", strconv.Itoa(fixedRate), "-duration", echoFor.String(), "-warmup", "1s"},
		Metrics: echoFixedMetrics,
	})
	hookFor, hookRateN := echoFor, hookRate
	if quick {
		hookRateN = 500
	}
	cs = append(cs, benchCase{
		ID: fmt.Sprintf("hook-event-%d", hookClients), Title: fmt.Sprintf("backend hook: events forwarded at a fixed %s a second, %d clients", thousands(hookRateN), hookClients),
		Scenario: "hook-fixed", HookBackend: true, NodeWould: hookNodeWould,
		What: fmt.Sprintf("%d clients send `%s` {\"n\":1} on `/` with an ack in an open loop, %s a second in all on a fixed schedule round-robin over the clients (as echo-fixed); "+
			"no built-in handler takes it, so Switchboard (`--hook-url`) POSTs each to the app backend's event hook, whose answer is the ack. "+
			"The backend (`loadgen -hook-backend`: reads the body, checks the signature, answers `{\"ack\":[{\"data\":{\"svc\":<its own time, ns>}}]}`) "+
			"runs on the load generator's core; 1 s warm-up, then %s measured. The latency the hook adds = client latency − the backend's own time, per event: "+
			"Switchboard's work both ways and the loopback HTTP round trip", hookClients, "bench:hook", thousands(hookRateN), hookFor),
		Args:    []string{"-n", strconv.Itoa(hookClients), "-rate", strconv.Itoa(hookRateN), "-duration", hookFor.String(), "-warmup", "1s"},
		Metrics: hookMetrics,
	})
	for _, n := range apiSizes {
		cs = append(cs, benchCase{
			ID: fmt.Sprintf("fanout-api-%d", n), Title: fmt.Sprintf("fan-out through the HTTP API, %s members", thousands(n)), Scenario: "fanout",
			What: fmt.Sprintf("%s clients `subscribe` to one room on `/`; a backend POSTs /api/v1/emit (event `tick`) to it %d times a second for %s", thousands(n), rate, publishFor),
			Args: []string{"-via", "api", "-n", strconv.Itoa(n), "-rate", strconv.Itoa(rate), "-duration", publishFor.String()}, Metrics: fanoutMetrics,
		})
	}
	for _, n := range msgpackSizes {
		cs = append(cs, benchCase{
			ID: fmt.Sprintf("fanout-api-msgpack-%d", n), Title: fmt.Sprintf("fan-out through the HTTP API, %s msgpack members", thousands(n)), Scenario: "fanout", Msgpack: true,
			What: fmt.Sprintf("the API fan-out case with socket.io-msgpack-parser's framing: %s msgpack clients `subscribe` to one room on `/`; a backend POSTs /api/v1/emit (event `tick`) to it %d times a second for %s; Node runs with `parser: socket.io-msgpack-parser`, Switchboard with its default `--parser auto`", thousands(n), rate, publishFor),
			Args: []string{"-parser", "msgpack", "-via", "api", "-n", strconv.Itoa(n), "-rate", strconv.Itoa(rate), "-duration", publishFor.String()}, Metrics: fanoutMetrics,
		})
	}
	for _, n := range chatSizes {
		cs = append(cs, benchCase{
			ID: fmt.Sprintf("fanout-chat-%d", n), Title: fmt.Sprintf("fan-out through a client's chat:send, %s members", thousands(n)), Scenario: "fanout",
			What: fmt.Sprintf("%s clients `chat:join` one room on `/chat`; one more member sends `chat:send` (acked) %d times a second for %s; every member receives `chat:message`", thousands(n), rate, publishFor),
			Args: []string{"-via", "chat", "-n", strconv.Itoa(n), "-rate", strconv.Itoa(rate), "-duration", publishFor.String()}, Metrics: fanoutMetrics,
		})
	}
	for _, n := range joinSizes {
		cs = append(cs, benchCase{
			ID: fmt.Sprintf("chat-join-%d", n), Title: fmt.Sprintf("%s members joining one chat room", thousands(n)), Scenario: "chat-join",
			What: fmt.Sprintf("%s anonymous clients connect to `/chat` (not measured), then each sends `chat:join` {\"room\":\"bench\"} once with an ack, 50 in flight; every join announces the joiner to the members already there (`chat:user-joined`)", thousands(n)),
			Args: []string{"-n", strconv.Itoa(n), "-concurrency", "50"}, Metrics: chatJoinMetrics,
		})
	}
	cs = append(cs, benchCase{
		ID: "api-emit", Title: fmt.Sprintf("HTTP API emit path, %d calls in flight", emitInFlight), Scenario: "api-emit",
		What: fmt.Sprintf("%d clients `subscribe` to one room on `/`; a backend keeps %d POST /api/v1/emit calls (event `tick`, to that room) in flight over %d keep-alive connections, each posting again as soon as the answer arrives; %s warm-up, then %s measured",
			emitMembers, emitInFlight, emitInFlight, emitWarmup, emitFor),
		Args:    []string{"-n", strconv.Itoa(emitMembers), "-inflight", strconv.Itoa(emitInFlight), "-duration", emitFor.String(), "-warmup", emitWarmup.String()},
		Metrics: apiEmitMetrics,
	})
	for _, n := range clusterSizes {
		cs = append(cs, benchCase{
			ID: fmt.Sprintf("fanout-redis-2x%d", n), Title: fmt.Sprintf("fan-out across two nodes on Redis, %s members", thousands(n)), Scenario: "fanout", Cluster: true,
			What: fmt.Sprintf("two nodes of each server share rooms through Redis pub/sub; %s clients `subscribe` to one room on `/`, %s on each node; a backend POSTs /api/v1/emit (event `tick`) to node A %d times a second for %s, so node B's members get every message through Redis",
				thousands(n), thousands(n/2), rate, publishFor),
			Args: []string{"-via", "api", "-n", strconv.Itoa(n), "-rate", strconv.Itoa(rate), "-duration", publishFor.String()}, Metrics: clusterMetrics,
		})
	}
	tick := "--relay-tick=" + relayTick.String()
	cs = append(cs, benchCase{
		ID: fmt.Sprintf("relay-keyed-%d", relayN), Title: fmt.Sprintf("relay: %d players, keyed positions at %d Hz", relayN, relayKeyedRate), Scenario: "relay",
		What: fmt.Sprintf("%d websocket players `relay:join` one room on `/relay`; each publishes a keyed position (`key` \"pos\", no ack) %d times a second for %s (%s publishes/s; a naive relay delivers %s messages/s) and receives the others'. "+
			"Switchboard runs with `%s`: each member gets at most one value per player per tick, the latest; Node's socket.io runs the naive relay (`socket.to(room).emit` per publish, bench/node/server.js)",
			relayN, relayKeyedRate, relayFor, thousands(relayN*relayKeyedRate), thousands(relayN*relayKeyedRate*(relayN-1)), tick),
		Args:  []string{"-keyed", "-tick", relayTick.String(), "-n", strconv.Itoa(relayN), "-rate", strconv.Itoa(relayKeyedRate), "-duration", relayFor.String()},
		Flags: []string{tick}, Metrics: relayKeyedMetrics,
	})
	cs = append(cs, benchCase{
		ID: fmt.Sprintf("relay-unkeyed-%d", relayN), Title: fmt.Sprintf("relay: %d players, unkeyed messages, %s publishes/s", relayN, thousands(relayUnkeyedTotal)), Scenario: "relay",
		What: fmt.Sprintf("%d websocket players `relay:join` one room on `/relay`; each publishes an unkeyed message (no ack) %d times a second for %s (%s publishes/s in all), every one delivered to every other player in order, on both servers as `socket.to(room).emit`",
			relayN, relayUnkeyedTotal/relayN, relayFor, thousands(relayUnkeyedTotal)),
		Args:  []string{"-n", strconv.Itoa(relayN), "-rate", strconv.Itoa(relayUnkeyedTotal / relayN), "-duration", relayFor.String()},
		Flags: []string{tick}, Metrics: relayUnkeyedMetrics,
	})
	cs = append(cs, benchCase{
		ID: "churn", Title: fmt.Sprintf("churn, %s cycles", thousands(cycles)), Scenario: "churn", Pprof: true,
		What: fmt.Sprintf("%s cycles of connect → `subscribe` (acked) → disconnect, 50 at a time, after 50 warm-up cycles; \"after\" is read once the server's goroutines are back (≤ 10 s) plus 1 s", thousands(cycles)),
		Args: []string{"-cycles", strconv.Itoa(cycles), "-concurrency", "50"}, Metrics: churnMetrics,
	})
	return cs
}

func filterCases(cs []benchCase, ids []string) []benchCase {
	var out []benchCase
	for _, c := range cs {
		if slices.Contains(ids, c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// thousands formats n with comma separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
