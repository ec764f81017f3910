package server

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/engineio"
)

// adminStats is the payload of server_stats, field for field what Node's instrument() sends.
type adminStats struct {
	ServerID string `json:"serverId"`
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	// Uptime is the node's uptime in seconds.
	Uptime float64 `json:"uptime"`
	// ClientsCount is this node's Engine.IO connections (admin UIs' included, as in Node);
	// PollingClientsCount those on long-polling now.
	ClientsCount        int `json:"clientsCount"`
	PollingClientsCount int `json:"pollingClientsCount"`
	// AggregatedEvents are the connections, disconnections, packets and bytes since the last
	// server_stats.
	AggregatedEvents []adminAggregated `json:"aggregatedEvents"`
	// Namespaces are this node's namespaces, /admin left out, with their local socket counts.
	Namespaces []adminNamespaceStats `json:"namespaces"`
}

// adminAggregated is one of server_stats' aggregatedEvents: a count of type (subType: the close
// reason of rawDisconnection) in the second that starts at Timestamp (Unix ms).
type adminAggregated struct {
	Timestamp int64  `json:"timestamp"`
	Type      string `json:"type"`
	SubType   string `json:"subType,omitempty"`
	Count     int64  `json:"count"`
}

type adminNamespaceStats struct {
	Name         string `json:"name"`
	SocketsCount int    `json:"socketsCount"`
}

// adminTraffic counts what server_stats' aggregatedEvents report, between two server_stats.
// The counters are hit on every message of every connection: atomics, no lock, but for the
// close reasons (a close is rare next to a message).
type adminTraffic struct {
	conns                atomic.Int64
	packetsIn, bytesIn   atomic.Int64
	packetsOut, bytesOut atomic.Int64

	mu     sync.Mutex
	closes map[string]int64 // by reason
}

func (t *adminTraffic) opened(*engineio.Conn) { t.conns.Add(1) }

func (t *adminTraffic) closed(_ *engineio.Conn, reason string) {
	t.mu.Lock()
	if t.closes == nil {
		t.closes = map[string]int64{}
	}
	t.closes[reason]++
	t.mu.Unlock()
}

func (t *adminTraffic) add(in bool, bytes int) {
	if in {
		t.packetsIn.Add(1)
		t.bytesIn.Add(int64(bytes))
		return
	}
	t.packetsOut.Add(1)
	t.bytesOut.Add(int64(bytes))
}

// take returns the counts since the last take, stamped with the second of now (Node stamps
// each one with its own second; the UI adds them up by 10 s), and starts over.
func (t *adminTraffic) take(now time.Time) []adminAggregated {
	ts := now.Truncate(time.Second).UnixMilli()
	var out []adminAggregated
	for _, c := range []struct {
		typ string
		n   *atomic.Int64
	}{
		{"rawConnection", &t.conns},
		{"packetsIn", &t.packetsIn}, {"bytesIn", &t.bytesIn},
		{"packetsOut", &t.packetsOut}, {"bytesOut", &t.bytesOut},
	} {
		if n := c.n.Swap(0); n > 0 {
			out = append(out, adminAggregated{Timestamp: ts, Type: c.typ, Count: n})
		}
	}
	t.mu.Lock()
	closes := t.closes
	t.closes = nil
	t.mu.Unlock()
	for reason, n := range closes {
		out = append(out, adminAggregated{Timestamp: ts, Type: "rawDisconnection", SubType: reason, Count: n})
	}
	if out == nil {
		out = []adminAggregated{}
	}
	return out
}

// statsLoop broadcasts server_stats at once and then every adminStatsInterval, until close; in
// development mode it also reports the sockets that upgraded to websocket meanwhile.
func (a *admin) statsLoop() {
	t := time.NewTicker(adminStatsInterval)
	defer t.Stop()
	for {
		a.emitStats(time.Now())
		if a.dev {
			a.reportUpgrades()
		}
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// stats is this node's server_stats at now.
func (a *admin) stats(now time.Time) adminStats {
	st := adminStats{
		ServerID:         a.serverID,
		Hostname:         a.hostname,
		PID:              a.pid,
		Uptime:           now.Sub(a.s.started).Seconds(),
		AggregatedEvents: a.traffic.take(now),
		Namespaces:       []adminNamespaceStats{},
	}
	conns := a.s.io.Engine().Conns()
	st.ClientsCount = len(conns)
	for _, c := range conns {
		if c.Transport() == "polling" {
			st.PollingClientsCount++
		}
	}
	for _, n := range a.productNamespaces() {
		st.Namespaces = append(st.Namespaces, adminNamespaceStats{Name: n.Name(), SocketsCount: n.Len()})
	}
	return st
}

// emitStats broadcasts this node's server_stats to every admin socket of the cluster.
func (a *admin) emitStats(now time.Time) {
	if err := a.nsp.Emit("server_stats", a.stats(now)); err != nil {
		// The adapter logs the outage itself; the next stats follow in 2 s.
		a.log.Debug().Err(err).Msg("server_stats not broadcast")
	}
}
