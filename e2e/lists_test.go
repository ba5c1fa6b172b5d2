package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestListCommandsMatchRedis: every list command, its options and its
// errors, byte for byte as redis-server answers.
func TestListCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	compareRESP(t, redisAddr, p.addr, listScript)
}

// TestLargeListCommandsMatchRedis: the list commands on lists of thousands
// of elements (a node's large form, its elements in runs), reading and
// writing across many runs, byte for byte as redis-server answers.
func TestLargeListCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	compareRESP(t, redisAddr, p.addr, largeListScript())
}

// largeListScript fills two lists of 3,000 and 600 elements (pushes of 100
// at both ends, values repeating every 97 so LREM and LPOS find several),
// then reads and changes them at indexes spread over their length.
func largeListScript() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for i := range 30 {
		cmd := "RPUSH"
		if i%2 == 1 {
			cmd = "LPUSH"
		}
		b.WriteString(cmd + " big")
		for k := range 100 {
			fmt.Fprintf(&b, " v%d", (i*100+k)%97)
		}
		b.WriteString("\n")
	}
	for i := range 600 {
		line("RPUSH other o%d", i)
	}
	line("LLEN big")
	for _, i := range []int{0, 1, 99, 100, 1499, 1500, 2999, 3000, -1, -3000, -3001} {
		line("LINDEX big %d", i)
	}
	line("LRANGE big 0 -1")
	line("LRANGE big 1450 1560")
	line("LRANGE big -120 -1")
	for i := 0; i < 3000; i += 271 {
		line("LSET big %d set%d", i, i)
		line("LINSERT big BEFORE set%d before%d", i, i)
		line("LINSERT big AFTER set%d after%d", i, i)
	}
	line("LRANGE big 0 -1")
	line("LREM big 5 v3")
	line("LREM big -7 v10")
	line("LREM big 0 v50")
	line("LPOS big v20")
	line("LPOS big v20 RANK -2")
	line("LPOS big v20 COUNT 0")
	line("LPOS big v20 RANK 3 COUNT 4 MAXLEN 2000")
	line("LRANGE big 0 -1")
	line("LPOP big 70")
	line("RPOP big 130")
	for range 20 {
		line("LMOVE big other LEFT RIGHT")
		line("RPOPLPUSH other big")
	}
	line("LMPOP 2 nothere big RIGHT COUNT 3")
	line("LTRIM big 200 -300")
	line("LLEN big")
	line("LRANGE big 0 -1")
	line("LRANGE other 0 -1")
	line("LTRIM other 10 20")
	line("LRANGE other 0 -1")
	return b.String()
}

const listScript = `
LPUSH l a b c
RPUSH l d e
LPUSHX nolist x
RPUSHX nolist x
LPUSHX l z
RPUSHX l y
LLEN l
LLEN nolist
LRANGE l 0 -1
LRANGE l 1 3
LRANGE l -3 -1
LRANGE l -100 100
LRANGE l 5 2
LRANGE l 100 200
LRANGE l x 1
LRANGE nolist 0 -1
LINDEX l 0
LINDEX l -1
LINDEX l 100
LINDEX l -100
LINDEX l x
LINDEX nolist 0
LINDEX nolist x
LSET l 0 first
LSET l -1 last
LSET l 100 x
LSET l x y
LSET nolist 0 x
LRANGE l 0 -1
LINSERT l BEFORE a before-a
LINSERT l AFTER a after-a
LINSERT l after last after-last
LINSERT l BEFORE first before-first
LINSERT l BEFORE nothere x
LINSERT l MIDDLE a x
LINSERT nolist BEFORE a x
LRANGE l 0 -1
RPUSH r a b a c a d a
LREM r 2 a
LRANGE r 0 -1
LREM r -1 a
LRANGE r 0 -1
LREM r 0 a
LRANGE r 0 -1
LREM r 0 nothere
LREM r x a
LREM nolist 1 a
RPUSH p a b c a b c a
LPOS p a
LPOS p a RANK 2
LPOS p a RANK -1
LPOS p a RANK -2
LPOS p a COUNT 0
LPOS p a COUNT 2
LPOS p a RANK 2 COUNT 0
LPOS p a RANK -1 COUNT 2
LPOS p a MAXLEN 1
LPOS p b MAXLEN 1
LPOS p b MAXLEN 1 COUNT 0
LPOS p nothere
LPOS p nothere COUNT 0
LPOS p a RANK 0
LPOS p a RANK x
LPOS p a COUNT -1
LPOS p a MAXLEN -1
LPOS p a COUNT x
LPOS p a FOO 1
LPOS p a RANK
LPOS p a RANK 10
LPOS p a RANK -9223372036854775808
LPOS nolist a
LPOS nolist a COUNT 1
RPUSH t 0 1 2 3 4 5 6 7 8 9
LTRIM t 1 -2
LRANGE t 0 -1
LTRIM t -3 100
LRANGE t 0 -1
LTRIM t x 1
LTRIM t 2 1
EXISTS t
LTRIM nolist 0 1
RPUSH q 1 2 3 4 5
LPOP q
RPOP q
LPOP q 2
RPOP q 0
LPOP q 10
EXISTS q
LPOP q
LPOP q 1
RPOP q 0
LPOP q -1
LPOP q x
LPOP q 1 2
RPUSH m1 a b c
RPUSH m2 x y z
LMOVE m1 m2 LEFT RIGHT
LMOVE m1 m2 RIGHT LEFT
LMOVE m1 m1 LEFT RIGHT
LRANGE m1 0 -1
LRANGE m2 0 -1
LMOVE m1 m2 UP LEFT
LMOVE m1 m2 LEFT UP
LMOVE nolist m2 LEFT LEFT
RPOPLPUSH m2 m3
RPOPLPUSH m2 m2
LRANGE m2 0 -1
LRANGE m3 0 -1
RPOPLPUSH nolist m3
SET s x
RPOPLPUSH m2 s
LMOVE m2 s LEFT LEFT
RPOPLPUSH s m2
LRANGE m2 0 -1
LMPOP 2 nolist m2 LEFT
LMPOP 2 nolist m2 RIGHT COUNT 2
LMPOP 1 nolist LEFT
LMPOP 2 m2 m3 LEFT COUNT 10
LMPOP 0 m2 LEFT
LMPOP x m2 LEFT
LMPOP 5 m2 LEFT
LMPOP 1 m2 UP
LMPOP 1 m2 LEFT COUNT 0
LMPOP 1 m2 LEFT COUNT x
LMPOP 1 m2 LEFT COUNT 1 COUNT 1
LMPOP 1 m2 LEFT FOO
LMPOP 2 s m2 LEFT
LPUSH s x
RPUSH s x
LPOP s
LLEN s
LRANGE s 0 1
LINDEX s 0
LSET s 0 x
LINSERT s BEFORE a b
LREM s 0 a
LTRIM s 0 1
LPOS s a
RPUSH e ""
LRANGE e 0 -1
RPUSH big 1 2 3
TYPE big
OBJECT ENCODING big
COPY big big2
LRANGE big2 0 -1
RENAME big big3
LRANGE big3 0 -1
EXISTS big
DEL big3
EXISTS big3
LPUSH
LPUSH l
RPOPLPUSH a
LMOVE a b LEFT
LINSERT l BEFORE a
`

// TestListMeshUnderLoadAndKill: three nodes push, pop and insert into one
// list at once while one of them is killed and restarted; all end with the
// same list, in the same order, holding every acknowledged push that no
// acknowledged pop returned, and nothing a pop returned.
func TestListMeshUnderLoadAndKill(t *testing.T) {
	ctx := context.Background()
	always := []string{"--fsync", "always"}
	var nodes []*meshNode
	for i := range 3 {
		extra := always
		if i > 0 {
			extra = append(extra, "--peer", nodes[0].maddr())
		}
		nodes = append(nodes, startMeshNode(t, t.TempDir(), 0, extra...))
	}
	waitConnected(t, 2, nodes...)

	var mu sync.Mutex
	pushed := map[string]bool{} // acknowledged pushes and inserts
	popped := map[string]int{}  // values acknowledged pops returned, and how often
	// A pop that reached node 2 and lost its reply (the kill, or a timeout)
	// may have taken values nobody saw: at most this many may be missing.
	var unseen int
	var unseenOps []string
	noRetry := func(n *meshNode) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: n.addr, Protocol: 2, MaxRetries: -1})
		t.Cleanup(func() { c.Close() })
		return c
	}
	var clients [3]*redis.Client
	for i, n := range nodes {
		clients[i] = noRetry(n)
	}
	var cmu sync.Mutex
	client := func(i int) *redis.Client {
		cmu.Lock()
		defer cmu.Unlock()
		return clients[i]
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 15))
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c := client(i)
				v := fmt.Sprintf("n%d-%d", i, j)
				var err error
				ack := func(n int64) {
					if err == nil && n > 0 {
						mu.Lock()
						pushed[v] = true
						mu.Unlock()
					}
				}
				var took int // values a pop may take
				switch rng.IntN(8) {
				case 0, 1:
					var n int64
					n, err = c.RPush(ctx, "q", v).Result()
					ack(n)
				case 2:
					var n int64
					n, err = c.LPush(ctx, "q", v, v+"b").Result()
					ack(n)
					if err == nil {
						mu.Lock()
						pushed[v+"b"] = true
						mu.Unlock()
					}
				case 3, 4:
					var vs []string
					took = 1 + rng.IntN(2)
					vs, err = c.LPopCount(ctx, "q", took).Result()
					if err == redis.Nil {
						err = nil
					}
					mu.Lock()
					for _, x := range vs {
						popped[x]++
					}
					mu.Unlock()
				case 5:
					var x string
					took = 1
					x, err = c.RPop(ctx, "q").Result()
					if err == redis.Nil {
						err = nil
					} else if err == nil {
						mu.Lock()
						popped[x]++
						mu.Unlock()
					}
				case 6, 7:
					// Insert next to an element this node sees.
					var pivot string
					pivot, err = c.LIndex(ctx, "q", int64(rng.IntN(20))).Result()
					if err == redis.Nil {
						err = nil
						break
					}
					if err != nil {
						break
					}
					where := "BEFORE"
					if rng.IntN(2) == 0 {
						where = "AFTER"
					}
					var n int64
					n, err = c.LInsert(ctx, "q", where, pivot, v).Result()
					ack(n)
				}
				if err != nil && i != 2 { // node 2 is killed: its clients see errors
					t.Errorf("node %d: %v", i, err)
					return
				}
				if err != nil && took > 0 && !errors.Is(err, syscall.ECONNREFUSED) {
					mu.Lock()
					unseen += took
					unseenOps = append(unseenOps, fmt.Sprintf("pop of %d on node 2: %v", took, err))
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second) // load runs while the clock goes: not an assertion
	args := nodes[2].args
	nodes[2].kill()
	time.Sleep(time.Second)
	nodes[2].restart(t, args...)
	cmu.Lock()
	clients[2] = noRetry(nodes[2])
	cmu.Unlock()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	waitConnected(t, 2, nodes...)
	var lists [3][]string
	waitUntil(t, 60*time.Second, "the three nodes to hold the same list", func() bool {
		for i, n := range nodes {
			l, err := n.c.LRange(ctx, "q", 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			lists[i] = l
		}
		return slices.Equal(lists[0], lists[1]) && slices.Equal(lists[0], lists[2])
	})
	have := map[string]int{}
	for _, x := range lists[0] {
		have[x]++
		if have[x] > 1 {
			t.Errorf("%s is in the list twice", x)
		}
		if popped[x] > 0 {
			t.Errorf("%s was popped, and is still in the list", x)
		}
	}
	var missing []string
	for x := range pushed {
		if have[x] == 0 && popped[x] == 0 {
			missing = append(missing, x)
		}
	}
	if len(missing) > unseen {
		t.Errorf("pushes of %v were acknowledged, never popped, and are missing; pops whose reply was lost: %v", missing, unseenOps)
	} else if len(missing) > 0 {
		t.Logf("%v missing, taken by pops whose reply was lost: %v", missing, unseenOps)
	}
	twice := 0
	for _, n := range popped {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d acknowledged pushes, %d values popped (%d by two nodes at once), %d left in the list, identical on every node; pops whose reply was lost: %v",
		len(pushed), len(popped), twice, len(lists[0]), unseenOps)
}
