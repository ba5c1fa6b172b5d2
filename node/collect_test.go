package node

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveRecords is every live key's record, with data, in n's table.
func liveRecords(n *Node) map[string]record.Record {
	var keys []string
	n.db.Table().Each(1, func(_ int, key []byte, rec record.Record) {
		if rec.Live(n.nowMillis()) {
			keys = append(keys, string(key)) // the table is not to be called from here
		}
	})
	out := map[string]record.Record{}
	for _, k := range keys {
		if full, ok := n.db.Table().Get([]byte(k)); ok && full.Live(n.nowMillis()) {
			out[k] = full
		}
	}
	return out
}

// TestLoneNodeCollects: on a node that never had a peer, deleted and expired
// keys leave the table entirely, the Merkle root is a fresh node's holding
// only the live data, and a restart brings nothing removed back.
func TestLoneNodeCollects(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, ca := openNode(t, dir)
	if h := a.collectHorizon(); h != math.MaxUint64 {
		t.Fatalf("a node alone has horizon %d", h)
	}
	for i := range 3000 {
		k := fmt.Sprintf("k%d", i)
		switch i % 3 {
		case 0:
			ca.Set(ctx, k, "v", 0)
		case 1:
			ca.Set(ctx, k, "v", 0)
			ca.Del(ctx, k)
		case 2:
			ca.Set(ctx, k, "v", 50*time.Millisecond)
		}
	}
	ca.SAdd(ctx, "set", "a", "b")
	ca.HSet(ctx, "hash", "f", "v")
	ca.Del(ctx, "hash")
	tab := a.db.Table()
	waitFor(t, 20*time.Second, "deleted and expired keys leave the table", func() bool {
		return tab.KeyCount() == 1001 && tab.Stats().Entries == 1001
	})
	if n, _ := ca.DBSize(ctx).Result(); n != 1001 {
		t.Fatalf("DBSIZE %d, want 1001", n)
	}
	// The deletes' tombstones and the hash's were collected; the expired
	// keys were removed by the sweep, which counts them as expired_keys.
	if got := a.stats.collected.Load(); got != 1001 {
		t.Fatalf("tombstones_collected %d, want 1001", got)
	}
	for i := 1; i < 3000; i += 3 {
		if r := tab.Peek(fmt.Appendf(nil, "k%d", i)); r.Written() {
			t.Fatalf("deleted k%d is still in the table: %+v", i, r)
		}
	}
	if fresh, err := newMerkleIndex(); err != nil {
		t.Fatal(err)
	} else if _, err := fresh.rebuild(tab); err != nil {
		t.Fatal(err)
	} else if fresh.root() != a.MerkleRoot() {
		t.Fatalf("the index's root %x differs from one rebuilt from the table, %x", a.MerkleRoot(), fresh.root())
	}
	if r := tab.Peek([]byte("hash")); r.Written() {
		t.Fatalf("the deleted hash is still in the table: %+v", r)
	}
	// A fresh node given the live records (same versions) has the same root.
	b, _ := openNode(t, t.TempDir())
	var recs []merkle.Record
	for k, r := range liveRecords(a) {
		recs = append(recs, merkle.Record{Key: []byte(k), Payload: record.Encode(r)})
	}
	if _, err := b.ApplyRemote(ctx, recs, 0); err != nil {
		t.Fatal(err)
	}
	if a.MerkleRoot() != b.MerkleRoot() {
		t.Fatalf("root %x, a fresh node with the same live data %x", a.MerkleRoot(), b.MerkleRoot())
	}

	// A clean restart, then one without a checkpoint (the log replayed):
	// nothing deleted or expired comes back, or if the replay brings a
	// tombstone back, it is collected again.
	want := liveRecords(a)
	ca.Close()
	a.Close()
	for _, how := range []string{"clean", "log replayed"} {
		a2, ca2 := openNode(t, dir)
		tab2 := a2.db.Table()
		got := liveRecords(a2)
		if len(got) != len(want) {
			t.Fatalf("%s restart: %d live keys, want %d", how, len(got), len(want))
		}
		for k, w := range want {
			if g, ok := got[k]; !ok || !record.Equal(g, w) {
				t.Fatalf("%s restart: %s = %+v, want %+v", how, k, g, w)
			}
		}
		waitFor(t, 20*time.Second, "replayed tombstones are collected again", func() bool {
			return tab2.Stats().Entries == 1001
		})
		if how == "clean" {
			// Write and delete more, then stop without a checkpoint: the next
			// start replays the log, tombstones included.
			ca2.Set(ctx, "late", "v", 0)
			ca2.Del(ctx, "late")
			want = liveRecords(a2)
			ca2.Close()
			if err := a2.shutdown(ShutdownOptions{Now: true, NoSave: true}, shutdownMode{}); err != nil {
				t.Fatal(err)
			}
		} else {
			ca2.Close()
			a2.Close()
		}
	}
}

// TestSweepIsLocal: a lone node reclaims many expired keys (their pace is
// measured by bench/ttl.sh), and the sweep writes nothing to the log.
func TestSweepIsLocal(t *testing.T) {
	ctx := context.Background()
	a, _ := openNode(t, t.TempDir())
	// One try, however long it takes under the race detector: a retried
	// pipeline writes its keys again, and they expire twice.
	ca := redis.NewClient(&redis.Options{Addr: a.Addr().String(), Protocol: 2, MaxRetries: -1, ReadTimeout: time.Minute})
	defer ca.Close()
	pipe := ca.Pipeline()
	val := bytes.Repeat([]byte{'v'}, 64)
	for i := range 50000 {
		pipe.Set(ctx, fmt.Sprintf("sess:%d", i), val, 100*time.Millisecond)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	_, last := a.wal.LogBounds()
	tab := a.db.Table()
	waitFor(t, 20*time.Second, "50,000 expired keys swept", func() bool { return tab.Stats().Entries == 0 })
	if tab.KeyCount() != 0 || tab.ExpiresCount() != 0 {
		t.Fatalf("counts %d keys, %d expires", tab.KeyCount(), tab.ExpiresCount())
	}
	if _, now := a.wal.LogBounds(); now != last {
		t.Fatalf("the sweep logged %d entries", now-last)
	}
	if a.stats.expiredKeys.Load() != 50000 {
		t.Fatalf("expired_keys %d", a.stats.expiredKeys.Load())
	}
	if empty, _ := merkle.NewTree(merkle.DefaultShape); a.MerkleRoot() != empty.Root() {
		t.Fatalf("an empty keyspace has root %x, not an empty tree's %x", a.MerkleRoot(), empty.Root())
	}
}

// TestWatchSeesThroughCollection: a key WATCH saw deleted stays until EXEC,
// so that EXEC runs if nothing touched it and aborts if another client wrote
// and deleted it again, collection or not.
func TestWatchSeesThroughCollection(t *testing.T) {
	ctx := context.Background()
	a, ca := openNode(t, t.TempDir())
	other := ca // a second connection comes from the pool
	for _, touched := range []bool{false, true} {
		ca.Set(ctx, "w", "v", 0)
		ca.Del(ctx, "w")
		err := ca.Watch(ctx, func(tx *redis.Tx) error {
			if touched {
				other.Set(ctx, "w", "again", 0)
				other.Del(ctx, "w")
			}
			// Collection passes go by (run here, not waited for).
			for range 2 {
				if err := a.collectPass(); err != nil {
					t.Fatal(err)
				}
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "done", "1", 0)
				return nil
			})
			return err
		}, "w")
		switch {
		case touched && err != redis.TxFailedErr:
			t.Fatalf("EXEC after the watched key was written and deleted: %v, want an abort", err)
		case !touched && err != nil:
			t.Fatalf("EXEC with the watched key untouched: %v", err)
		}
	}
	waitFor(t, 20*time.Second, "the unwatched tombstone is collected", func() bool {
		return !a.db.Table().Peek([]byte("w")).Written()
	})
}

// TestNodeWithPeersKeepsTombstones: a node that has a peer (horizon 0)
// sweeps expired keys into tombstones, unlogged, and collects nothing: the
// mesh's stable frontier decides, not the node alone.
func TestNodeWithPeersKeepsTombstones(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	if h := a.collectHorizon(); h != 0 {
		t.Fatalf("a node with a peer has horizon %d", h)
	}
	ca.Set(ctx, "deleted", "v", 0)
	ca.Del(ctx, "deleted")
	ca.Set(ctx, "expiring", "v", 50*time.Millisecond)
	_, last := a.wal.LogBounds()
	waitFor(t, 20*time.Second, "the expired key is swept", func() bool { return a.db.Table().KeyCount() == 0 })
	if err := a.collectPass(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deleted", "expiring"} {
		if r := a.db.Table().Peek([]byte(k)); !r.Written() || r.Exists() {
			t.Fatalf("%s: %+v, want its tombstone kept", k, r)
		}
	}
	if _, now := a.wal.LogBounds(); now != last {
		t.Fatalf("the sweep logged %d entries", now-last)
	}
	if a.logStable() != 0 {
		t.Fatal("the log is given up while peers may need it")
	}
}

// TestTracesCollectedPromptly: a removal trace in a typed key is collected
// within seconds once stable, as a tombstone is, not on the idle pace of a
// minute (which kept quiet nodes' Merkle roots apart that long).
func TestTracesCollectedPromptly(t *testing.T) {
	ctx := context.Background()
	a, ca := openNode(t, t.TempDir())
	tab := a.db.Table()
	traced := func() bool { return tab.Peek([]byte("set")).Typed.HasTraces() }
	for round := range 3 {
		// The first round's pass may be the collector's first; the later
		// ones come after a pass that found nothing left to collect.
		m := fmt.Sprint("m", round)
		if err := ca.SAdd(ctx, "set", "keep", m).Err(); err != nil {
			t.Fatal(err)
		}
		if err := ca.SRem(ctx, "set", m).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, fmt.Sprintf("round %d: the SREM's trace is collected", round), func() bool { return !traced() })
		time.Sleep(1500 * time.Millisecond) // let a pass find nothing: the next trace comes after it
	}
}
