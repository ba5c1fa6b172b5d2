package e2e

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestFloatCountersAddUpAcrossNodes: two nodes take INCRBYFLOAT and
// HINCRBYFLOAT of the same keys at once, connected, then cut off from each
// other (a SET and an HSET at one, increments at the other); once together
// again both read the same bytes, every increment counted: binary fractions
// add up exactly, and a SET or HSET resets only the increments it observed.
func TestFloatCountersAddUpAcrossNodes(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)

	const perNode = 150
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, n := range []*meshNode{a, b} {
		by := []string{"1.5", "0.25"}[i]
		wg.Add(1)
		go func(c *redis.Client) {
			defer wg.Done()
			for range perNode {
				for _, args := range [][]any{{"INCRBYFLOAT", "f", by}, {"HINCRBYFLOAT", "h", "x", by}, {"INCRBYFLOAT", "tenth", "0.1"}} {
					if err := c.Do(ctx, args...).Err(); err != nil {
						errs <- fmt.Errorf("%v: %w", args, err)
						return
					}
				}
			}
		}(n.c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := map[string]string{"f": "262.5", "h": "hash:x=262.5"} // 150 × 1.5 + 150 × 0.25
	converge(t, a, b, want)
	// 300 increments of 0.1, in whatever interleaving: the same bits on
	// both nodes, and every increment counted (to the last digits).
	tenth := a.dump(t)["tenth"].value
	if v, ok := new(big.Float).SetString(tenth); !ok || v.Cmp(big.NewFloat(29.999)) < 0 || v.Cmp(big.NewFloat(30.001)) > 0 {
		t.Fatalf("300 concurrent INCRBYFLOAT 0.1 read %q, want 30", tenth)
	}

	// Apart: a overwrites what it observed, b increments.
	args := b.args
	b.kill()
	b.restart(t, "--no-mesh")
	for _, cmd := range [][]any{{"SET", "f", "100"}, {"HSET", "h", "x", "7"}} {
		if err := a.c.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range [][]any{{"INCRBYFLOAT", "f", "2.5"}, {"HINCRBYFLOAT", "h", "x", "-0.5"}, {"INCRBYFLOAT", "new", "0.75"}} {
		if err := b.c.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.c.Do(ctx, "INCRBYFLOAT", "new", "1.25").Err(); err != nil {
		t.Fatal(err)
	}
	b.kill()
	b.restart(t, args...)
	waitConnected(t, 1, a, b)
	want = map[string]string{"f": "102.5", "h": "hash:x=6.5", "new": "2"}
	converge(t, a, b, want)
	// And on from there, as Redis: 2 + 0.1 prints as 2.1.
	if got, err := b.c.Do(ctx, "INCRBYFLOAT", "new", "0.1").Text(); err != nil || got != "2.1" {
		t.Fatalf("INCRBYFLOAT new 0.1 after the merge: %q, %v; want 2.1", got, err)
	}
}

// converge waits until both nodes hold the same keys, and checks want's.
func converge(t *testing.T, a, b *meshNode, want map[string]string) {
	t.Helper()
	var da, db map[string]keyState
	waitUntil(t, 30*time.Second, "the nodes to converge", func() bool {
		da, db = a.dump(t), b.dump(t)
		return equalDumps(da, db)
	})
	for k, v := range want {
		if got := da[k].value; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestHincrbyToZeroAfterUnseenDelete: a DEL at one node that did not
// observe an HINCRBY at the other leaves the field holding that
// increment; an HINCRBY that brings it to 0 leaves the field at "0" on
// both nodes, as Redis shows a field incremented to 0.
func TestHincrbyToZeroAfterUnseenDelete(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)
	if err := a.c.HSet(ctx, "h", "f", "10").Err(); err != nil {
		t.Fatal(err)
	}
	converge(t, a, b, map[string]string{"h": "hash:f=10"})

	// Apart: b increments, a deletes the hash without seeing it.
	args := b.args
	b.kill()
	b.restart(t, "--no-mesh")
	if err := b.c.HIncrBy(ctx, "h", "f", 5).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Del(ctx, "h").Err(); err != nil {
		t.Fatal(err)
	}
	b.kill()
	b.restart(t, args...)
	waitConnected(t, 1, a, b)
	converge(t, a, b, map[string]string{"h": "hash:f=5"})

	if got, err := a.c.HIncrBy(ctx, "h", "f", -5).Result(); err != nil || got != 0 {
		t.Fatalf("HINCRBY h f -5: %d, %v; want 0", got, err)
	}
	converge(t, a, b, map[string]string{"h": "hash:f=0"})
}
