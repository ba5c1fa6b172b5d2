package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/gossip"
)

// BenchmarkPipeline drives whole pipelines through the request path of a
// real node (dispatch, the commands, the write path) as redis-benchmark -c 50
// -P 16 -r 100000 does, without the network. One op is one command.
//
//	go test ./node -run '^$' -bench Pipeline -benchmem
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name string
		cmd  func(r *rand.Rand) [][]byte
	}{
		{"set", func(r *rand.Rand) [][]byte {
			return [][]byte{[]byte("SET"), key(r), make([]byte, 3)}
		}},
		{"get", func(r *rand.Rand) [][]byte {
			return [][]byte{[]byte("GET"), key(r)}
		}},
		{"incr", func(r *rand.Rand) [][]byte {
			return [][]byte{[]byte("INCR"), key(r)}
		}},
		{"mset", func(r *rand.Rand) [][]byte {
			args := [][]byte{[]byte("MSET")}
			for range 10 {
				args = append(args, key(r), make([]byte, 3))
			}
			return args
		}},
	} {
		for _, depth := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/P%d", bc.name, depth), func(b *testing.B) {
				n, err := Open(Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", Mesh: gossip.Config{Disabled: true}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				defer n.Close()
				b.SetParallelism(25) // × GOMAXPROCS(2) = 50 clients
				b.ResetTimer()
				cpu0, _ := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.New(rand.NewPCG(rand.Uint64(), 0))
					buf := &replyBuf{}
					c := &client{n: n, id: n.clientID.Add(1), w: buf, ctx: context.Background(), authed: true}
					pipe := make([][][]byte, depth)
					for {
						for i := range pipe {
							if !pb.Next() {
								return
							}
							pipe[i] = bc.cmd(r)
						}
						buf.reset()
						n.runPipeline(c, pipe)
					}
				})
				// CPU per command varies less than time per command on a
				// machine whose cores other work shares.
				cpu1, _ := cpuTime()
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func key(r *rand.Rand) []byte { return fmt.Appendf(nil, "key:%012d", r.IntN(100_000)) }
