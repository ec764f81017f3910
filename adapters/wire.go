package adapters

// wire.go: the shapes Node's adapters put on Redis and what they accept back, shared by the
// classic, the sharded and the streams adapter (see doc.go), and socket.io-adapter's
// ClusterAdapter messages, which the sharded and the streams adapter both speak.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/socketio"
)

// wirePacket is a Socket.IO packet as adapters exchange it: type 2 (an event; binary travels as
// msgpack bin inside data, never as type 5), data = [event, ...args], nsp (classic only), id
// (only when a broadcast carries its own ack id).
type wirePacket struct {
	Type int    `json:"type"`
	Data []any  `json:"data"`
	Nsp  string `json:"nsp,omitempty"`
	ID   *int64 `json:"id,omitempty"`
}

// ClusterAdapter message types (socket.io-adapter 2.5 MessageType).
const (
	msgBroadcast         = 3
	msgSocketsJoin       = 4
	msgSocketsLeave      = 5
	msgDisconnectSockets = 6
	msgFetchSockets      = 7
	msgFetchResponse     = 8
	msgServerSideEmit    = 9
	msgSSEResponse       = 10
	msgBroadcastCount    = 11
	msgBroadcastAck      = 12
)

// clusterMessage is a ClusterAdapter message; uid and nsp come last, as Node writes them.
type clusterMessage struct {
	Type int    `json:"type"`
	Data any    `json:"data"`
	UID  string `json:"uid"`
	Nsp  string `json:"nsp"`
}

// The data of ClusterAdapter's requests. A broadcast's packet carries no nsp (the message
// does); the sharded adapter's carries no id either.

type broadcastData struct {
	Packet    wirePacket `json:"packet"`
	RequestID string     `json:"requestId,omitempty"`
	Opts      wireOpts   `json:"opts"`
}

type roomsData struct {
	Opts  wireOpts `json:"opts"`
	Rooms []string `json:"rooms"`
}

type disconnectData struct {
	Opts  wireOpts `json:"opts"`
	Close bool     `json:"close"`
}

type fetchData struct {
	Opts      wireOpts `json:"opts"`
	RequestID string   `json:"requestId"`
}

type sseData struct {
	RequestID string `json:"requestId,omitempty"`
	Packet    []any  `json:"packet"`
}

// remoteData is the data of a ClusterAdapter join, leave or disconnect, and its message type.
func remoteData(op remoteOp, opts socketio.BroadcastOptions, rooms []string, close bool) (int, any) {
	if op == remoteDisconnect {
		return msgDisconnectSockets, disconnectData{Opts: encodeOpts(opts), Close: close}
	}
	return msgSocketsJoin + int(op), roomsData{Opts: encodeOpts(opts), Rooms: nonNil(rooms)}
}

// wireOpts are broadcast options on the wire: rooms and except always arrays (Node reads them
// without a check), flags always an object with only the flags that are set (Node tests
// volatile === undefined).
type wireOpts struct {
	Rooms  []string  `json:"rooms"`
	Except []string  `json:"except"`
	Flags  wireFlags `json:"flags"`
}

type wireFlags struct {
	Volatile bool  `json:"volatile,omitempty"`
	Timeout  int64 `json:"timeout,omitempty"`
}

// wireRequestOpts are the options of a classic request (no flags, as Node sends them).
type wireRequestOpts struct {
	Rooms  []string `json:"rooms"`
	Except []string `json:"except"`
}

func encodeOpts(o socketio.BroadcastOptions) wireOpts {
	return wireOpts{Rooms: nonNil(o.Rooms), Except: dedup(o.Except), Flags: wireFlags{Volatile: o.Volatile}}
}

func encodeRequestOpts(o socketio.BroadcastOptions) wireRequestOpts {
	return wireRequestOpts{Rooms: nonNil(o.Rooms), Except: dedup(o.Except)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// dedup is except without repeats, as Node's [...new Set(except)].
func dedup(s []string) []string {
	out := make([]string, 0, len(s))
	for _, r := range s {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// decodeOpts reads options from the wire; rooms given as numbers (Node's socket.join(1)) become
// their decimal strings.
func decodeOpts(v any) socketio.BroadcastOptions {
	m, _ := v.(map[string]any)
	o := socketio.BroadcastOptions{Rooms: roomList(m["rooms"]), Except: roomList(m["except"])}
	if f, ok := m["flags"].(map[string]any); ok {
		o.Volatile, _ = f["volatile"].(bool)
	}
	return o
}

func roomList(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if r, ok := roomName(e); ok {
			out = append(out, r)
		}
	}
	return out
}

func roomName(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case json.Number:
		return t.String(), true
	}
	return "", false
}

// decodePacket reads a packet from the wire into what BroadcastLocal takes; ok is false for
// anything but an event with data.
func decodePacket(v any, nsp string) (*socketio.Packet, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	typ, _ := m["type"].(float64)
	if typ != float64(socketio.PacketEvent) && typ != float64(socketio.PacketBinaryEvent) {
		return nil, false
	}
	data, ok := m["data"].([]any)
	if !ok || len(data) == 0 {
		return nil, false
	}
	p := &socketio.Packet{Type: socketio.PacketEvent, Nsp: nsp, ID: -1, Data: data}
	if id, ok := m["id"].(float64); ok && id >= 0 && id == float64(int64(id)) {
		p.ID = int64(id)
	}
	return p, true
}

// wireData prepares event data for msgpack: json.RawMessage values (which the msgpack encoder
// would send as binary) become the values they hold.
func wireData(data []any) []any {
	var out []any
	for i, v := range data {
		w := wireValue(v)
		if out == nil {
			if sameValue(w, v) {
				continue
			}
			out = slices.Clone(data)
		}
		out[i] = w
	}
	if out == nil {
		return data
	}
	return out
}

func sameValue(a, b any) bool {
	switch a.(type) {
	case map[string]any, []any, json.RawMessage:
		return false
	}
	return true
}

func wireValue(v any) any {
	switch t := v.(type) {
	case json.RawMessage:
		var d any
		if json.Unmarshal(t, &d) != nil {
			return nil
		}
		return d
	case *json.RawMessage:
		if t == nil {
			return nil
		}
		return wireValue(*t)
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = wireValue(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = wireValue(e)
		}
		return s
	}
	return v
}

// firstArg is the first argument of a client's ack, the only one Node forwards across the
// cluster; ok is false when the ack had none (the key is then left out, as Node's undefined).
func firstArg(a *socketio.Args) (any, bool) {
	if a.Len() == 0 {
		return nil, false
	}
	v, err := a.Value(0)
	if err != nil {
		return nil, false
	}
	return v, true
}

// requestKey is a request id as it arrived, as the key of the request it answers.
func requestKey(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// decodeAny decodes a message: JSON when it starts with '{', msgpack otherwise (Node tells them
// apart the same way).
func decodeAny(b []byte) (any, error) {
	if len(b) > 0 && b[0] == '{' {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("adapters: decode json message: %w", err)
		}
		return v, nil
	}
	v, err := socketio.DecodeMsgpack(b)
	if err != nil {
		return nil, fmt.Errorf("adapters: decode msgpack message: %w", err)
	}
	return v, nil
}

// wireHandshake is Node's socket.handshake as fetchSockets answers carry it.
type wireHandshake struct {
	Headers map[string]string `json:"headers"`
	Time    string            `json:"time"`
	Address string            `json:"address"`
	XDomain bool              `json:"xdomain"`
	Secure  bool              `json:"secure"`
	Issued  int64             `json:"issued"`
	URL     string            `json:"url"`
	Query   map[string]any    `json:"query"`
	Auth    map[string]any    `json:"auth"`
}

// wireSocket is one socket of a fetchSockets answer. It never has a "server" key: Node takes an
// object with one for a local Socket.
type wireSocket struct {
	ID        string        `json:"id"`
	Handshake wireHandshake `json:"handshake"`
	Rooms     []string      `json:"rooms"`
	Data      any           `json:"data"`
}

// jsDateFormat is Date.prototype.toString in UTC, the form of Node's handshake.time.
const jsDateFormat = "Mon Jan 02 2006 15:04:05 GMT+0000 (Coordinated Universal Time)"

func encodeSocket(rs socketio.RemoteSocket) wireSocket {
	h := rs.Handshake
	wh := wireHandshake{
		Headers: h.Headers, Address: h.Address, XDomain: h.XDomain, Secure: h.Secure,
		URL: h.URL, Query: map[string]any{}, Auth: h.Auth,
	}
	if wh.Headers == nil {
		wh.Headers = map[string]string{}
	}
	if wh.Auth == nil {
		wh.Auth = map[string]any{}
	}
	if !h.Time.IsZero() {
		wh.Time = h.Time.UTC().Format(jsDateFormat)
		wh.Issued = h.Time.UnixMilli()
	}
	for k, vs := range h.Query {
		if len(vs) == 1 {
			wh.Query[k] = vs[0]
		} else {
			wh.Query[k] = vs
		}
	}
	rooms := make([]string, 0, len(rs.Rooms)+1)
	rooms = append(rooms, rs.ID) // Node's socket.rooms holds the socket's own id first
	for _, r := range rs.Rooms {
		if r != rs.ID {
			rooms = append(rooms, r)
		}
	}
	data := rs.Data
	if data == nil {
		data = map[string]any{} // Node's default socket.data
	}
	return wireSocket{ID: rs.ID, Handshake: wh, Rooms: rooms, Data: data}
}

// decodeSockets reads the sockets of a fetchSockets answer.
func decodeSockets(v any) []socketio.RemoteSocket {
	arr, _ := v.([]any)
	out := make([]socketio.RemoteSocket, 0, len(arr))
	for _, e := range arr {
		if rs, ok := decodeSocket(e); ok {
			out = append(out, rs)
		}
	}
	return out
}

// decodeSocket reads one socket of a fetchSockets answer; its rooms leave out its own id, as
// RemoteSocket.Rooms does.
func decodeSocket(v any) (socketio.RemoteSocket, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return socketio.RemoteSocket{}, false
	}
	id, ok := m["id"].(string)
	if !ok {
		return socketio.RemoteSocket{}, false
	}
	rs := socketio.RemoteSocket{ID: id, Data: m["data"]}
	for _, r := range roomList(m["rooms"]) {
		if r != id {
			rs.Rooms = append(rs.Rooms, r)
		}
	}
	h, _ := m["handshake"].(map[string]any)
	rs.Handshake.Address, _ = h["address"].(string)
	rs.Handshake.XDomain, _ = h["xdomain"].(bool)
	rs.Handshake.Secure, _ = h["secure"].(bool)
	rs.Handshake.URL, _ = h["url"].(string)
	rs.Handshake.Auth, _ = h["auth"].(map[string]any)
	if issued, ok := h["issued"].(float64); ok {
		rs.Handshake.Time = time.UnixMilli(int64(issued))
	} else if s, ok := h["time"].(string); ok {
		rs.Handshake.Time, _ = time.Parse(jsDateFormat, s)
	}
	if hs, ok := h["headers"].(map[string]any); ok {
		rs.Handshake.Headers = make(map[string]string, len(hs))
		for k, v := range hs {
			switch t := v.(type) {
			case string:
				rs.Handshake.Headers[k] = t
			case []any: // set-cookie and the like
				parts := make([]string, 0, len(t))
				for _, e := range t {
					if s, ok := e.(string); ok {
						parts = append(parts, s)
					}
				}
				rs.Handshake.Headers[k] = strings.Join(parts, ", ")
			}
		}
	}
	if q, ok := h["query"].(map[string]any); ok {
		rs.Handshake.Query = url.Values{}
		for k, v := range q {
			switch t := v.(type) {
			case string:
				rs.Handshake.Query.Add(k, t)
			case []any:
				for _, e := range t {
					if s, ok := e.(string); ok {
						rs.Handshake.Query.Add(k, s)
					}
				}
			}
		}
	}
	return rs, true
}

// reservedSSE are the names a serverSideEmit may not carry: Node's namespace would fire its own
// connection machinery for them (it refuses to send them but does not check what it receives).
var reservedSSE = map[string]bool{"connect": true, "connection": true, "new_namespace": true}

// errReservedSSE is a serverSideEmit of a reserved name.
var errReservedSSE = errors.New("adapters: reserved serverSideEmit event name")

func sseName(args []any) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	switch t := args[0].(type) {
	case string:
		return t, true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	}
	return "", false
}

// checkSSE refuses what a serverSideEmit may not send.
func checkSSE(args []any) error {
	name, ok := sseName(args)
	if !ok {
		return fmt.Errorf("adapters: serverSideEmit needs an event name")
	}
	if reservedSSE[name] {
		return fmt.Errorf("%w: %q", errReservedSSE, name)
	}
	return nil
}

// randomID is n random bytes in hex (the sharded adapter's 16-character uids and request ids).
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// timeoutMS is what is left of a context's deadline, in ms, for flags.timeout (def without a
// deadline).
func timeoutMS(deadline time.Time, ok bool, def time.Duration) int64 {
	if !ok {
		return def.Milliseconds()
	}
	ms := time.Until(deadline).Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return ms
}
