package node

import (
	"context"
	"fmt"
	"testing"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// TestSetAsideBelow: a node told it was forgotten takes every write up to
// the horizon out of its keyspace, lists the keys, keeps the newer writes,
// and a restart (from the checkpoint it wrote) brings nothing back.
func TestSetAsideBelow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n, c := openPeer(t, dir)
	for i := range 500 {
		c.Set(ctx, fmt.Sprintf("old%d", i), "v", 0)
	}
	c.HSet(ctx, "h", "f", "1")
	horizon, err := n.clock.Now()
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, "new", "v", 0)
	c.HSet(ctx, "h", "g", "2") // the hash keeps its newer field only
	changed, err := n.SetAsideBelow(horizon)
	if err != nil {
		t.Fatal(err)
	}
	if changed != 501 {
		t.Fatalf("changed %d keys, want 501", changed)
	}
	check := func(n *Node) {
		t.Helper()
		if got := liveRecords(n); len(got) != 2 {
			t.Fatalf("%d live keys left, want new and h", len(got))
		}
		if v, ok := n.db.Get([]byte("h")).Typed.FieldValue([]byte("g")); !ok || string(v) != "2" {
			t.Fatalf("h's newer field: %q %v", v, ok)
		}
		if _, ok := n.db.Get([]byte("h")).Typed.FieldValue([]byte("f")); ok {
			t.Fatal("h kept its older field")
		}
	}
	check(n)
	if count, keys := n.setAside.snapshot(); count != 501 || len(keys) != 501 {
		t.Fatalf("set aside %d, listed %d", count, len(keys))
	}
	root := n.MerkleRoot()
	n.Close()
	n2, _ := openPeer(t, dir)
	check(n2)
	if n2.MerkleRoot() != root {
		t.Fatalf("root after restart %x, before %x", n2.MerkleRoot(), root)
	}
}

// A peer's tombstone of a key this node does not hold, at or before the
// horizon, is not stored only to be collected again; one of a key it holds
// is applied.
func TestCollectedAlreadyIsNotStored(t *testing.T) {
	ctx := context.Background()
	n, c := openNode(t, t.TempDir()) // alone: everything is stable
	c.Set(ctx, "held", "v", 0)
	v := record.Version{TS: 1, Node: 7}
	del := func(k string) merkle.Record {
		return merkle.Record{Key: []byte(k), Payload: record.Encode(record.Record{Value: record.Value{Version: v, Tombstone: true}, Expiry: record.Expiry{Version: v}})}
	}
	if _, err := n.ApplyRemote(ctx, []merkle.Record{del("absent")}, 0); err != nil {
		t.Fatal(err)
	}
	if rec := n.db.Get([]byte("absent")); rec.Written() {
		t.Fatalf("a collectable tombstone was stored: %+v", rec)
	}
	ts, err := n.clock.Now()
	if err != nil {
		t.Fatal(err)
	}
	later := record.Version{TS: ts, Node: 7}
	rec := record.Record{Value: record.Value{Version: later, Tombstone: true}, Expiry: record.Expiry{Version: later}}
	if _, err := n.ApplyRemote(ctx, []merkle.Record{{Key: []byte("held"), Payload: record.Encode(rec)}}, 0); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, "held").Val() != 0 {
		t.Fatal("a delete of a held key was not applied")
	}
}
