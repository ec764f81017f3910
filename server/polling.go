package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// pollingCloseGrace is how long a "close" packet POSTed while no long-polling GET is pending
// waits for that GET. A client sends its close with a poll outstanding, but the two requests
// travel on different connections and the server may see the POST first; the GET must still be
// answered with a noop (Engine.IO v4, "close"), not with a 400 for a session already gone.
const pollingCloseGrace = time.Second

// pollingBuilder builds the HTTP long-polling transport with two protocol fixes over the
// library's (v3.0.6):
//   - a payload that does not decode closes the session ("parse error"), as in Node's
//     Engine.IO; the library dropped it and kept the session open;
//   - a "close" that overtakes the pending GET waits for it (see pollingCloseGrace).
//
// Everything else is the library's polling transport, which it embeds.
type pollingBuilder struct {
	transports.PollingBuilder
	upgrades *upgrades
}

var _ transports.TransportCtor = (*pollingBuilder)(nil)

// New implements transports.TransportCtor.
func (b *pollingBuilder) New(ctx *types.HttpContext) transports.Transport {
	if ctx.Query().Has("j") { // JSONP keeps the library's transport
		return b.PollingBuilder.New(ctx)
	}
	p := &polling{Polling: transports.MakePolling(), upgrades: b.upgrades}
	p.Prototype(p)
	p.Construct(ctx)
	return p
}

type polling struct {
	transports.Polling
	upgrades *upgrades
	pings    atomic.Pointer[pingWatch] // set once the engine has the session (heartbeat.go)

	closeRequested atomic.Bool
	closeOnce      sync.Once
	closeTimer     atomic.Pointer[time.Timer]
}

// OnData decodes a POSTed payload. Packets before a malformed one are delivered; the malformed
// one becomes an error packet, which makes the Engine.IO socket close with "parse error".
func (p *polling) OnData(data types.BufferInterface) {
	packets, err := p.Parser().DecodePayload(data)
	for _, pkt := range packets {
		if pkt.Type == packet.CLOSE {
			p.requestClose()
			return
		}
		p.OnPacket(pkt)
	}
	if err != nil || len(packets) == 0 {
		p.OnPacket(&packet.Packet{Type: packet.ERROR})
	}
}

// OnRequest reads a POST body whole before the library sees it: a body cut short by the client
// closes the session, as in Node (the library decoded whatever had arrived), and a body over the
// payload limit gets 413 also without a Content-Length (the library cut it at the limit and
// decoded the rest). It also answers a GET that arrives after the client's close with a noop,
// then closes; it ends a session whose ping timeout has passed (heartbeat.go, pingWatch) and holds
// a GET that arrives while an upgrade packet is being read (upgrade.go).
func (p *polling) OnRequest(ctx *types.HttpContext) {
	if req := ctx.Request(); ctx.Method() == http.MethodPost && req.ContentLength <= p.MaxHttpBufferSize() && req.Body != nil {
		body, err := io.ReadAll(io.LimitReader(req.Body, p.MaxHttpBufferSize()+1))
		_ = req.Body.Close()
		switch {
		case err != nil: // the client went away mid-body: the session ends, as for a cut GET
			p.OnError("data request connection closed prematurely", err)
			_ = ctx.SetStatusCode(http.StatusBadRequest)
			_, _ = ctx.Write(nil)
			return
		case int64(len(body)) > p.MaxHttpBufferSize():
			_ = ctx.SetStatusCode(http.StatusRequestEntityTooLarge)
			_, _ = ctx.Write(nil)
			return
		}
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	if ctx.Method() == http.MethodGet {
		if w := p.pings.Load(); w != nil && w.expired() {
			refuseUnknownSession(ctx) // what the GET would get a moment later
			return
		}
		p.upgrades.await(ctx.Query().Peek("sid")) // upgrade.go
	}
	p.Polling.OnRequest(ctx)
	if ctx.Method() == http.MethodGet && p.closeRequested.Load() {
		p.closeNow()
	}
}

// requestClose closes at once when a GET is pending (the library answers it with a noop), else
// when the GET arrives or the grace period ends.
func (p *polling) requestClose() {
	p.closeRequested.Store(true)
	if p.Writable() {
		p.closeNow()
		return
	}
	p.closeTimer.Store(time.AfterFunc(pollingCloseGrace, p.closeNow))
}

func (p *polling) closeNow() {
	p.closeOnce.Do(func() {
		if t := p.closeTimer.Load(); t != nil {
			t.Stop()
		}
		p.OnClose()
	})
}

// engineTransports are the transports every Engine.IO server of this node offers: our polling
// transport and our websocket one, which share what they know of upgrades in progress.
func engineTransports(websocket *websocketBuilder, ups *upgrades) *types.Set[transports.TransportCtor] {
	websocket.upgrades = ups
	return types.NewSet[transports.TransportCtor](&pollingBuilder{upgrades: ups}, websocket)
}

// refuseUnknownSession answers as the engine answers a request for a session it does not know
// (server.go, abortRequest with UNKNOWN_SID).
func refuseUnknownSession(ctx *types.HttpContext) {
	body, _ := json.Marshal(types.CodeMessage{Code: engine.UNKNOWN_SID.Code, Message: engine.UNKNOWN_SID.Message})
	ctx.ResponseHeaders().Set("Content-Type", "application/json")
	_ = ctx.SetStatusCode(http.StatusBadRequest)
	_, _ = ctx.Write(body)
}
