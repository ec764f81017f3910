package socketio

import (
	"testing"
)

// Namespace.Encode and Socket.WriteVolatile: one encoding per parser for many sockets, all the
// events of a call or none, nothing for a socket that is not connected.
func TestWriteVolatile(t *testing.T) {
	ts, rec := startRecorded(t, Config{}, nil)
	a, b := ts.dial(), ts.dial()
	a.connect("/", "")
	sa := receive(t, "a's OnConnection", rec.connected)
	b.connect("/", "")
	sb := receive(t, "b's OnConnection", rec.connected)

	nsp := ts.srv.Namespace("/")
	first, second := nsp.Encode("pos", map[string]int{"x": 1}), nsp.Encode("pos", map[string]int{"x": 2})
	for _, s := range []*Socket{sa, sb} {
		if !s.WriteVolatile(first, second) {
			t.Fatal("WriteVolatile refused a writable socket")
		}
	}
	for _, c := range []*rawClient{a, b} {
		c.expect(`2["pos",{"x":1}]`, `2["pos",{"x":2}]`)
	}
	// Both sockets speak the default parser: one encoding served both.
	if first.enc[parserJSON] == nil || first.enc[parserMsgpack] != nil {
		t.Fatalf("encodings kept: json %v, msgpack %v", first.enc[parserJSON] != nil, first.enc[parserMsgpack] != nil)
	}
	msgs := first.enc[parserJSON]
	sa.WriteVolatile(first)
	if &first.enc[parserJSON][0] != &msgs[0] {
		t.Fatal("the event was encoded again")
	}
	a.expect(`2["pos",{"x":1}]`)

	b.send("1") // b leaves "/": nothing more is written to its socket
	receive(t, "b's disconnect", rec.disconnected)
	if sb.WriteVolatile(first) {
		t.Fatal("WriteVolatile wrote to a disconnected socket")
	}
	if sa.WriteVolatile() {
		t.Fatal("WriteVolatile of nothing reported a write")
	}
}
