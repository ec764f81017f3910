package namespaces

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// relayStates are the implementations every RelayState test runs against.
func relayStates(t *testing.T) map[string]func(t *testing.T) RelayState {
	return map[string]func(t *testing.T) RelayState{
		"memory": func(*testing.T) RelayState { return NewMemoryRelayState() },
		"redis": func(t *testing.T) RelayState {
			return NewRedisRelayState(sharedRedis(t), "test-"+rand.Text(), time.Minute)
		},
	}
}

func val(user, key, event, data string) RelayValue {
	return RelayValue{User: user, Key: key, Event: event, Data: json.RawMessage(data)}
}

// dump is a room's state as sorted "user/key=event data" lines.
func dump(t *testing.T, st RelayState, room string) string {
	t.Helper()
	values, err := st.State(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]string, 0, len(values))
	for _, v := range values {
		lines = append(lines, fmt.Sprintf("%s/%s=%s %s", v.User, v.Key, v.Event, v.Data))
	}
	sort.Strings(lines)
	return strings.Join(lines, ";")
}

func TestRelayState(t *testing.T) {
	for name, mk := range relayStates(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st := mk(t)
			// User ids and keys that a naive field encoding would confuse.
			users := []string{"a", "a:b", "1:a", "", "{x}", "é"}
			for _, u := range users {
				if err := st.Admit(ctx, "r", val(u, "k", "e", `1`)); err != nil {
					t.Fatalf("Admit(%q): %v", u, err)
				}
			}
			if err := st.Admit(ctx, "r", val("a", "b:k", "e", `{"x":[1,"y"]}`)); err != nil {
				t.Fatal(err)
			}
			if err := st.Admit(ctx, "other", val("a", "k", "e", `"other room"`)); err != nil {
				t.Fatal(err)
			}
			want := `/k=e 1;1:a/k=e 1;a/b:k=e {"x":[1,"y"]};a/k=e 1;a:b/k=e 1;{x}/k=e 1;é/k=e 1`
			if got := dump(t, st, "r"); got != want {
				t.Fatalf("state\n %s\nwant\n %s", got, want)
			}

			t.Run("update stores held keys only", func(t *testing.T) {
				missing, err := st.Update(ctx, []RelayUpdate{
					{Room: "r", Values: []RelayValue{val("a", "k", "move", `2`), val("a", "never", "e", `0`), val("a:b", "k", "e", `null`)}},
					{Room: "other", Values: []RelayValue{val("a", "k", "e", `"updated"`)}},
					{Room: "nowhere", Values: []RelayValue{val("z", "k", "e", `0`)}},
				})
				if err != nil {
					t.Fatal(err)
				}
				sort.Slice(missing, func(i, j int) bool { return missing[i].Room < missing[j].Room })
				if want := []RelayMissing{{Room: "nowhere", User: "z", Key: "k"}, {Room: "r", User: "a", Key: "never"}}; fmt.Sprint(missing) != fmt.Sprint(want) {
					t.Fatalf("missing %v, want %v", missing, want)
				}
				if got := dump(t, st, "r"); !strings.Contains(got, "a/k=move 2") || !strings.Contains(got, "a:b/k=e null") || strings.Contains(got, "never") {
					t.Fatalf("state after update: %s", got)
				}
				if got := dump(t, st, "other"); got != `a/k=e "updated"` {
					t.Fatalf("other room: %s", got)
				}
			})

			t.Run("drop a user", func(t *testing.T) {
				if err := st.DropUser(ctx, "r", "a"); err != nil {
					t.Fatal(err)
				}
				got := dump(t, st, "r")
				if strings.Contains(got, ";a/") || strings.HasPrefix(got, "a/") || !strings.Contains(got, "a:b/k") || !strings.Contains(got, "1:a/k") {
					t.Fatalf("after dropping a: %s", got)
				}
				// The dropped user's keys no longer count: it may hold 100 again.
				for i := range MaxRelayKeys {
					if err := st.Admit(ctx, "r", val("a", fmt.Sprint("k", i), "e", `1`)); err != nil {
						t.Fatalf("key %d after the drop: %v", i, err)
					}
				}
				if err := st.DropUser(ctx, "r", "nobody"); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("drop a room", func(t *testing.T) {
				if err := st.DropRoom(ctx, "r"); err != nil {
					t.Fatal(err)
				}
				if got := dump(t, st, "r"); got != "" {
					t.Fatalf("after dropping the room: %s", got)
				}
				if got := dump(t, st, "other"); got == "" {
					t.Fatalf("another room went too")
				}
				if err := st.Touch(ctx, []string{"r", "other"}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// At most 100 keys per user per room, however many nodes admit them at once.
func TestRelayStateKeyBound(t *testing.T) {
	for name, mk := range relayStates(t) {
		t.Run(name, func(t *testing.T) {
			st := mk(t)
			stores := []RelayState{st, st}
			if rs, ok := st.(*RedisRelayState); ok {
				// A second node: its own client, the same keys.
				other := redis.NewClient(rs.rdb.(*redis.Client).Options())
				t.Cleanup(func() { _ = other.Close() })
				stores[1] = NewRedisRelayState(other, rs.prefix, rs.ttl)
			}
			var ok, refused atomic.Int64
			var wg sync.WaitGroup
			for n := range 4 {
				wg.Go(func() {
					for i := range 50 {
						// Nodes 0 and 2, 1 and 3 publish the same keys: 100 distinct in all, plus
						// node 3's extra 50.
						key := fmt.Sprint("k", (n%2)*50+i)
						if n == 3 {
							key = fmt.Sprint("extra", i)
						}
						err := stores[n%2].Admit(context.Background(), "r", val("u", key, "e", `1`))
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, ErrRelayKeys):
							refused.Add(1)
						default:
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			values, err := st.State(t.Context(), "r")
			if err != nil {
				t.Fatal(err)
			}
			if len(values) != MaxRelayKeys {
				t.Fatalf("the user holds %d keys, want %d (admitted %d, refused %d)", len(values), MaxRelayKeys, ok.Load(), refused.Load())
			}
			if err := st.Admit(t.Context(), "r", val("u", values[0].Key, "e", `"held"`)); err != nil {
				t.Fatalf("a held key refused: %v", err)
			}
			if err := st.Admit(t.Context(), "r", val("v", "k0", "e", `1`)); err != nil {
				t.Fatalf("another user refused: %v", err)
			}
		})
	}
}

// Redis keys: a room's keys share its hash tag, carry a TTL refreshed by writes and Touch, and
// are gone once the room is dropped.
func TestRedisRelayStateKeys(t *testing.T) {
	rdb := sharedRedis(t)
	prefix := "test-" + rand.Text()
	st := NewRedisRelayState(rdb, prefix, 10*time.Second)
	ctx := t.Context()
	if err := st.Admit(ctx, "room:1", val("u", "k", "e", `1`)); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	if want := []string{prefix + ":{room:1}:keys", prefix + ":{room:1}:state"}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > 10*time.Second {
			t.Fatalf("TTL of %s: %v %v", k, ttl, err)
		}
	}
	if err := rdb.PExpire(ctx, keys[0], time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	if err := st.Touch(ctx, []string{"room:1"}); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.PTTL(ctx, keys[0]).Result(); ttl <= 5*time.Second {
		t.Fatalf("Touch left a TTL of %v", ttl)
	}
	if st.TouchEvery() <= 0 || st.TouchEvery() >= 10*time.Second {
		t.Fatalf("TouchEvery %v for a TTL of 10s", st.TouchEvery())
	}
	if err := st.DropRoom(ctx, "room:1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, keys...).Result(); n != 0 {
		t.Fatalf("%d keys left after DropRoom", n)
	}
	// A script flushed from Redis (a restart, SCRIPT FLUSH) is loaded again.
	if err := st.Admit(ctx, "r", val("u", "k", "e", `1`)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if missing, err := st.Update(ctx, []RelayUpdate{{Room: "r", Values: []RelayValue{val("u", "k", "e", `2`)}}}); err != nil || len(missing) != 0 {
		t.Fatalf("Update after SCRIPT FLUSH: %v %v", missing, err)
	}
	if got := dump(t, st, "r"); got != "u/k=e 2" {
		t.Fatalf("state %s", got)
	}
}

func TestRedisRelayStateDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	st := NewRedisRelayState(rdb, "x", 0)
	if st.ttl != DefaultRelayTTL {
		t.Fatalf("default TTL %v", st.ttl)
	}
	ctx := t.Context()
	checks := map[string]error{
		"admit":     st.Admit(ctx, "r", val("u", "k", "e", `1`)),
		"state":     func() error { _, err := st.State(ctx, "r"); return err }(),
		"drop user": st.DropUser(ctx, "r", "u"),
		"drop room": st.DropRoom(ctx, "r"),
		"touch":     st.Touch(ctx, []string{"r"}),
		"update": func() error {
			_, err := st.Update(ctx, []RelayUpdate{{Room: "r", Values: []RelayValue{val("u", "k", "e", `1`)}}})
			return err
		}(),
	}
	for name, err := range checks {
		if err == nil || errors.Is(err, ErrRelayKeys) || !strings.HasPrefix(err.Error(), "relay: ") {
			t.Errorf("%s with Redis down: %v", name, err)
		}
	}
}

func TestNewRedisRelayStatePanics(t *testing.T) {
	for name, f := range map[string]func(){
		"braces in the prefix": func() { NewRedisRelayState(nil, "a{b}", 0) },
		"a TTL under 1s":       func() { NewRedisRelayState(nil, "a", time.Millisecond) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func FuzzRelayField(f *testing.F) {
	for _, s := range [][2]string{{"a", "k"}, {"", ""}, {"1:a", "2:b"}, {"{x}", "é"}, {"12345678901", ":"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, user, key string) {
		u, k, ok := parseRelayField(relayField(user, key))
		if !ok || u != user || k != key {
			t.Fatalf("relayField(%q, %q) parsed back as %q, %q, %v", user, key, u, k, ok)
		}
		if !strings.HasPrefix(relayField(user, key), relayUserPrefix(user)) {
			t.Fatalf("a user's prefix does not start its fields")
		}
		// Any other user's prefix must not start this field (DropUser would take it).
		other := user + "x"
		if strings.HasPrefix(relayField(user, key), relayUserPrefix(other)) {
			t.Fatalf("user %q's prefix matches a field of %q", other, user)
		}
		_, _, _ = parseRelayField(key) // arbitrary stored fields never panic
	})
}

// FuzzRelayPublish feeds relay:publish payloads to the decoder: nothing panics, a refusal is a
// bad_request, and what is accepted holds to the limits.
func FuzzRelayPublish(f *testing.F) {
	seeds := []string{
		`{"room":"game","event":"move","data":{"x":1,"y":2},"key":"pos"}`,
		`{"room":"game","event":"shot","data":null}`,
		`{"room":"game","event":"shot"}`,
		`{"room":"game","event":"a b","data":1}`,
		`{"room":"game","event":"e","data":1,"key":""}`,
		`{"room":"game","event":"e","data":1,"key":null}`,
		`{"room":"game","event":"e","data":1,"key":5}`,
		`{"room":"game","event":"e","data":"` + strings.Repeat("x", MaxRelayData) + `"}`,
		`{"room":"game","event":"e","data":[` + strings.Repeat(`1, `, 6000) + `1]}`,
		`{"room":"user:x","event":"e","data":{"a":{"b":{"c":[]}}}}`,
		`{"room":["game"],"event":{},"data":1}`,
	}
	fuzzPayload(f, seeds, func(t *testing.T, data []byte, arg any) {
		var req RelayPublishRequest
		err := Decode(args(arg), &req)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest {
				t.Fatalf("Decode(%s) = %v, want nil or bad_request", data, err)
			}
			return
		}
		if !ValidRoomName(req.Room) || !validName(req.Event, MaxRelayEvent) || req.Data == nil || !json.Valid(req.Data) {
			t.Fatalf("accepted %s as %+v", data, req)
		}
		if len(req.Data) > MaxRelayData {
			t.Fatalf("accepted %d bytes of data", len(req.Data))
		}
	})
}
