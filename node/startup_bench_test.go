package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// BenchmarkOpen1M measures a node's start-up with 1,000,000 keys of 16 bytes
// with 100-byte values: reading the keyspace into the version index and
// rebuilding the Merkle tree from it. Run with
//
//	go test ./node -run '^$' -bench Open1M -benchtime 3x
func BenchmarkOpen1M(b *testing.B) {
	dir := b.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Open(Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	const total, batch = 1_000_000, 2_000
	for i := 0; i < total; i += batch {
		err := n.store.Update(context.Background(), func(tx *wal.Tx) error {
			for j := i; j < i+batch; j++ {
				v, err := n.newVersion()
				if err != nil {
					return err
				}
				rec := record.Record{Value: record.Value{Version: v, Data: value}, Expiry: record.Expiry{Version: v}}
				if _, _, err := n.apply(tx, []byte(fmt.Sprintf("key:%012d", j)), rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	root := n.MerkleRoot()
	n.Close()

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n, err := Open(Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/open")
		if n.MerkleRoot() != root || n.store.KeyCount() != total {
			b.Fatalf("reopened with root %x and %d keys", n.MerkleRoot(), n.store.KeyCount())
		}
		n.Close()
	}
}
