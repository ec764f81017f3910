package server

import (
	"runtime"
	"sync"
	"weak"

	ws "github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// maxSharedFrames bounds the prepared frames kept at once. A frame is kept while its broadcast's
// buffer is reachable (queued for a recipient that has not been written yet); past the bound new
// broadcasts get a frame per recipient.
const maxSharedFrames = 1024

// frameCache shares one websocket frame (header and payload, ready for the socket) per pre-encoded
// broadcast among all of its recipients. The library's adapter encodes a broadcast once and hands the same buffer
// (packet.Options.WsPreEncodedFrame) to every recipient's engine socket; the cache is keyed by a
// weak pointer to that buffer, so it never keeps a frame alive, and an entry is dropped when the
// garbage collector frees the buffer (after the last recipient's packet is written or dropped).
// A freed buffer's address may be reused, but its weak pointer is never equal to a new one.
type frameCache struct {
	mu     sync.Mutex
	frames map[weak.Pointer[types.StringBuffer]][]byte
}

func newFrameCache() *frameCache {
	return &frameCache{frames: make(map[weak.Pointer[types.StringBuffer]][]byte)}
}

// frame returns the websocket frame of a broadcast's encoded packet, built once per buffer. The
// frame is shared: nobody may write to it. c may be nil.
func (c *frameCache) frame(data types.BufferInterface) []byte {
	sb, ok := data.(*types.StringBuffer)
	if c == nil || !ok {
		return encodeFrame(data)
	}
	key := weak.Make(sb)
	c.mu.Lock()
	f, hit := c.frames[key]
	c.mu.Unlock()
	if hit {
		return f
	}
	// Built outside the lock: two recipients may both build it the first time; one wins.
	f = appendFrame(make([]byte, 0, sb.Len()+10), ws.TextMessage, sb.Bytes())
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, hit := c.frames[key]; hit {
		return prev
	}
	if len(c.frames) >= maxSharedFrames {
		return f
	}
	c.frames[key] = f
	runtime.AddCleanup(sb, c.forget, key)
	return f
}

// forget drops the entry of a freed frame buffer.
func (c *frameCache) forget(key weak.Pointer[types.StringBuffer]) {
	c.mu.Lock()
	delete(c.frames, key)
	c.mu.Unlock()
}

// len is the number of frames kept (for tests).
func (c *frameCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}
