package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
)

// BenchmarkApplyRemoteBulk measures applying 200,000 records from a peer
// (16-byte keys, 100-byte values) into an empty node, as a bootstrap does,
// in write-path steps of the given number of records, that many steps at
// once.
func BenchmarkApplyRemoteBulk(b *testing.B) {
	const keys = 200_000
	v := record.Version{TS: 1 << 40, Node: 7}
	recs := make([]merkle.Record, keys)
	for i := range recs {
		rec := record.Record{Value: record.Value{Version: v, Data: make([]byte, 100)}, Expiry: record.Expiry{Version: v}}
		recs[i] = merkle.Record{Key: fmt.Appendf(nil, "key:%012d", i), Payload: record.Encode(rec)}
	}
	for _, c := range []struct{ step, inflight int }{{1024, 4}, {8192, 2}} {
		step := c.step
		b.Run(fmt.Sprintf("%dx%d", step, c.inflight), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				n, err := Open(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				// As a bootstrap applies: c.inflight steps at once.
				sem := make(chan struct{}, c.inflight)
				var wg sync.WaitGroup
				for lo := 0; lo < keys; lo += step {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						if _, err := n.ApplyRemote(context.Background(), recs[lo:min(lo+step, keys)], 0); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				n.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*keys), "ns/key")
		})
	}
}
