package server

import (
	"sync"
	"testing"
)

func TestWarmPoolRunsAndWaits(t *testing.T) {
	p := newWarmPool()
	defer p.close()
	for i := range 100 {
		ran := false
		p.do(func() { ran = true })
		if !ran {
			t.Fatalf("do %d returned before its function ran", i)
		}
	}
}

// With every worker inside a task, do must run the next one itself: sent to a worker it would
// wait for ever.
func TestWarmPoolRunsInlineWhenNoWorkerIsIdle(t *testing.T) {
	p := newWarmPool()
	defer p.close()
	release := make(chan struct{})
	var started, finished sync.WaitGroup
	started.Add(p.n)
	finished.Add(p.n)
	for range p.n {
		go func() {
			defer finished.Done()
			p.do(func() {
				started.Done()
				<-release
			})
		}()
	}
	started.Wait()
	ran := false
	p.do(func() { ran = true })
	if !ran {
		t.Fatal("the function did not run")
	}
	close(release)
	finished.Wait()
}

func TestWarmPoolRaisesPanicsOnTheCaller(t *testing.T) {
	p := newWarmPool()
	defer p.close()
	got := func() (v any) {
		defer func() { v = recover() }()
		p.do(func() { panic("boom") })
		return nil
	}()
	if got != "boom" {
		t.Fatalf("recovered %v, want boom", got)
	}
	// The worker survived: the pool still runs tasks.
	ran := false
	p.do(func() { ran = true })
	if !ran {
		t.Fatal("the pool stopped after a panic")
	}
}

func TestWarmPoolAfterClose(t *testing.T) {
	p := newWarmPool()
	p.close()
	p.close() // idempotent
	ran := false
	p.do(func() { ran = true })
	if !ran {
		t.Fatal("do after close did not run its function")
	}
}
