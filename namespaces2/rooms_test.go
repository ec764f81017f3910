package namespaces

import (
	"strings"
	"testing"
)

func TestValidRoomName(t *testing.T) {
	tests := []struct {
		name string
		room string
		want bool
	}{
		{"simple", "news", true},
		{"every allowed character", "AZaz09_-.:@", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"empty", "", false},
		{"129 characters", strings.Repeat("a", 129), false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"non-ascii letter", "é", false},
		{"nul byte", "a\x00", false},
		{"newline", "a\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidRoomName(tt.room); got != tt.want {
				t.Fatalf("ValidRoomName(%q) = %v, want %v", tt.room, got, tt.want)
			}
		})
	}
}

func TestMayJoin(t *testing.T) {
	anon := Identity{User: User{ID: "s1"}}
	claimed := Identity{User: User{ID: "u1"}, Rooms: []string{"team-*", "lobby"}}
	none := Identity{User: User{ID: "u2"}, Rooms: []string{}}
	tests := []struct {
		name string
		id   Identity
		room string
		want bool
	}{
		{"anonymous, any room", anon, "lobby", true},
		{"own user room", anon, "user:s1", true},
		{"another user's room", anon, "user:s2", false},
		{"user room prefix of own id", anon, "user:s", false},
		{"claim exact", claimed, "lobby", true},
		{"claim prefix", claimed, "team-red", true},
		{"claim prefix, empty suffix", claimed, "team-", true},
		{"outside the claim", claimed, "other", false},
		{"claim, own user room", claimed, "user:u1", true},
		{"empty claim allows none", none, "lobby", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.id.MayJoin(tt.room); got != tt.want {
				t.Fatalf("MayJoin(%q) = %v, want %v", tt.room, got, tt.want)
			}
		})
	}
}
