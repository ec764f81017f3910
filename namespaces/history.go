package namespaces

import "context"

// Message is one chat message as clients see it.
type Message struct {
	ID   string `json:"id"`
	Room string `json:"room"`
	User User   `json:"user"`
	Text string `json:"text"`
	TS   int64  `json:"ts"` // Unix milliseconds, from the server
}

// History keeps the newest messages of each chat room and hands out their ids. The memory
// implementation serves one node; a Redis one shares rooms across a cluster.
type History interface {
	// Append gives msg the next id of its room, stores it (dropping the room's oldest beyond the
	// configured bound) and calls deliver with it. Calls to deliver for one room happen in id
	// order and never overlap, so members receive a room's messages in the order of their ids.
	Append(ctx context.Context, msg Message, deliver func(Message)) (Message, error)
	// Before returns up to limit of the room's newest messages older than the message with id
	// before ("" means the newest), oldest first.
	Before(ctx context.Context, room, before string, limit int) ([]Message, error)
}
