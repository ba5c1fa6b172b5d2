package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/wal"
)

// TestKill9KeepsAcknowledgedWrites runs concurrent writers against a node with
// --fsync always, kills it with SIGKILL mid-load, restarts it, and checks that
// every acknowledged write is there with its value (or with the one write that
// was in flight on that key when the node died), and that the log and the
// checkpoint agree.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, dir, "--fsync", "always")
	ctx := context.Background()
	c := p.client(t)

	const writers = 24
	const keysPerWriter = 200 // keys are overwritten, so the last ack matters
	type state struct {
		acked    map[string]int // key → last acknowledged value
		inflight map[string]int // key → value sent but not (yet) acknowledged
	}
	states := make([]state, writers)
	var total atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		states[w] = state{acked: map[string]int{}, inflight: map[string]int{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := states[w]
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d:k%d", w, i%keysPerWriter)
				st.inflight[key] = i
				if err := c.Set(ctx, key, strconv.Itoa(i), 0).Err(); err != nil {
					return // the node died
				}
				delete(st.inflight, key)
				st.acked[key] = i
				total.Add(1)
			}
		}()
	}
	// Kill mid-load, once enough writes went through to be meaningful.
	deadline := time.Now().Add(60 * time.Second)
	for total.Load() < 5000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.kill()
	wg.Wait()
	if total.Load() < 1000 {
		t.Fatalf("only %d writes acknowledged before the kill", total.Load())
	}
	t.Logf("%d writes acknowledged before kill -9", total.Load())

	p = startNode(t, dir, "--fsync", "always")
	c = p.client(t)
	checked := 0
	for w, st := range states {
		for key, want := range st.acked {
			got, err := c.Get(ctx, key).Result()
			if err != nil {
				t.Fatalf("writer %d: acknowledged key %s lost: %v", w, key, err)
			}
			v, _ := strconv.Atoi(got)
			if v != want {
				if in, ok := st.inflight[key]; !ok || in != v {
					t.Fatalf("key %s = %s, want acknowledged %d", key, got, want)
				}
			}
			checked++
		}
	}
	t.Logf("%d acknowledged keys verified after restart", checked)

	p.stop(t)
	s, err := wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := keyspace.Check(s)
	if err != nil {
		t.Fatalf("log and checkpoint disagree after kill -9: %v", err)
	}
	if rep.Keys < int64(checked) {
		t.Fatalf("store holds %d keys, verified %d", rep.Keys, checked)
	}
	t.Logf("store check: %+v", rep)
}
