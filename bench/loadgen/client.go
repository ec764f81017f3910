package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Dialer opens Socket.IO connections over a websocket-only Engine.IO transport. It spreads
// connections over several loopback source addresses, because one source address runs out of
// ephemeral ports after ~28,000 connections (TIME_WAIT included) to one server port.
type Dialer struct {
	url     string
	sources []net.IP
	next    atomic.Uint64
	ws      websocket.Dialer
	// Parser is the parser its connections speak: ParserDefault (or empty) or ParserMsgpack.
	Parser string
}

// writePool shares write buffers between connections: most are idle at any moment.
var writePool = &sync.Pool{}

// NewDialer returns a Dialer for the server at addr (host:port) using sources loopback source
// addresses (127.0.0.2 …; 0 lets the kernel choose).
func NewDialer(addr string, sources int) *Dialer {
	d := &Dialer{
		url:     (&url.URL{Scheme: "ws", Host: addr, Path: "/socket.io/", RawQuery: "EIO=4&transport=websocket"}).String(),
		sources: SourceIPs(sources),
	}
	d.ws = websocket.Dialer{
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
		WriteBufferPool:  writePool,
		NetDialContext:   d.dialTCP,
	}
	return d
}

// msgpack reports whether the dialer's connections speak socket.io-msgpack-parser.
func (d *Dialer) msgpack() bool { return d.Parser == ParserMsgpack }

// Event pre-encodes an event for the dialer's parser (see NewEvent and NewMsgpackEvent).
func (d *Dialer) Event(nsp, event string, payload []byte) Event {
	if d.msgpack() {
		return NewMsgpackEvent(nsp, event, payload)
	}
	return NewEvent(nsp, event, payload)
}

// SourceIPs are the n loopback source addresses that connections are spread over: 127.0.1.3,
// 127.0.1.4, … (the Node client driver of the connect-polling scenario gets the same list).
func SourceIPs(n int) []net.IP {
	var ips []net.IP
	for i := range n {
		ips = append(ips, net.IPv4(127, 0, byte(1+(i+1)/250), byte(2+(i+1)%250)))
	}
	return ips
}

func (d *Dialer) dialTCP(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: 15 * time.Second}
	if len(d.sources) > 0 {
		ip := d.sources[d.next.Add(1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return nd.DialContext(ctx, network, addr)
}

// Conn is one Socket.IO connection to one namespace. Frames are read by one goroutine (started by
// Start); writes may come from any goroutine.
type Conn struct {
	ws  *websocket.Conn
	nsp string
	// SID is the Socket.IO session id the server gave.
	SID string
	// Handshake is the time from the dial to the server's answer to the namespace CONNECT.
	Handshake time.Duration

	wmu sync.Mutex
	buf []byte

	mp *mpReader // the msgpack framing's decoder; nil for the default parser

	done chan struct{}
}

// ErrRefused is returned when the server answers the namespace connect with connect_error.
var ErrRefused = errors.New("loadgen: connect_error")

// Connect opens a websocket, reads the Engine.IO open packet and connects to nsp with auth (a JSON
// object or nil), returning once the server acknowledged the namespace.
func (d *Dialer) Connect(ctx context.Context, nsp string, auth []byte) (*Conn, error) {
	start := time.Now()
	ws, resp, err := d.ws.DialContext(ctx, d.url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: dial: %w", err)
	}
	c := &Conn{ws: ws, nsp: nsp, done: make(chan struct{})}
	if d.msgpack() {
		c.mp = newMPReader()
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	_, msg, err := ws.ReadMessage()
	if err != nil || len(msg) == 0 || msg[0] != eioOpen {
		_ = ws.Close()
		return nil, fmt.Errorf("loadgen: no Engine.IO open packet: %v", err)
	}
	if err := c.writeConnect(auth); err != nil {
		_ = ws.Close()
		return nil, err
	}
	for {
		kind, msg, err := ws.ReadMessage()
		if err != nil {
			_ = ws.Close()
			return nil, fmt.Errorf("loadgen: namespace connect: %w", err)
		}
		f, err := c.parse(kind, msg)
		if err != nil {
			continue
		}
		if f.EIO == eioPing {
			_ = c.Write([]byte{eioPong})
			continue
		}
		if f.EIO != eioMessage || f.Nsp != nsp {
			continue
		}
		switch f.SIO {
		case sioConnect:
			c.Handshake = time.Since(start)
			if c.mp != nil {
				c.SID = msgpackSID(f.Data)
			} else if i := bytes.Index(f.Data, []byte(`"sid":"`)); i >= 0 {
				rest := f.Data[i+7:]
				if j := bytes.IndexByte(rest, '"'); j >= 0 {
					c.SID = string(rest[:j])
				}
			}
			_ = ws.SetReadDeadline(time.Time{})
			return c, nil
		case sioConnectError:
			_ = ws.Close()
			if c.mp != nil {
				return nil, fmt.Errorf("%w: %s", ErrRefused, msgpackText(f.Data))
			}
			return nil, fmt.Errorf("%w: %s", ErrRefused, f.Data)
		}
	}
}

// Start runs the read loop in a goroutine: pings are answered, every Socket.IO packet of the
// connection's namespace goes to onFrame with its arrival time. f.Data is only valid during the call.
func (c *Conn) Start(onFrame func(f Frame, at time.Time)) {
	go func() {
		defer close(c.done)
		var buf bytes.Buffer
		for {
			kind, r, err := c.ws.NextReader()
			if err != nil {
				return
			}
			buf.Reset()
			if _, err := buf.ReadFrom(r); err != nil {
				return
			}
			at := time.Now()
			f, err := c.parse(kind, buf.Bytes())
			if err != nil {
				continue
			}
			switch f.EIO {
			case eioPing:
				_ = c.Write([]byte{eioPong})
			case eioMessage:
				if f.Nsp == c.nsp && onFrame != nil {
					onFrame(f, at)
				}
			case eioClose:
				return
			}
		}
	}()
}

// parse decodes a frame: text frames as ParseFrame does, binary ones (msgpack packets) with the
// connection's msgpack reader.
func (c *Conn) parse(kind int, b []byte) (Frame, error) {
	if kind == websocket.BinaryMessage {
		if c.mp == nil {
			return Frame{}, errFrame
		}
		return c.mp.parse(b)
	}
	return ParseFrame(b)
}

// writeConnect sends the namespace CONNECT in the connection's framing.
func (c *Conn) writeConnect(auth []byte) error {
	if c.mp == nil {
		return c.Write(AppendConnect(nil, c.nsp, auth))
	}
	b, err := appendMsgpackPacket(nil, mpConnect, c.nsp, auth)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.BinaryMessage, b)
}

// Write sends one text frame.
func (c *Conn) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// Emit sends a pre-encoded event with ack id (none when id < 0).
func (c *Conn) Emit(ev Event, id int64) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.buf = ev.Append(c.buf[:0], id)
	kind := websocket.TextMessage
	if ev.binary {
		kind = websocket.BinaryMessage
	}
	return c.ws.WriteMessage(kind, c.buf)
}

// Close leaves the namespace (a clean, client-side disconnect: the server keeps no session to
// recover) and closes the websocket.
func (c *Conn) Close() {
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	if c.mp != nil {
		b, _ := appendMsgpackPacket(nil, mpDisconnect, c.nsp, nil)
		_ = c.ws.WriteMessage(websocket.BinaryMessage, b)
	} else {
		_ = c.ws.WriteMessage(websocket.TextMessage, AppendDisconnect(nil, c.nsp))
	}
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.wmu.Unlock()
	_ = c.ws.Close()
}

// Done is closed when the read loop ends.
func (c *Conn) Done() <-chan struct{} { return c.done }
