// Package adapters holds the cluster backends of the Socket.IO server (package socketio): the
// adapters that share rooms, broadcasts and requests between nodes through Redis, and the Redis
// connection they hold (conn.go). The full description is written with the adapters.
package adapters
