package hooks

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Hook names: the path after Config.URL and the "hook" label.
const (
	hookConnect = "connect"
	hookEvent   = "event"
	hookEvents  = "events"
)

var hookNames = []string{hookConnect, hookEvent, hookEvents}

// Outcomes of a request (see the package doc): a closed set, so the series stay few.
const (
	outcomeOK          = "ok"
	outcomeRefused     = "refused"
	outcomeUnavailable = "unavailable"
	outcomeUnreachable = "unreachable"
	outcomeTimeout     = "timeout"
	outcomeCanceled    = "canceled"
	outcomeInvalid     = "invalid"
)

var outcomes = []string{outcomeOK, outcomeRefused, outcomeUnavailable, outcomeUnreachable, outcomeTimeout, outcomeCanceled, outcomeInvalid}

// Reasons an event of the webhook is dropped.
const (
	dropOverflow = "overflow" // the queue was full: the oldest went
	dropClosed   = "closed"   // Close gave up with it queued, or it came after Close
)

// metrics are the hooks' series. The request counters are made for every hook and outcome up
// front, so a dashboard sees zeros rather than no series.
type metrics struct {
	requests  map[string]map[string]prometheus.Counter
	duration  map[string]prometheus.Observer
	depth     prometheus.Gauge
	dropped   map[string]prometheus.Counter
	delivered prometheus.Counter
	rejected  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "switchboard", "hook"
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "requests_total",
		Help: "Requests to the app backend, by hook (connect, event, events) and outcome (ok, refused, unavailable, unreachable, timeout, canceled, invalid).",
	}, []string{"hook", "outcome"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
		Help:    "Latency of requests to the app backend, every outcome, by hook.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"hook"})
	depth := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "events_queued",
		Help: "Events of the events webhook not yet acknowledged: waiting, and the batch being delivered.",
	})
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "events_dropped_total",
		Help: "Events of the events webhook dropped, by reason: overflow (the queue was full, the oldest went) or closed (at shutdown).",
	}, []string{"reason"})
	delivered := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "events_delivered_total",
		Help: "Events of the events webhook acknowledged by the backend.",
	})
	rejected := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "forwards_rejected_total",
		Help: "Client events not forwarded because their socket already had the most events waiting (answered rate_limited).",
	})
	if reg != nil {
		for _, c := range []prometheus.Collector{requests, duration, depth, dropped, delivered, rejected} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	m := &metrics{
		requests:  make(map[string]map[string]prometheus.Counter, len(hookNames)),
		duration:  make(map[string]prometheus.Observer, len(hookNames)),
		depth:     depth,
		dropped:   map[string]prometheus.Counter{dropOverflow: dropped.WithLabelValues(dropOverflow), dropClosed: dropped.WithLabelValues(dropClosed)},
		delivered: delivered,
		rejected:  rejected,
	}
	for _, h := range hookNames {
		m.requests[h] = make(map[string]prometheus.Counter, len(outcomes))
		for _, o := range outcomes {
			m.requests[h][o] = requests.WithLabelValues(h, o)
		}
		m.duration[h] = duration.WithLabelValues(h)
	}
	return m, nil
}

func (m *metrics) observe(hook, outcome string, d time.Duration) {
	m.requests[hook][outcome].Inc()
	m.duration[hook].Observe(d.Seconds())
}
