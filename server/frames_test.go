package server

import (
	"runtime"
	"testing"
	"time"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

func TestFrameCacheSharesOneFramePerBuffer(t *testing.T) {
	c := newFrameCache()
	a := types.NewStringBufferString(`42["tick","a"]`)
	b := types.NewStringBufferString(`42["tick","a"]`) // same bytes, another broadcast
	fa1, fa2, fb := c.frame(a), c.frame(a), c.frame(b)
	if &fa1[0] != &fa2[0] {
		t.Fatal("two recipients of one broadcast got two frames")
	}
	if &fa1[0] == &fb[0] {
		t.Fatal("two broadcasts share a frame")
	}
	if want := "\x81\x0e" + `42["tick","a"]`; string(fa1) != want {
		t.Fatalf("frame = %q, want %q", fa1, want)
	}
	if n := c.len(); n != 2 {
		t.Fatalf("cache holds %d frames, want 2", n)
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

func TestFrameCacheDropsFreedFrames(t *testing.T) {
	c := newFrameCache()
	for i := 0; i < 10; i++ {
		c.frame(types.NewStringBufferString(`42["tick"]`))
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d frames still cached after their buffers became unreachable", c.len())
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine after the GC
	}
}

func TestFrameCacheIsBounded(t *testing.T) {
	c := newFrameCache()
	keep := make([]*types.StringBuffer, maxSharedFrames+10)
	for i := range keep {
		keep[i] = types.NewStringBufferString(`42["tick"]`).(*types.StringBuffer)
		c.frame(keep[i])
	}
	if n := c.len(); n != maxSharedFrames {
		t.Fatalf("cache holds %d frames, want the bound %d", n, maxSharedFrames)
	}
	// Past the bound a broadcast still gets a (private) frame.
	if f := c.frame(keep[len(keep)-1]); string(f) != "\x81\x0a"+`42["tick"]` {
		t.Fatalf("frame past the bound = %q", f)
	}
	runtime.KeepAlive(keep)
}

func TestFrameCacheBinaryFrameIsNotShared(t *testing.T) {
	c := newFrameCache()
	if f := c.frame(types.NewBytesBuffer([]byte{1, 2})); string(f) != "\x82\x02\x01\x02" {
		t.Fatalf("binary frame = %q", f)
	}
	if c.len() != 0 {
		t.Fatal("a binary frame was cached")
	}
}
