package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/adapters"
	"github.com/switchboard/switchboard/namespaces"
	"github.com/switchboard/switchboard/socketio"
)

// Event names of the contract. Metrics label events by these names only, everything else as
// "other", so a client inventing event names cannot blow up the number of series.
var (
	contractReceived = []string{"subscribe", "unsubscribe", "chat:join", "chat:leave", "chat:send", "chat:typing", "chat:history", "auth:refresh",
		"relay:join", "relay:leave", "relay:publish"}
	contractEmitted = []string{"chat:message", "chat:user-joined", "chat:user-left", "chat:typing", "auth:expired",
		"relay:message", "relay:user-joined", "relay:user-left"}
	// disconnectReasons are the reasons the library reports; anything else is "other".
	disconnectReasons = []string{
		"transport close", "transport error", "ping timeout", "parse error", "forced close",
		"forced server close", "server namespace disconnect", "client namespace disconnect",
		"server shutting down",
	}
	ackResults = []string{"ok", namespaces.CodeBadRequest, namespaces.CodeUnauthorized, namespaces.CodeForbidden,
		namespaces.CodeNotFound, namespaces.CodeRateLimited, namespaces.CodeUnavailable, namespaces.CodeInternal}
	httpMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
)

// otherLabel stands for every value outside a label's closed set.
const otherLabel = "other"

// Metrics owns the node's Prometheus registry (its own, never the global one) and every series
// Switchboard exports. Its methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	sockets       *prometheus.Desc
	socketsMu     sync.Mutex
	socketsOf     []*socketio.Namespace
	connects      *prometheus.CounterVec
	disconnects   *prometheus.CounterVec
	received      *prometheus.CounterVec
	emitted       *prometheus.CounterVec
	acksSent      *prometheus.CounterVec
	clientAcks    *prometheus.CounterVec
	ackTimeouts   *prometheus.CounterVec
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	adapterErrors *prometheus.CounterVec
	limited       *prometheus.CounterVec
	relayIn       *prometheus.CounterVec
	relayOut      prometheus.Counter
	relayGone     *prometheus.CounterVec

	// httpSeries caches the children of httpRequests and httpDuration by httpSeriesKey. Routes
	// are chi patterns, methods and statuses closed sets, so it stays small.
	httpSeries sync.Map // httpSeriesKey → httpSeries
}

// httpSeriesKey is the labels of one HTTP request's series.
type httpSeriesKey struct {
	route, method string
	status        int
}

// httpSeries is one route, method and status's request counter and latency histogram.
type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// NewMetrics builds the registry with Go runtime and process collectors and Switchboard's series.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "switchboard", Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.sockets = prometheus.NewDesc("switchboard_sockets_connected", "Sockets connected now, by namespace and current transport.",
		[]string{"namespace", "transport"}, nil)
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "switchboard", Name: "http_request_duration_seconds", Help: "Latency of HTTP requests outside Socket.IO, by route.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "method"})
	m.reg.MustRegister(socketsCollector{m}, m.httpDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.connects = counter("connects_total", "Sockets connected (recovered ones included), by namespace and transport.", "namespace", "transport")
	m.disconnects = counter("disconnects_total", "Sockets disconnected, by namespace and reason.", "namespace", "reason")
	m.received = counter("events_received_total", "Events received from clients, by namespace and contract event (others: other).", "namespace", "event")
	m.emitted = counter("events_emitted_total", "Events delivered to sockets (a broadcast counts once per recipient), by namespace and contract event.", "namespace", "event")
	m.acksSent = counter("acks_sent_total", "Acks sent for client requests, by namespace and result (ok or the error code).", "namespace", "result")
	m.clientAcks = counter("client_acks_total", "Acks received from clients for server emits that asked for one.", "namespace")
	m.ackTimeouts = counter("ack_timeouts_total", "Server emits with an ack that timed out before every client answered.", "namespace")
	m.httpRequests = counter("http_requests_total", "HTTP requests outside Socket.IO, by route pattern, method and status.", "route", "method", "status")
	m.adapterErrors = counter("adapter_errors_total", "Errors the adapter backend logged, by adapter.", "adapter")
	m.limited = counter("limit_rejections_total", "Handshakes, events and connections refused or dropped by a limit, by limit.", "limit")
	m.relayIn = counter("relay_published_total", "relay:publish messages accepted, by keyed (true: state, coalesced per tick) or not.", "keyed")
	m.relayOut = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "switchboard", Name: "relay_delivered_total",
		Help: "Keyed relay:message frames written to this node's sockets (unkeyed ones are counted in events_emitted_total)."})
	m.reg.MustRegister(m.relayOut)
	m.relayGone = counter("relay_coalesced_total", "Keyed relay values never delivered because a newer one replaced them, by stage (tick: on the publishing node; slow_reader: for one reader).", "stage")
	return m
}

// Metrics is the node's metrics, for the HTTP API to report ack outcomes (ObserveAcks).
func (s *Server) Metrics() *Metrics { return s.metrics }

// Registry is the registry /metrics serves, for tests and for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveAcks records the outcome of a server emit that asked clients for an ack (the HTTP API's
// ackTimeoutMs): received acks arrived in time; timedOut says the timeout fired first.
func (m *Metrics) ObserveAcks(nsp string, received int, timedOut bool) {
	m.clientAcks.WithLabelValues(nsp).Add(float64(received))
	if timedOut {
		m.ackTimeouts.WithLabelValues(nsp).Inc()
	}
}

// Limited counts one refusal or drop by the named limit.
func (m *Metrics) Limited(limit string) { m.limited.WithLabelValues(limit).Inc() }

// InstrumentHTTP is a chi middleware counting requests by route pattern and status. It reads the
// pattern after the handler ran, when chi has matched the whole route (mounted sub-routers
// included); a request no route matched is "unmatched".
func (m *Metrics) InstrumentHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		start := time.Now()
		next.ServeHTTP(ww, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil {
			if p := rc.RoutePattern(); p != "" {
				route = p
			}
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		hs := m.httpSeriesOf(httpSeriesKey{route, closedLabel(r.Method, httpMethods), status})
		hs.requests.Inc()
		hs.duration.Observe(time.Since(start).Seconds())
	})
}

// httpSeriesOf returns the series of k, resolved on first use: WithLabelValues on every request
// would hash the labels and lock both vectors again.
func (m *Metrics) httpSeriesOf(k httpSeriesKey) httpSeries {
	if hs, ok := m.httpSeries.Load(k); ok {
		return hs.(httpSeries)
	}
	hs, _ := m.httpSeries.LoadOrStore(k, httpSeries{
		requests: m.httpRequests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
		duration: m.httpDuration.WithLabelValues(k.route, k.method),
	})
	return hs.(httpSeries)
}

// adapterErrorHook counts every error the adapter logs: an error log is where an operator must
// act, so the count is what to alert on.
func (m *Metrics) adapterErrorHook(adapter string) zerolog.Hook {
	c := m.adapterErrors.WithLabelValues(adapter)
	return zerolog.HookFunc(func(_ *zerolog.Event, level zerolog.Level, _ string) {
		if level >= zerolog.ErrorLevel && level <= zerolog.PanicLevel {
			c.Inc()
		}
	})
}

// eventCounters are one namespace's counters for a closed set of event names, resolved once so
// that counting a delivery is a map lookup and an atomic add.
type eventCounters struct {
	known map[string]prometheus.Counter
	other prometheus.Counter
}

func newEventCounters(vec *prometheus.CounterVec, nsp string, names []string) eventCounters {
	ec := eventCounters{known: make(map[string]prometheus.Counter, len(names)), other: vec.WithLabelValues(nsp, otherLabel)}
	for _, n := range names {
		ec.known[n] = vec.WithLabelValues(nsp, n)
	}
	return ec
}

func (ec eventCounters) inc(name string) {
	if c, ok := ec.known[name]; ok {
		c.Inc()
		return
	}
	ec.other.Inc()
}

// nspMetrics are one namespace's counters, resolved once; the namespace's hooks (sockets.go)
// report to them.
type nspMetrics struct {
	m        *Metrics
	name     string
	received eventCounters
	emittedC eventCounters
	acks     map[string]prometheus.Counter
}

// namespace resolves the counters of the namespace name.
func (m *Metrics) namespace(name string) *nspMetrics {
	nm := &nspMetrics{m: m, name: name,
		received: newEventCounters(m.received, name, contractReceived),
		emittedC: newEventCounters(m.emitted, name, contractEmitted),
	}
	nm.acks = make(map[string]prometheus.Counter, len(ackResults)+1)
	for _, r := range ackResults {
		nm.acks[r] = m.acksSent.WithLabelValues(name, r)
	}
	nm.acks[otherLabel] = m.acksSent.WithLabelValues(name, otherLabel)
	return nm
}

// connected counts a socket that connected over transport.
func (nm *nspMetrics) connected(transport string) {
	nm.m.connects.WithLabelValues(nm.name, transport).Inc()
}

// emitted counts an event delivered to recipients sockets.
func (nm *nspMetrics) emitted(event string, recipients int) {
	c, ok := nm.emittedC.known[event]
	if !ok {
		c = nm.emittedC.other
	}
	c.Add(float64(recipients))
}

// disconnected counts a socket's disconnection by reason.
func (nm *nspMetrics) disconnected(reason string) {
	nm.m.disconnects.WithLabelValues(nm.name, closedLabel(reason, disconnectReasons)).Inc()
}

// watchSockets has the sockets_connected gauge count nsp's sockets by transport at scrape time.
func (m *Metrics) watchSockets(nsp *socketio.Namespace) {
	m.socketsMu.Lock()
	m.socketsOf = append(m.socketsOf, nsp)
	m.socketsMu.Unlock()
}

// socketsCollector reports sockets_connected: counted when scraped, so that a socket moving from
// long-polling to websocket needs no bookkeeping.
type socketsCollector struct{ m *Metrics }

func (c socketsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.sockets }

func (c socketsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.socketsMu.Lock()
	nsps := append([]*socketio.Namespace(nil), c.m.socketsOf...)
	c.m.socketsMu.Unlock()
	for _, nsp := range nsps {
		counts := map[string]int{"polling": 0, "websocket": 0}
		for _, s := range nsp.Sockets() {
			if s.Connected() {
				counts[s.Transport()]++
			}
		}
		for tr, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.m.sockets, prometheus.GaugeValue, float64(n), nsp.Name(), tr)
		}
	}
}

// ackResult is "ok" for a {"data"} ack and the error code for an {"error"} one.
func ackResult(args []any) string {
	if len(args) == 0 {
		return otherLabel
	}
	if r, ok := args[0].(namespaces.Reply); ok { // the namespaces' own acks
		if code := r.ReplyCode(); code != "" {
			return closedLabel(code, ackResults)
		}
		return "ok"
	}
	reply, ok := args[0].(map[string]any)
	if !ok {
		return otherLabel
	}
	if _, ok := reply["data"]; ok {
		return "ok"
	}
	switch e := reply["error"].(type) {
	case *namespaces.Error:
		return closedLabel(e.Code, ackResults)
	case map[string]any:
		code, _ := e["code"].(string)
		return closedLabel(code, ackResults)
	}
	return otherLabel
}

// closedLabel is v when it is one of allowed, else "other".
func closedLabel(v string, allowed []string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return otherLabel
}

// watchBackend exports the health of a backend that depends on Redis: whether it is reachable,
// how many outages it had and how many commands failed. Read at scrape time.
func (m *Metrics) watchBackend(adapter string, b adapters.Backend) {
	if _, ok := b.Status(); !ok {
		return // nothing outside the process to watch
	}
	r := statusOf{b}
	labels := prometheus.Labels{"adapter": adapter}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "switchboard", Name: "adapter_up", ConstLabels: labels,
			Help: "1 while the adapter's Redis answers, 0 during an outage.",
		}, func() float64 {
			if r.Status().Redis == "down" {
				return 0
			}
			return 1
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "switchboard", Name: "adapter_outages_total", ConstLabels: labels,
			Help: "Redis outages the adapter has seen since the start.",
		}, func() float64 { return float64(r.Status().Outages) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "switchboard", Name: "adapter_redis_failures_total", ConstLabels: labels,
			Help: "Redis commands and dials of the adapter that failed.",
		}, func() float64 { return float64(r.Status().Failures) }),
	)
}

// statusOf reads a backend's Status for the metrics above.
type statusOf struct{ b adapters.Backend }

func (s statusOf) Status() adapters.Status {
	st, _ := s.b.Status()
	return st
}

// relay is the /relay namespace's observer.
func (m *Metrics) relay() namespaces.RelayObserver { return relayMetrics{m} }

type relayMetrics struct{ m *Metrics }

func (r relayMetrics) RelayPublished(keyed bool) {
	r.m.relayIn.WithLabelValues(strconv.FormatBool(keyed)).Inc()
}

func (r relayMetrics) RelayDelivered(n int) { r.m.relayOut.Add(float64(n)) }

func (r relayMetrics) RelayCoalesced(stage namespaces.RelayStage, n int) {
	r.m.relayGone.WithLabelValues(string(stage)).Add(float64(n))
}
