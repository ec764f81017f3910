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
	// Append gives msg the next id of its room, calls deliver with it and, when deliver
	// succeeded, stores it (dropping the room's oldest beyond the configured bound). Calls to
	// deliver for one room happen in id order and never overlap, so members receive a room's
	// messages in the order of their ids. deliver's error (the cluster could not take the
	// message) is Append's, and the message is not kept; once deliver succeeded, Append
	// succeeds (a store failing then leaves the message out of the history only).
	Append(ctx context.Context, msg Message, deliver func(Message) error) (Message, error)
	// Before returns up to limit of the room's newest messages older than the message with id
	// before ("" means the newest), oldest first.
	Before(ctx context.Context, room, before string, limit int) ([]Message, error)
}
