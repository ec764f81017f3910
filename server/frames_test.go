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
	pa1, err := c.prepared(a)
	if err != nil {
		t.Fatal(err)
	}
	pa2, _ := c.prepared(a)
	pb, _ := c.prepared(b)
	if pa1 != pa2 {
		t.Fatal("two recipients of one frame got two prepared messages")
	}
	if pa1 == pb {
		t.Fatal("two frames share a prepared message")
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
		if _, err := c.prepared(types.NewStringBufferString(`42["tick"]`)); err != nil {
			t.Fatal(err)
		}
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
		if _, err := c.prepared(keep[i]); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.len(); n != maxSharedFrames {
		t.Fatalf("cache holds %d frames, want the bound %d", n, maxSharedFrames)
	}
	// Past the bound a frame still gets a (private) prepared message.
	if pm, err := c.prepared(keep[len(keep)-1]); err != nil || pm == nil {
		t.Fatalf("prepared past the bound = %v, %v", pm, err)
	}
	runtime.KeepAlive(keep)
}

func TestFrameCacheBinaryFrameIsNotShared(t *testing.T) {
	c := newFrameCache()
	if _, err := c.prepared(types.NewBytesBuffer([]byte{1, 2})); err != nil {
		t.Fatal(err)
	}
	if c.len() != 0 {
		t.Fatal("a binary frame was cached")
	}
}
