package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/bench/loadgen"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want stat
	}{
		{"odd count", []float64{3, 1, 2}, stat{Median: 2, Min: 1, Max: 3, N: 3}},
		{"even count averages the middle two", []float64{4, 1, 3, 2}, stat{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"one", []float64{7}, stat{Median: 7, Min: 7, Max: 7, N: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := summarize(tt.in)
			if !ok || got != tt.want {
				t.Fatalf("summarize(%v) = %+v, %v; want %+v", tt.in, got, ok, tt.want)
			}
		})
	}
	if _, ok := summarize(nil); ok {
		t.Fatalf("summarize(nil) is ok")
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{format(2894.4, 0), "2,894"},
		{format(1234567.891, 2), "1,234,567.89"},
		{format(-1500, 0), "-1,500"},
		{format(0.5, 1), "0.5"},
		{cell(stat{Median: 2, Min: 1, Max: 3, N: 3}, true, 1), "2.0 [1.0–3.0]"},
		{cell(stat{Median: 2, Min: 2, Max: 2, N: 3}, true, 0), "2"},
		{cell(stat{}, false, 0), "n/a"},
		{ratio(stat{Median: 30}, true, stat{Median: 20}, true), "1.50"},
		{ratio(stat{Median: 0}, true, stat{Median: 0}, true), "="},
		{ratio(stat{Median: 1}, true, stat{}, false), "n/a"},
		{thousands(10000), "10,000"},
		{thousands(999), "999"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// caseMarkdown renders the report of case c alone, with the outcomes of its repetitions by
// server name.
func caseMarkdown(c benchCase, byServer map[string][]outcome) string {
	r := report{Machine: machine{}, Env: &environment{}, Cases: []benchCase{c}, Reps: 3,
		Results: map[string]map[string][]outcome{c.ID: byServer}}
	return r.markdown()
}

// figures are repetitions that measured metric key, one a value.
func figures(key string, values ...float64) []outcome {
	out := make([]outcome, len(values))
	for i, v := range values {
		out[i] = outcome{Result: loadgen.Result{Metrics: map[string]float64{key: v}}}
	}
	return out
}

// wantInReport fails t for each of wants that md lacks.
func wantInReport(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestReportFiguresAndNA(t *testing.T) {
	c := benchCase{ID: "echo", Title: "echo", Metrics: []metric{{Key: "acks_per_s", Label: "acks per second", Higher: true}}}
	na := outcome{Result: loadgen.Result{NA: "subscribe: no ack within 5s"}}
	md := caseMarkdown(c, map[string][]outcome{
		"switchboard": figures("acks_per_s", 300, 100, 200),
		"node":        {na, na},
	})
	wantInReport(t, md,
		"| acks per second ↑ | 200 [100–300] | n/a | n/a |",
		"Node socket.io: n/a — subscribe: no ack within 5s",
	)
}

func TestDefaultCasesIncludeEmitAndCluster(t *testing.T) {
	for _, quick := range []bool{false, true} {
		cs := defaultCases(quick)
		emit, cluster := filterCases(cs, []string{"api-emit"}), 0
		for _, c := range cs {
			if c.Cluster {
				cluster++
				if !strings.HasPrefix(c.ID, "fanout-redis-2x") || c.Scenario != "fanout" {
					t.Errorf("quick %v: cluster case %q runs %q", quick, c.ID, c.Scenario)
				}
			}
		}
		if len(emit) != 1 || emit[0].Scenario != "api-emit" || cluster != 1 {
			t.Errorf("quick %v: %d api-emit cases, %d cluster cases; want 1 and 1", quick, len(emit), cluster)
		}
	}
	if len(filterCases(defaultCases(false), []string{"fanout-redis-2x1000"})) != 1 {
		t.Errorf("no fanout-redis-2x1000 in the default cases")
	}
}

func TestDefaultCasesIncludeIssue18Scenarios(t *testing.T) {
	tests := []struct {
		name  string
		quick bool
		want  map[string]string // case id → scenario
	}{
		{"default", false, map[string]string{
			"connect-polling-5000": "connect-polling", "chat-join-1000": "chat-join",
			"echo-fixed-10000": "echo-fixed", "connect-10000": "connect",
		}},
		{"quick", true, map[string]string{
			"connect-polling-500": "connect-polling", "chat-join-300": "chat-join",
			"echo-fixed-10000": "echo-fixed", "connect-1000": "connect",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := defaultCases(tt.quick)
			for id, scenario := range tt.want {
				got := filterCases(cs, []string{id})
				if len(got) != 1 || got[0].Scenario != scenario {
					t.Errorf("case %s: %+v, want one %s case", id, got, scenario)
				}
			}
			seen := map[string]bool{}
			for _, c := range cs {
				if seen[c.ID] {
					t.Errorf("case id %s twice", c.ID)
				}
				seen[c.ID] = true
				if c.NodeClients != (c.Scenario == "connect-polling") {
					t.Errorf("case %s: NodeClients %v", c.ID, c.NodeClients)
				}
				hasGoroutines := slices.ContainsFunc(c.Metrics, func(m metric) bool { return m.Key == "goroutines_per_conn" })
				if hasGoroutines && !c.Pprof {
					t.Errorf("case %s reports goroutines per connection without the pprof listener", c.ID)
				}
			}
		})
	}
}

// TestReportSwitchboardOnly: a case without Node has Switchboard's column alone and says what
// Node would need instead; the hook case is one.
func TestReportSwitchboardOnly(t *testing.T) {
	c := benchCase{ID: "hook", Title: "hook", NodeWould: "Node would need a handler of its own",
		Metrics: []metric{{Key: "cpu_per_ack_us", Label: "CPU per forwarded event (µs)", Digits: 1}}}
	reps := figures("cpu_per_ack_us", 30, 10, 20)
	reps[1].Result.Notes = []string{"the load generator was late"}
	md := caseMarkdown(c, map[string][]outcome{"switchboard": reps})
	wantInReport(t, md,
		"| figure | Switchboard |\n|---|---|\n| CPU per forwarded event (µs) ↓ | 20.0 [10.0–30.0] |",
		"Switchboard: repetition 2: the load generator was late\n\nNo Node column: Node would need a handler of its own.",
	)
	if strings.Contains(md, "| figure | Switchboard | Node socket.io |") {
		t.Errorf("the case has a Node column:\n%s", md)
	}
	var hook *benchCase
	for _, bc := range defaultCases(false) {
		if bc.Scenario == "hook-fixed" {
			hook = &bc
		}
	}
	if hook == nil || !hook.HookBackend || hook.NodeWould == "" {
		t.Fatalf("no hook-fixed case with a backend and no Node column: %+v", hook)
	}
}
