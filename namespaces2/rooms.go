package namespaces

import (
	"strings"
	"unicode/utf8"
)

// Room name limits (SPEC §2).
const (
	MaxRoomName        = 128
	MaxRoomsPerRequest = 50
)

// ValidRoomName reports whether name is 1–128 characters of A-Z a-z 0-9 _ - . : @.
func ValidRoomName(name string) bool {
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxRoomName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':' || c == '@':
		default:
			return false
		}
	}
	return true
}

// checkRoom validates one room name for a request field.
func checkRoom(field, name string) error {
	if !ValidRoomName(name) {
		return Errorf(CodeBadRequest, "%s must be 1-%d characters of A-Z a-z 0-9 _ - . : @", field, MaxRoomName)
	}
	return nil
}

// checkRooms validates a request's room list: 1–50 valid names.
func checkRooms(field string, rooms []string) error {
	if len(rooms) < 1 || len(rooms) > MaxRoomsPerRequest {
		return Errorf(CodeBadRequest, "%s must hold 1-%d rooms", field, MaxRoomsPerRequest)
	}
	for _, r := range rooms {
		if err := checkRoom(field, r); err != nil {
			return err
		}
	}
	return nil
}

// MayJoin reports whether id may be in room: never another user's user room, and within the
// token's rooms claim when there is one (a trailing * matches any suffix, the empty one too).
func (id Identity) MayJoin(room string) bool {
	if strings.HasPrefix(room, UserRoomPrefix) {
		return room == UserRoom(id.User.ID)
	}
	if id.Rooms == nil {
		return true
	}
	for _, p := range id.Rooms {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(room, prefix) {
				return true
			}
		} else if p == room {
			return true
		}
	}
	return false
}
