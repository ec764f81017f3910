package loadgen

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckPresence(t *testing.T) {
	tests := []struct {
		name  string
		views []presenceView
		want  presenceCount
	}{
		{"each learnt once, from the answer or an announcement", []presenceView{
			{self: "a", listed: []string{"a"}, notified: map[string]int{"b": 1, "c": 1}},
			{self: "b", listed: []string{"a", "b"}, notified: map[string]int{"c": 1}},
			{self: "c", listed: []string{"a", "b", "c"}, notified: map[string]int{}},
		}, presenceCount{}},
		{"an announcement never sent", []presenceView{
			{self: "a", listed: []string{"a"}, notified: map[string]int{}},
			{self: "b", listed: []string{"a", "b"}, notified: map[string]int{}},
		}, presenceCount{lost: 1}},
		{"listed and announced too", []presenceView{
			{self: "a", listed: []string{"a", "b"}, notified: map[string]int{"b": 1}},
			{self: "b", listed: []string{"a", "b"}, notified: map[string]int{}},
		}, presenceCount{duplicates: 1, listedAndNotified: 1}},
		{"announced twice", []presenceView{
			{self: "a", listed: []string{"a"}, notified: map[string]int{"b": 2}},
			{self: "b", listed: []string{"a", "b"}, notified: map[string]int{}},
		}, presenceCount{duplicates: 1}},
		{"a stranger announced", []presenceView{
			{self: "a", listed: []string{"a"}, notified: map[string]int{"x": 3}},
		}, presenceCount{unknown: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkPresence(tt.views); got != tt.want {
				t.Fatalf("checkPresence = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestJoinedUser(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"switchboard", `["chat:user-joined",{"room":"bench","user":{"id":"Xy_1-z","name":"guest-Xy_1"}}]`, "Xy_1-z", true},
		{"name first", `["chat:user-joined",{"room":"bench","user":{"name":"n","id":"abc"}}]`, "abc", true},
		{"room id is not the user's", `["chat:user-joined",{"id":"nope","user":{"id":"abc"}}]`, "abc", true},
		{"no user", `["chat:user-joined",{"room":"bench"}]`, "", false},
		{"unterminated", `["chat:user-joined",{"user":{"id":"abc`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := joinedUser([]byte(tt.in))
			if got != tt.want || ok != tt.ok {
				t.Fatalf("joinedUser(%s) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestSentTo(t *testing.T) {
	tests := []struct {
		name        string
		total, n, i int
		want        int
	}{
		{"even", 100, 50, 0, 2},
		{"first clients get the remainder", 103, 50, 2, 3},
		{"after the remainder", 103, 50, 3, 2},
		{"fewer requests than clients", 3, 50, 10, 0},
		{"none", 0, 50, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sentTo(tt.total, tt.n, tt.i); got != tt.want {
				t.Fatalf("sentTo(%d, %d, %d) = %d, want %d", tt.total, tt.n, tt.i, got, tt.want)
			}
			sum := 0
			for i := range tt.n {
				sum += sentTo(tt.total, tt.n, i)
			}
			if sum != tt.total {
				t.Fatalf("sentTo over %d clients sums to %d, want %d", tt.n, sum, tt.total)
			}
		})
	}
}

// TestDriverProtocol runs a stand-in for bench/node/clients.js (a shell script): the ready line
// is found among other output, stop is sent on stdin and the closed line awaited.
func TestDriverProtocol(t *testing.T) {
	script := filepath.Join(t.TempDir(), "driver.sh")
	body := `echo "not json"
echo '{"type":"progress"}'
echo '{"type":"ready","firstDialMs":1000.5,"lastReadyMs":3000.5,"connected":2,"failed":1,"transports":{"websocket":2},"handshakeMs":[1.5,2.5],"upgradeMs":[3],"errors":{"timeout":1}}'
read line
[ "$line" = stop ] && echo '{"type":"closed","transports":{"websocket":2}}'
`
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := startDriver(ctx, "sh", script, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.kill()
	var r driverReport
	if err := d.await(ctx, time.After(5*time.Second), "ready", &r); err != nil {
		t.Fatal(err)
	}
	if r.Connected != 2 || r.Failed != 1 || r.Transports["websocket"] != 2 || len(r.HandshakeMs) != 2 || r.LastReadyMs-r.FirstDialMs != 2000 || r.Errors["timeout"] != 1 {
		t.Fatalf("ready = %+v", r)
	}
	if err := d.stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

func TestDriverExitingEarlyFails(t *testing.T) {
	script := filepath.Join(t.TempDir(), "driver.sh")
	if err := os.WriteFile(script, []byte("echo boom >&2; exit 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := startDriver(ctx, "sh", script, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r driverReport
	err = d.await(ctx, time.After(5*time.Second), "ready", &r)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("await of a driver that exited: %v; want an error with its stderr", err)
	}
}

// TestScenarioTable: the names Run knows and the msgpack ones come from one table, in its order;
// Run refuses a name it does not know and msgpack where the scenario cannot speak it, before it
// dials anything.
func TestScenarioTable(t *testing.T) {
	want := []string{"connect", "connect-polling", "echo", "echo-fixed", "hook-fixed", "fanout", "chat-join", "api-emit", "churn", "relay"}
	if !slices.Equal(Scenarios, want) {
		t.Fatalf("Scenarios = %v, want %v", Scenarios, want)
	}
	if want := []string{"connect", "echo", "fanout"}; !slices.Equal(msgpackScenarios, want) {
		t.Fatalf("msgpackScenarios = %v, want %v", msgpackScenarios, want)
	}
	tests := []struct {
		name, scenario, parser, wantErr string
	}{
		{"unknown scenario", "nope", "", `unknown scenario "nope" (connect, connect-polling, echo,`},
		{"msgpack where the scenario has none", "relay", ParserMsgpack, `-parser msgpack runs only connect, echo, fanout, not "relay"`},
		{"unknown parser", "echo", "cbor", `unknown parser "cbor"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.scenario, Options{Parser: tt.parser})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run(%q, parser %q) = %v, want an error with %q", tt.scenario, tt.parser, err, tt.wantErr)
			}
		})
	}
}

func TestSetLatency(t *testing.T) {
	var res Result
	res.setLatency("handshake_", Latency{N: 3, P50: 1500 * time.Microsecond, P99: 20 * time.Millisecond, Max: time.Second})
	want := map[string]float64{"handshake_p50_ms": 1.5, "handshake_p99_ms": 20, "handshake_max_ms": 1000}
	if !maps.Equal(res.Metrics, want) {
		t.Fatalf("metrics %v, want %v", res.Metrics, want)
	}
}
