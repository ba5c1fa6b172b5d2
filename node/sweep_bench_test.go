package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// BenchmarkSweep measures the active expiry's cost per key: 200,000 keys
// whose deadline passed (64-byte values), swept and removed as on a node
// alone, one sweepExpired call after another (each at most its budget).
func BenchmarkSweep(b *testing.B) {
	const keys = 200_000
	val := make([]byte, 64)
	for b.Loop() {
		b.StopTimer()
		n, err := Open(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Mesh: gossip.Config{Disabled: true}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		for lo := 0; lo < keys; lo += 10_000 {
			err := n.db.Update(context.Background(), func(tx *keyspace.Tx) error {
				v, err := n.newVersion()
				if err != nil {
					return err
				}
				for i := lo; i < lo+10_000; i++ {
					rec := record.Record{Value: record.Value{Version: v, Data: val}, Expiry: record.Expiry{Version: v, At: 1}}
					if _, _, err := tx.Apply(fmt.Appendf(nil, "sess:%d", i), rec); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for n.db.Table().Stats().Entries > 0 {
			n.sweepExpired()
		}
		b.StopTimer()
		n.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys), "ns/key")
}
