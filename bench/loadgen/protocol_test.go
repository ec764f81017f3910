package loadgen

import (
	"bytes"
	"fmt"
	"testing"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  Frame
		isErr bool
	}{
		{name: "open", in: `0{"sid":"abc"}`, want: Frame{EIO: '0', Nsp: "/", AckID: -1, Data: []byte(`{"sid":"abc"}`)}},
		{name: "ping", in: "2", want: Frame{EIO: '2', Nsp: "/", AckID: -1, Data: []byte{}}},
		{name: "connect root", in: `40{"sid":"x","pid":"y"}`, want: Frame{EIO: '4', SIO: '0', Nsp: "/", AckID: -1, Data: []byte(`{"sid":"x","pid":"y"}`)}},
		{name: "connect nsp", in: `40/chat,{"sid":"x"}`, want: Frame{EIO: '4', SIO: '0', Nsp: "/chat", AckID: -1, Data: []byte(`{"sid":"x"}`)}},
		{name: "nsp without payload", in: `41/chat`, want: Frame{EIO: '4', SIO: '1', Nsp: "/chat", AckID: -1}},
		{name: "event", in: `42["tick",{"m":"bseq:1:2"},"off"]`, want: Frame{EIO: '4', SIO: '2', Nsp: "/", AckID: -1, Data: []byte(`["tick",{"m":"bseq:1:2"},"off"]`)}},
		{name: "event with ack id", in: `4217["subscribe",{}]`, want: Frame{EIO: '4', SIO: '2', Nsp: "/", AckID: 17, Data: []byte(`["subscribe",{}]`)}},
		{name: "ack in nsp", in: `43/chat,12[{"data":{"id":"1"}}]`, want: Frame{EIO: '4', SIO: '3', Nsp: "/chat", AckID: 12, Data: []byte(`[{"data":{"id":"1"}}]`)}},
		{name: "connect error", in: `44/chat,{"message":"Invalid namespace"}`, want: Frame{EIO: '4', SIO: '4', Nsp: "/chat", AckID: -1, Data: []byte(`{"message":"Invalid namespace"}`)}},
		{name: "empty", in: "", isErr: true},
		{name: "message without type", in: "4", isErr: true},
		{name: "unknown socket type", in: "49[]", isErr: true},
		{name: "ack id overflow", in: "4399999999999999999999[]", isErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFrame([]byte(tt.in))
			checkParsed(t, fmt.Sprintf("ParseFrame(%q)", tt.in), got, err, tt.want, tt.isErr)
		})
	}
}

// checkParsed checks what a frame parser returned for the call named call: an error where
// isErr, else want in every field (Data byte for byte, nil and empty alike).
func checkParsed(t *testing.T, call string, got Frame, err error, want Frame, isErr bool) {
	t.Helper()
	if isErr {
		if err == nil {
			t.Fatalf("%s = %+v, want an error", call, got)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	if got.EIO != want.EIO || got.SIO != want.SIO || got.Nsp != want.Nsp || got.AckID != want.AckID || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("%s = {%c %c %q %d %q}, want {%c %c %q %d %q}", call,
			got.EIO, got.SIO, got.Nsp, got.AckID, got.Data, want.EIO, want.SIO, want.Nsp, want.AckID, want.Data)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"connect root", string(AppendConnect(nil, "/", nil)), "40"},
		{"connect nsp with auth", string(AppendConnect(nil, "/chat", []byte(`{"name":"b"}`))), `40/chat,{"name":"b"}`},
		{"disconnect root", string(AppendDisconnect(nil, "/")), "41"},
		{"disconnect nsp", string(AppendDisconnect(nil, "/chat")), "41/chat,"},
		{"event with ack", string(NewEvent("/", "subscribe", []byte(`{"rooms":["r"]}`)).Append(nil, 7)), `427["subscribe",{"rooms":["r"]}]`},
		{"event without ack", string(NewEvent("/", "ping", nil).Append(nil, -1)), `42["ping"]`},
		{"event in nsp", string(NewEvent("/chat", "chat:send", []byte(`{"room":"r","text":"t"}`)).Append(nil, 0)), `42/chat,0["chat:send",{"room":"r","text":"t"}]`},
		{"event name is quoted", string(NewEvent("/", `a"b`, nil).Append(nil, -1)), `42["a\"b"]`},
		{"rooms payload", string(roomsPayload("bench")), `{"rooms":["bench"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %s, want %s", tt.got, tt.want)
			}
		})
	}
}

func TestEncodeThenParse(t *testing.T) {
	b := NewEvent("/chat", "chat:send", []byte(`{"room":"r"}`)).Append(nil, 42)
	f, err := ParseFrame(b)
	if err != nil {
		t.Fatalf("ParseFrame: %v", err)
	}
	if f.SIO != sioEvent || f.Nsp != "/chat" || f.AckID != 42 || string(f.Data) != `["chat:send",{"room":"r"}]` {
		t.Fatalf("round trip: %+v", f)
	}
}

func TestAckOK(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`[{"data":{"rooms":["bench"]}}]`, true},
		{` [{"data":null}]`, true},
		{`[{"error":{"code":"forbidden","message":"no"}}]`, false},
		{`[]`, false},
		{``, false},
	}
	for _, tt := range tests {
		if got := AckOK([]byte(tt.in)); got != tt.want {
			t.Errorf("AckOK(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestStamp(t *testing.T) {
	frame := string(AppendStamp([]byte(`42["tick",{"m":"`), 123, 456789)) + `"},"offset-1"]`
	seq, sent, ok := FindStamp([]byte(frame))
	if !ok || seq != 123 || sent != 456789 {
		t.Fatalf("FindStamp(%s) = %d %d %v", frame, seq, sent, ok)
	}
	chat := `42/chat,["chat:message",{"id":"7","room":"r","user":{"id":"u","name":"bseq"},"text":"bseq:0:1","ts":1}]`
	if seq, sent, ok := FindStamp([]byte(chat)); !ok || seq != 0 || sent != 1 {
		t.Fatalf("FindStamp(chat) = %d %d %v", seq, sent, ok)
	}
	for _, bad := range []string{`42["tick"]`, `bseq:`, `bseq:12`, `bseq:12:`, `bseq:-1:5`, `bseq:x:5`} {
		if _, _, ok := FindStamp([]byte(bad)); ok {
			t.Errorf("FindStamp(%q) found a stamp", bad)
		}
	}
}
