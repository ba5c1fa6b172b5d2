package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestForgottenNodeBringsNothingBack: a node is killed with SIGKILL while the
// others delete half the keys, forget it and collect the deletes; restarted,
// it holds the deleted keys, yet no node, itself included, shows them again,
// and it gets back everything the others still hold.
func TestForgottenNodeBringsNothingBack(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	c := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 2, a, b, c)
	const keys = 200
	for i := range keys {
		if err := a.c.Set(ctx, fmt.Sprintf("k%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*meshNode{b, c} {
		waitUntil(t, 60*time.Second, "every key on "+n.id, func() bool { return n.c.DBSize(ctx).Val() == keys })
	}
	c.kill()
	for i := range keys / 2 {
		if err := a.c.Del(ctx, fmt.Sprintf("k%d", i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 60*time.Second, "the deletes on b", func() bool { return b.c.DBSize(ctx).Val() == keys/2 })
	waitUntil(t, 60*time.Second, "a to name c as what holds collection back", func() bool {
		return a.info(t)["gc_held_back_by"] == c.id && a.infoInt(t, "gc_tombstones") >= keys/2
	})
	if out, err := runRedmesh(t, "forget", "-a", a.addr, c.id); err != nil {
		t.Fatalf("redmesh forget: %v\n%s", err, out)
	}
	if err := b.c.Do(ctx, "MESH", "FORGET", c.id).Err(); err != nil {
		t.Fatal(err)
	}
	// Collected: the deleted keys' records are gone from a and b.
	collected := func(n *meshNode) bool {
		for i := range keys / 2 {
			v, err := n.c.Do(ctx, "MESH", "VERSION", fmt.Sprintf("k%d", i)).Slice()
			if err != nil || v[0].(int64) != 0 {
				return false
			}
		}
		return true
	}
	for _, n := range []*meshNode{a, b} {
		waitUntil(t, 60*time.Second, "the deletes collected on "+n.id, func() bool { return collected(n) })
	}
	if a.infoInt(t, "gc_forgotten_members") != 1 || a.infoInt(t, "gc_collected") < keys/2 {
		t.Fatalf("a: forgotten %d, collected %d", a.infoInt(t, "gc_forgotten_members"), a.infoInt(t, "gc_collected"))
	}

	c.restart(t, "--peer", a.maddr())
	waitUntil(t, 60*time.Second, "c linked again", func() bool { return c.infoInt(t, "mesh_connected_peers") == 2 })
	waitUntil(t, 60*time.Second, "c to hold what the others hold, and only that", func() bool {
		if c.c.DBSize(ctx).Val() != keys/2 {
			return false
		}
		for i := keys / 2; i < keys; i++ {
			if c.c.Exists(ctx, fmt.Sprintf("k%d", i)).Val() != 1 {
				return false
			}
		}
		return true
	})
	for _, n := range []*meshNode{a, b, c} {
		for i := range keys / 2 {
			if n.c.Exists(ctx, fmt.Sprintf("k%d", i)).Val() != 0 {
				t.Fatalf("k%d is back on %s", i, n.id)
			}
		}
	}
	aside, err := c.c.Do(ctx, "MESH", "SETASIDE").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if aside[0].(int64) < keys/2 {
		t.Fatalf("c set aside %d keys, want at least the %d deleted", aside[0], keys/2)
	}
	if c.infoInt(t, "gc_forgotten_members") != 0 || a.infoInt(t, "gc_forgotten_returned") != 1 {
		t.Fatalf("forgotten members on c %d, returned on a %d", c.infoInt(t, "gc_forgotten_members"), a.infoInt(t, "gc_forgotten_returned"))
	}
}
