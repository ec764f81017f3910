package namespaces

import (
	"strings"
	"unicode/utf8"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// User is who a socket belongs to: the JWT subject, or the socket itself when anonymous.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Identity is what Switchboard keeps about a socket in the library's socket data. It travels with
// the socket's session (connection state recovery) and to other nodes (fetchSockets), so it is
// stored as a plain JSON-shaped map and read back from one.
type Identity struct {
	User User
	// Rooms holds the patterns of the token's rooms claim; nil means no claim (any room but
	// others' user rooms), an empty non-nil slice allows none.
	Rooms []string
	// Exp is the token's expiry in Unix seconds; 0 for anonymous sockets.
	Exp int64
}

// UserRoomPrefix starts the reserved per-user rooms.
const UserRoomPrefix = "user:"

// UserRoom is the room every socket of a user is in.
func UserRoom(userID string) string { return UserRoomPrefix + userID }

// Data is the socket data form of the identity.
func (id Identity) Data() map[string]any {
	d := map[string]any{"user": map[string]any{"id": id.User.ID, "name": id.User.Name}}
	if id.Rooms != nil {
		rooms := make([]any, len(id.Rooms))
		for i, r := range id.Rooms {
			rooms[i] = r
		}
		d["rooms"] = rooms
	}
	if id.Exp != 0 {
		d["exp"] = id.Exp
	}
	return d
}

// IdentityFromData reads an identity back from socket data, whether it is the map Data built or
// the same map after a round trip through JSON or msgpack (another node, a stored session).
func IdentityFromData(data any) (Identity, bool) {
	m, ok := data.(map[string]any)
	if !ok {
		return Identity{}, false
	}
	u, ok := m["user"].(map[string]any)
	if !ok {
		return Identity{}, false
	}
	var id Identity
	id.User.ID, _ = u["id"].(string)
	id.User.Name, _ = u["name"].(string)
	if id.User.ID == "" {
		return Identity{}, false
	}
	switch rooms := m["rooms"].(type) {
	case []any:
		id.Rooms = make([]string, 0, len(rooms))
		for _, r := range rooms {
			if s, ok := r.(string); ok {
				id.Rooms = append(id.Rooms, s)
			}
		}
	case []string:
		id.Rooms = append([]string{}, rooms...)
	}
	switch exp := m["exp"].(type) {
	case int64:
		id.Exp = exp
	case float64:
		id.Exp = int64(exp)
	case int:
		id.Exp = int64(exp)
	case uint64:
		id.Exp = int64(exp)
	case int32:
		id.Exp = int64(exp)
	case uint32:
		id.Exp = int64(exp)
	}
	return id, true
}

// IdentityOf returns the socket's identity; a socket that went through no identifying middleware
// is anonymous.
func IdentityOf(s *socket.Socket) Identity {
	if id, ok := IdentityFromData(s.Data()); ok {
		return id
	}
	return Anonymous(string(s.Id()), s.Handshake().Auth)
}

// Anonymous is the identity of a socket without a token: its id is the socket id, its name is
// auth.name from the handshake when that is a string of 1–64 characters, else "guest-" and the
// first 4 characters of the id.
func Anonymous(socketID string, auth map[string]any) Identity {
	name, _ := auth["name"].(string)
	if n := utf8.RuneCountInString(name); n < 1 || n > 64 || strings.TrimSpace(name) == "" {
		name = "guest-" + firstRunes(socketID, 4)
	}
	return Identity{User: User{ID: socketID, Name: name}}
}

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
