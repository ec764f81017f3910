package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestChatPresenceExactlyOnce has many members join one room at once: each learns of every
// other exactly once, from its chat:join's member list or from a chat:user-joined after it,
// never from both and never from neither.
func TestChatPresenceExactlyOnce(t *testing.T) {
	ts := startServer(t, testConfig())
	const members, inFlight = 60, 12

	type member struct {
		c    *rawClient
		name string

		mu       sync.Mutex
		listed   []string // in its join ack's members
		announce []string // in the chat:user-joined it got
		acked    chan struct{}
		done     chan struct{}
	}
	all := make([]*member, members)
	for i := range all {
		name := fmt.Sprintf("m%02d", i)
		c, _, err := rawDial(ts, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.close)
		if err := c.write(`40/chat,{"name":"` + name + `"}`); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.awaitConnect("/chat"); err != nil {
			t.Fatal(err)
		}
		m := &member{c: c, name: name, acked: make(chan struct{}), done: make(chan struct{})}
		all[i] = m
		go func() {
			defer close(m.done)
			for {
				msg, err := c.read()
				if err != nil {
					return
				}
				switch {
				case strings.HasPrefix(msg, `43/chat,1[`):
					var args []struct {
						Data struct {
							Members []struct{ Name string } `json:"members"`
						} `json:"data"`
					}
					if err := json.Unmarshal([]byte(msg[len(`43/chat,1`):]), &args); err != nil || len(args) != 1 {
						t.Errorf("%s: join ack %q", name, msg)
						return
					}
					m.mu.Lock()
					for _, u := range args[0].Data.Members {
						m.listed = append(m.listed, u.Name)
					}
					m.mu.Unlock()
					close(m.acked)
				case strings.HasPrefix(msg, `42/chat,["chat:user-joined",`):
					var ev []json.RawMessage
					var body struct{ User struct{ Name string } }
					if json.Unmarshal([]byte(msg[len(`42/chat,`):]), &ev) != nil || len(ev) < 2 || json.Unmarshal(ev[1], &body) != nil {
						t.Errorf("%s: %q", name, msg)
						return
					}
					m.mu.Lock()
					m.announce = append(m.announce, body.User.Name)
					m.mu.Unlock()
				case strings.HasPrefix(msg, `42/chat,["end"`):
					return
				}
			}
		}()
	}

	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for _, m := range all {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := m.c.emit("/chat", "chat:join", `{"room":"crowd"}`, 1); err != nil {
				t.Error(err)
			}
			receive(t, m.name+"'s join ack", m.acked)
		}()
	}
	wg.Wait()
	// Every announcement was sent before the last ack; one more event marks the end of them.
	if err := ts.IO().Namespace("/chat").To("crowd").Emit("end"); err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		receive(t, m.name+"'s end", m.done)
	}
	for _, m := range all {
		seen := map[string]int{}
		for _, n := range m.listed {
			seen[n]++
		}
		for _, n := range m.announce {
			seen[n]++
		}
		for _, o := range all { // a member is in its own list too, and never announced to itself
			if seen[o.name] != 1 {
				t.Errorf("%s heard of %s %d times (listed %v, announced %v)", m.name, o.name, seen[o.name], m.listed, m.announce)
			}
		}
	}
}
