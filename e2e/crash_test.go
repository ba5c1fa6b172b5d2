package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// TestKill9KeepsMixedSizes: as TestKill9KeepsAcknowledgedWrites, with values
// from 1 byte to 16 MB, so that some log blocks span rows and some commits
// carry many megabytes when the node dies.
func TestKill9KeepsMixedSizes(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, dir, "--fsync", "always")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, PoolSize: 16, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	defer c.Close()
	value := func(w, i int) string {
		size := 1 << ((w*7 + i*5) % 25) // 1 B to 16 MB
		return strings.Repeat(string(rune('a'+(w+i)%26)), size)
	}
	const writers, keys = 8, 12
	type state struct{ acked, inflight map[string]int }
	states := make([]state, writers)
	var total atomic.Int64
	var bytes atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		states[w] = state{acked: map[string]int{}, inflight: map[string]int{}}
		wg.Go(func() {
			st := states[w]
			for i := 0; ; i++ {
				key := fmt.Sprintf("w%d:k%d", w, i%keys)
				st.inflight[key] = i
				v := value(w, i)
				if err := c.Set(ctx, key, v, 0).Err(); err != nil {
					return
				}
				delete(st.inflight, key)
				st.acked[key] = i
				total.Add(1)
				bytes.Add(int64(len(v)))
			}
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for (total.Load() < 400 || bytes.Load() < 200<<20) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.kill()
	wg.Wait()
	t.Logf("%d writes (%d MiB) acknowledged before kill -9", total.Load(), bytes.Load()>>20)

	p = startNode(t, dir, "--fsync", "always")
	c2 := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, ReadTimeout: time.Minute})
	defer c2.Close()
	for w, st := range states {
		for key, i := range st.acked {
			got, err := c2.Get(ctx, key).Result()
			if err != nil {
				t.Fatalf("acknowledged key %s lost: %v", key, err)
			}
			if got != value(w, i) {
				if in, ok := st.inflight[key]; !ok || got != value(w, in) {
					t.Fatalf("key %s holds %d bytes, not its acknowledged value of %d", key, len(got), len(value(w, i)))
				}
			}
		}
	}
	p.stop(t)
	s, err := wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := keyspace.Check(s); err != nil {
		t.Fatalf("log and checkpoint disagree after kill -9: %v", err)
	}
}
