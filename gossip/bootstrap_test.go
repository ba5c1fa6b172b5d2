package gossip

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// fill writes n keys prefix0..prefix(n-1) on l, in batches.
func (l *testLocal) fill(t *testing.T, self uint64, prefix string, n, valueLen int) {
	t.Helper()
	val := make([]byte, valueLen)
	for lo := 0; lo < n; lo += 5000 {
		err := l.db.Update(context.Background(), func(tx *keyspace.Tx) error {
			v := record.Version{TS: l.stamp(), Node: record.NodeID(self)}
			for i := lo; i < min(lo+5000, n); i++ {
				rec := record.Record{Value: record.Value{Version: v, Data: val}, Expiry: record.Expiry{Version: v}}
				if _, _, err := tx.Apply(fmt.Appendf(nil, "%s%d", prefix, i), rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestBootstrapFromSnapshot: an empty node joining a node with many keys
// streams its snapshot (no Merkle walk over its keys), takes the
// writes made meanwhile from the log, and ends with the same root.
func TestBootstrapFromSnapshot(t *testing.T) {
	// Chunks of 64 KiB: a stream of about twenty of them, of which writes
	// interleave with the first.
	const keys = 10_000
	a, la := startTestMesh(t)
	la.fill(t, a.cfg.Self, "k", keys, 100)
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	b, lb := startTestMeshWith(t, key, "/ip4/127.0.0.1/tcp/0", func(c *Config) { c.SnapshotChunkBytes = 64 << 10 }, a.Addrs()[0])
	// Writes go on at a while b streams.
	var stop atomic.Bool
	var wg sync.WaitGroup
	wrote := 0
	wg.Go(func() {
		for i := 0; !stop.Load() && i < 2000; i++ {
			la.set(t, a.cfg.Self, fmt.Sprintf("during%d", i), "x")
			wrote++
		}
	})
	waitFor(t, "b's bootstrap", func() bool { return b.Info().BootstrapKeys > 0 })
	stop.Store(true)
	wg.Wait()
	waitFor(t, "equal roots", func() bool { return la.MerkleRoot() == lb.MerkleRoot() && !b.SyncInProgress() })
	if got := lb.db.KeyCount(); got != int64(keys+wrote) {
		t.Fatalf("b holds %d keys, want %d", got, keys+wrote)
	}
	in := b.Info()
	// Merkle sessions resume once the snapshot is in: they may repair only
	// what was written meanwhile, never walk the keyspace.
	if in.Bootstraps < 1 || in.BootstrapKeys < keys || in.KeysRepaired > uint64(wrote) || in.Bootstrap.Keys < keys {
		t.Fatalf("b did not bootstrap from the snapshot alone: %+v", in)
	}
	if in.Bootstrap.Keys > in.Bootstrap.KeysTotal+uint64(wrote) || in.Bootstrap.Bytes == 0 || in.Bootstrap.BytesTotal == 0 {
		t.Fatalf("progress %+v", in.Bootstrap)
	}
	if a.Info().SnapshotsServed < 1 {
		t.Fatal("a served no snapshot")
	}
}
