package namespaces

// relay_events.go: the contract of "/relay" (SPEC §9): its events, limits, payloads, and what the
// relay tells its observer.

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Relay limits (SPEC §9).
const (
	MaxRelayEvent    = 64       // characters of an event name
	MaxRelayKey      = 64       // characters of a key
	MaxRelayData     = 16 << 10 // bytes of data's JSON encoding
	DefaultRelayTick = 50 * time.Millisecond
)

// The relay's events.
const (
	RelayJoinEvent       = "relay:join"
	RelayLeaveEvent      = "relay:leave"
	RelayPublishEvent    = "relay:publish"
	RelayMessageEvent    = "relay:message"
	RelayUserJoinedEvent = "relay:user-joined"
	RelayUserLeftEvent   = "relay:user-left"
)

// RelayPublishRequest is the payload of relay:publish.
type RelayPublishRequest struct {
	Room  string          `json:"room"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	Key   *string         `json:"key"`
}

// Validate implements Validator. data is measured as compact JSON, whatever spacing the client
// sent.
func (r *RelayPublishRequest) Validate() error {
	if err := checkRoom("room", r.Room); err != nil {
		return err
	}
	if !validName(r.Event, MaxRelayEvent) {
		return Errorf(CodeBadRequest, "event must be 1-%d characters of A-Z a-z 0-9 _ - . : @", MaxRelayEvent)
	}
	if r.Data == nil {
		return Errorf(CodeBadRequest, "data is required (any JSON value, null included)")
	}
	if len(r.Data) > MaxRelayData {
		var buf bytes.Buffer
		if json.Compact(&buf, r.Data) != nil || buf.Len() > MaxRelayData {
			return Errorf(CodeBadRequest, "data must be at most %d bytes of JSON", MaxRelayData)
		}
		r.Data = buf.Bytes()
	}
	if r.Key != nil {
		if n := utf8.RuneCountInString(*r.Key); n < 1 || n > MaxRelayKey {
			return Errorf(CodeBadRequest, "key must be 1-%d characters", MaxRelayKey)
		}
	}
	return nil
}

// validName reports whether s is 1–max characters of the room-name alphabet.
func validName(s string, limit int) bool {
	return len(s) <= limit && ValidRoomName(s)
}

// RelayJoinReply is the ack data of relay:join.
type RelayJoinReply struct {
	Room    string                    `json:"room"`
	Members []User                    `json:"members"`
	State   map[string]map[string]any `json:"state"` // user id → key → data
}

// RelayLeaveReply is the ack data of relay:leave.
type RelayLeaveReply struct {
	Room string `json:"room"`
}

// RelayMessage is the argument of relay:message. Key is absent for unkeyed messages.
type RelayMessage struct {
	Room  string `json:"room"`
	User  User   `json:"user"`
	Event string `json:"event"`
	Data  any    `json:"data"`
	Key   string `json:"key,omitempty"`
}

// RelayStage says where a keyed value was coalesced away.
type RelayStage string

// The stages of coalescing.
const (
	// RelayStageTick: a publish replaced by a newer one of the same (user, key) before the tick
	// sent it on (counted once per publish, on the publishing node).
	RelayStageTick RelayStage = "tick"
	// RelayStageSlowReader: a value a slow reader had not been able to take, replaced by a newer
	// one (counted once per reader).
	RelayStageSlowReader RelayStage = "slow_reader"
)

// RelayObserver is told what the relay does, for metrics. Its methods are called from request
// handlers and from the tick, concurrently; they must not block.
type RelayObserver interface {
	// RelayPublished counts a relay:publish the namespace accepted.
	RelayPublished(keyed bool)
	// RelayDelivered counts keyed relay:message frames written to this node's sockets. Unkeyed
	// messages are ordinary broadcasts: the namespace's OnEmitted counts them with the rest.
	RelayDelivered(n int)
	// RelayCoalesced counts keyed values that were never delivered because a newer value of
	// the same (user, key) replaced them.
	RelayCoalesced(stage RelayStage, n int)
}

type nopRelayObserver struct{}

func (nopRelayObserver) RelayPublished(bool)            {}
func (nopRelayObserver) RelayDelivered(int)             {}
func (nopRelayObserver) RelayCoalesced(RelayStage, int) {}
