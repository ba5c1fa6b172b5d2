package node

import (
	"context"
	"testing"
	"time"
)

// TestShutdownAfterAbortIsNew: once SHUTDOWN ABORT has answered, the node
// serves on, and a shutdown asked for next is a new one, though the
// aborted one has not returned yet (it may still be waking from its wait
// for peers). Joining it instead returned its ErrShutdownAborted: a
// signal's shutdown right after an abort did not happen, and serve,
// still counting the aborted one as under way, took the signal for a
// second one and exited.
func TestShutdownAfterAbortIsNew(t *testing.T) {
	ctx := context.Background()
	n, c := openNodeAs(t, t.TempDir(), false)
	// A shutdown waiting for peers, as runShutdown leaves it there (this
	// node has no mesh to wait for): it has not returned when ABORT is
	// answered.
	r := &shutdownRun{abort: make(chan struct{}), finished: make(chan struct{})}
	defer close(r.finished)
	n.shut.mu.Lock()
	n.shut.run = r
	n.shut.mu.Unlock()
	if !n.ShutdownUnderWay() {
		t.Fatal("no shutdown under way while one waits for peers")
	}
	if got, err := c.Do(ctx, "SHUTDOWN", "ABORT").Text(); err != nil || got != "OK" {
		t.Fatalf("SHUTDOWN ABORT: %q, %v", got, err)
	}
	select {
	case <-r.abort:
	default:
		t.Fatal("SHUTDOWN ABORT did not cancel the wait")
	}
	if n.ShutdownUnderWay() {
		t.Fatal("a shutdown under way after SHUTDOWN ABORT answered")
	}
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING after the abort: %q, %v", got, err)
	}

	done := n.StartShutdown(ShutdownOptions{})
	if !n.ShutdownUnderWay() {
		t.Fatal("StartShutdown returned before its shutdown was under way")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the shutdown after the abort: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the shutdown after the abort waits for the aborted one")
	}
	select {
	case <-n.Done():
	default:
		t.Fatal("the shutdown returned, the node not closed")
	}
}
