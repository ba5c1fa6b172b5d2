package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// BenchmarkOpen1M measures a node's start-up with 1,000,000 keys of 16 bytes
// with 100-byte values: loading the keyspace and rebuilding the Merkle tree
// from it. "clean" opens after a clean shutdown (an exact checkpoint);
// "crash" opens with the checkpoint taken before the last 100,000 writes,
// as after a kill -9, so those are replayed from the log; "no-checkpoint"
// replays the whole log. Run with
//
//	go test ./node -run '^$' -bench Open1M -benchtime 3x
func BenchmarkOpen1M(b *testing.B) {
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: quiet}
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	writeKeys(b, n, 0, 1_000_000)
	n.Close()
	snapshot := filepath.Join(dir, "keyspace.checkpoint")
	before, err := os.ReadFile(snapshot)
	if err != nil {
		b.Fatal(err)
	}
	if n, err = Open(cfg); err != nil {
		b.Fatal(err)
	}
	writeKeys(b, n, 500_000, 100_000)
	root := n.MerkleRoot()
	n.Close()
	after, err := os.ReadFile(snapshot)
	if err != nil {
		b.Fatal(err)
	}

	for _, c := range []struct {
		name string
		snap []byte
	}{{"clean", after}, {"crash", before}, {"no-checkpoint", nil}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				os.Remove(snapshot)
				if c.snap != nil {
					if err := os.WriteFile(snapshot, c.snap, 0o600); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				start := time.Now()
				n, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "s/open")
				b.StopTimer()
				if n.MerkleRoot() != root || n.db.KeyCount() != 1_000_000 {
					b.Fatalf("reopened with root %x and %d keys", n.MerkleRoot(), n.db.KeyCount())
				}
				n.Close()
				b.StartTimer()
			}
		})
	}
}

// writeKeys sets count keys from key number first on, 2,000 to a batch.
func writeKeys(b *testing.B, n *Node, first, count int) {
	value := make([]byte, 100)
	const batch = 2_000
	for i := first; i < first+count; i += batch {
		err := n.db.Update(context.Background(), func(tx *keyspace.Tx) error {
			for j := i; j < min(i+batch, first+count); j++ {
				v, err := n.newVersion()
				if err != nil {
					return err
				}
				rec := record.Record{Value: record.Value{Version: v, Data: value}, Expiry: record.Expiry{Version: v}}
				if _, _, err := n.apply(tx, fmt.Appendf(nil, "key:%012d", j), rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
