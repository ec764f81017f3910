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
// broadcasts get a prepared message per recipient, as the library builds.
const maxSharedFrames = 1024

// frameCache shares one gorilla PreparedMessage per pre-encoded broadcast frame among all of its
// recipients. The library's adapter encodes a broadcast once and hands the same buffer
// (packet.Options.WsPreEncodedFrame) to every recipient's engine socket; the cache is keyed by a
// weak pointer to that buffer, so it never keeps a frame alive, and an entry is dropped when the
// garbage collector frees the buffer (after the last recipient's packet is written or dropped).
// A freed buffer's address may be reused, but its weak pointer is never equal to a new one.
type frameCache struct {
	mu     sync.Mutex
	frames map[weak.Pointer[types.StringBuffer]]*ws.PreparedMessage
}

func newFrameCache() *frameCache {
	return &frameCache{frames: make(map[weak.Pointer[types.StringBuffer]]*ws.PreparedMessage)}
}

// prepared returns the prepared message of frame, built once per frame buffer. c may be nil.
func (c *frameCache) prepared(frame types.BufferInterface) (*ws.PreparedMessage, error) {
	sb, ok := frame.(*types.StringBuffer)
	if c == nil || !ok {
		mt := ws.TextMessage
		if !ok {
			mt = ws.BinaryMessage
		}
		return ws.NewPreparedMessage(mt, frame.Bytes())
	}
	key := weak.Make(sb)
	c.mu.Lock()
	pm, hit := c.frames[key]
	c.mu.Unlock()
	if hit {
		return pm, nil
	}
	// Built outside the lock: two recipients may both build it the first time; one wins.
	pm, err := ws.NewPreparedMessage(ws.TextMessage, sb.Bytes())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, hit := c.frames[key]; hit {
		return prev, nil
	}
	if len(c.frames) >= maxSharedFrames {
		return pm, nil
	}
	c.frames[key] = pm
	runtime.AddCleanup(sb, c.forget, key)
	return pm, nil
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
