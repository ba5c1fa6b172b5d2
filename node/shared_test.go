package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestClientsWritingOneKeyTogether: clients pipelining writes into one
// list and one hash, and running transactions, at the same time (their
// runs share write-path steps): each client's commands apply in its
// order, none interleaved with another's run, a failing command fails
// alone, and each transaction's commands run together.
func TestClientsWritingOneKeyTogether(t *testing.T) {
	_, c0 := openNode(t, t.TempDir())
	ctx := context.Background()
	addr := c0.Options().Addr
	const clients, rounds, each = 12, 15, 16
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, PoolSize: 1})
			defer c.Close()
			for r := range rounds {
				p := c.Pipeline()
				var pushes []*redis.IntCmd
				for j := range each {
					pushes = append(pushes, p.RPush(ctx, "list", fmt.Sprintf("c%02d:%03d", i, r*each+j)))
					if j == each/2 {
						p.HSet(ctx, "list", "f", "v") // WRONGTYPE, alone
					}
				}
				hset := p.HSet(ctx, "hash", fmt.Sprintf("c%02d:%03d", i, r), r)
				cmds, _ := p.Exec(ctx)
				for j, cmd := range cmds {
					wrong := j == each/2+1
					if err := cmd.Err(); wrong != (err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE")) {
						t.Errorf("client %d round %d command %d: %v", i, r, j, err)
						return
					}
				}
				for j := 1; j < len(pushes); j++ {
					if pushes[j].Val() != pushes[j-1].Val()+1 {
						t.Errorf("client %d round %d: RPUSH answered %d after %d: another client's push came between", i, r, pushes[j].Val(), pushes[j-1].Val())
						return
					}
				}
				if n, err := hset.Result(); err != nil || n != 1 {
					t.Errorf("client %d round %d: HSET %d, %v", i, r, n, err)
					return
				}
				var a, b *redis.IntCmd
				if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					a, b = p.Incr(ctx, "counter"), p.Incr(ctx, "counter")
					return nil
				}); err != nil {
					t.Errorf("client %d round %d: EXEC: %v", i, r, err)
					return
				}
				if b.Val() != a.Val()+1 {
					t.Errorf("client %d round %d: a transaction's INCRs answered %d, %d", i, r, a.Val(), b.Val())
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	elems, err := c0.LRange(ctx, "list", 0, -1).Result()
	if err != nil || len(elems) != clients*rounds*each {
		t.Fatalf("the list holds %d elements (%v), want %d", len(elems), err, clients*rounds*each)
	}
	next := make(map[string]int)
	for _, e := range elems {
		client, n := e[:3], 0
		fmt.Sscanf(e[4:], "%d", &n)
		if n != next[client] {
			t.Fatalf("%s's push %d came where its %d was due", client, n, next[client])
		}
		next[client]++
	}
	if n, err := c0.HLen(ctx, "hash").Result(); err != nil || n != clients*rounds {
		t.Fatalf("HLEN %d, %v; want %d", n, err, clients*rounds)
	}
	if n, err := c0.Get(ctx, "counter").Int(); err != nil || n != 2*clients*rounds {
		t.Fatalf("counter %d, %v; want %d", n, err, 2*clients*rounds)
	}
}
