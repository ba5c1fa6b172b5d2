package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestTypedCommandsMatchRedis runs hash, set and counter commands against a
// real redis-server and a node and requires the same replies. Fields and
// members are written in name order, the order in which a node lists them
// and a small Redis hash or integer set does too.
func TestTypedCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	script := `HSET h a 1 b 2 c 3
HSET h a 10 d 4
HGET h a
HMGET h a b x
HLEN h
HSTRLEN h a
HEXISTS h a
HEXISTS h z
HKEYS h
HVALS h
HGETALL h
HDEL h a a x
HDEL h a
HINCRBY h b 5
HINCRBY h e 7
HINCRBY h e -3
HINCRBY h c x
HINCRBY h e 9223372036854775807
HINCRBYFLOAT h g 1.5
HINCRBYFLOAT h g 0.1
HINCRBYFLOAT h g x
HINCRBYFLOAT h g inf
HINCRBY h g 1
HINCRBYFLOAT h n 1
HINCRBY h n 2
HINCRBYFLOAT h n 0.25
HINCRBY h n 2
HINCRBYFLOAT h n 0.75
HINCRBY h n 2
HGET h n
HSTRLEN h n
HINCRBYFLOAT h n 0.1
HINCRBYFLOAT h n 0.2
HGET h n
HSET h n 5
HINCRBYFLOAT h n 1e-3
HGET h n
HDEL h n
HINCRBYFLOAT h n -2.5
HEXISTS h n
HINCRBYFLOAT h n 1e20
HINCRBYFLOAT h n 1e-20
HINCRBYFLOAT h n -1e20
HVALS h
HDEL h n
HSETNX h b 9
HSETNX h z 9
HGETALL h
TYPE h
HSET h
HSET h a
HSET h a 1 b
HMSET h q 1
HGET nokey a
HGETALL nokey
HLEN nokey
SET str x
HGET str a
HSET str a 1
HLEN str
GET h
DEL h
HGETALL h
EXISTS h
HRANDFIELD nokey
HRANDFIELD nokey 3
HRANDFIELD h x
HRANDFIELD h -9223372036854775808
HRANDFIELD h -4611686018427387904 WITHVALUES
HRANDFIELD h 1 WITHVALUE
HSET one f v
HRANDFIELD one
HRANDFIELD one 1 WITHVALUES
HRANDFIELD one -3
HRANDFIELD one -2 WITHVALUES
HRANDFIELD one -100000 WITHVALUES
HRANDFIELD one 0
HSCAN one 0
HSCAN one 0 MATCH f*
HSCAN one 0 MATCH x*
HSCAN one 0 COUNT 0
HSCAN one 0 MATCH
HSCAN one x
HSCAN nokey 0
SADD s 1 2 3 3
SADD s 2 4
SCARD s
SMEMBERS s
SISMEMBER s 1
SISMEMBER s 9
SMISMEMBER s 1 9 2
SREM s 1 1 9
SMEMBERS s
SADD t 3 4 5
SINTER s t
SUNION s t
SDIFF s t
SDIFF t s
SINTERCARD 2 s t
SINTERCARD 2 s t LIMIT 1
SINTERCARD 0 s
SINTERCARD 3 s t
SINTERCARD 2 s t LIMIT -1
SINTERCARD 2 s t FOO 1
SINTERCARD x s
SINTERSTORE d s t
SMEMBERS d
SUNIONSTORE d s t
SMEMBERS d
SDIFFSTORE d s s
EXISTS d
SMOVE s t 2
SMEMBERS s
SMEMBERS t
SMOVE s t 9
SMOVE s s 3
SMOVE s s 9
SMOVE s str 3
SMOVE str s 3
SPOP nokey
SPOP nokey 2
SPOP s 0
SPOP s -1
SPOP s x
SRANDMEMBER nokey
SRANDMEMBER nokey 2
SRANDMEMBER s -9223372036854775808
SADD one1 x
SPOP one1
EXISTS one1
SADD one2 y
SRANDMEMBER one2 -2
SRANDMEMBER one2 -200000
SRANDMEMBER one2 5
SSCAN one2 0
SSCAN one2 0 MATCH z*
TYPE one2
SADD str m
SCARD str
SINTER nokey str
SDIFF nokey s
SUNIONSTORE d s str
SET h2 v EX 100
SINTERSTORE h2 s t
TYPE h2
TTL h2
SINTERSTORE h2 nokey t
EXISTS h2
INCR cnt
INCRBY cnt 10
DECR cnt
GET cnt
APPEND cnt 5
GET cnt
INCR cnt
SET cnt 100
INCR cnt
INCRBY cnt 9223372036854775807
TYPE cnt
STRLEN cnt
GETRANGE cnt 0 1
SET cnt 5 EX 100
INCR cnt
TTL cnt
COPY s scopy
SMEMBERS scopy
RENAME scopy smoved
SMEMBERS smoved
EXISTS scopy
HSET hc f 1
COPY hc hc2
HGETALL hc2
COPY cnt cnt2
GET cnt2
TYPE cnt2
SET over x
SADD over m
HSET over f v
DEL over
SADD over m
SMEMBERS over
MULTI
HSET m f 1
HINCRBY m f 2
SADD m x
HGET m f
EXEC
HGETALL m
`
	want := redisCLI(t, redisAddr, script)
	got := redisCLI(t, p.addr, script)
	if got != want {
		t.Errorf("differs from Redis\n%s", diffLines(script, want, got))
	}
}

// TestObjectAndWatchMatchRedis: OBJECT's encodings and errors, and WATCH
// (an add of what a set or sorted set holds is no modification, as in Redis).
func TestObjectAndWatchMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	script := `set a 100
set b 12345
set c hello
set d 123456789012345678901
object encoding a
object refcount a
object refcount b
object encoding b
object encoding c
object encoding d
object encoding nokey
object refcount nokey
object idletime nokey
object idletime c
object freq a
object help
object foo
object encoding
object encoding a b
sadd s 1 2 3
object encoding s
sadd s2 a
object encoding s2
hset h f v
object encoding h
hset h2 f aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
object encoding h2
incr n
object encoding n
set e -5
object encoding e
object refcount e
set f 007
object encoding f
watch
multi
watch a
exec
unwatch
watch a
set a 5
multi
get a
exec
watch a
multi
get a
exec
watch nokey
multi
set x 1
exec
watch h
hset h g 1
multi
hget h f
exec
sadd ws a
watch ws
sadd ws a
multi
scard ws
exec
zadd wz 1 m
watch wz
zadd wz 1 m
zadd wz gt 0 m
multi
zcard wz
exec
sadd wd a
watch ws
smove wd ws a
multi
scard ws
exec
watch ws
sadd ws a b
multi
scard ws
exec
watch wz
zadd wz 1 m
zadd wz 2 m
multi
zscore wz m
exec
`
	want := redisCLI(t, redisAddr, script)
	got := redisCLI(t, p.addr, script)
	if got != want {
		t.Errorf("differs from Redis\n%s", diffLines(script, want, got))
	}
}

// TestTypedMergesAcrossNodes builds concurrent writes on purpose: node b runs
// alone (no mesh) while a writes, then rejoins. Add wins over a concurrent
// remove, a remove takes only what it observed, and increments add up.
func TestTypedMergesAcrossNodes(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)
	must := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	must(a.c, "HSET", "h", "f", "old", "g", "keep")
	must(a.c, "HINCRBY", "h", "n", "5")
	must(a.c, "SADD", "s", "m1", "m2")
	must(a.c, "SADD", "gone", "x")
	must(a.c, "INCRBY", "ctr", "10")
	must(a.c, "SET", "c2", "5")
	must(a.c, "HSET", "dh", "f1", "v1")
	must(a.c, "SADD", "re", "m")
	must(a.c, "ZADD", "zre", "1", "m")
	waitUntil(t, 20*time.Second, "b to hold a's writes", func() bool { return equalDumps(a.dump(t), b.dump(t)) })

	// b alone: every write below is concurrent with a's.
	args := b.args
	b.kill()
	b.restart(t, "--no-mesh")
	must(a.c, "HDEL", "h", "f")        // ∥ b's HSET h f new: the write survives
	must(b.c, "HSET", "h", "f", "new") //
	must(a.c, "HINCRBY", "h", "n", "1")
	must(b.c, "HINCRBY", "h", "n", "2")
	must(a.c, "HSET", "h", "a1", "x")
	must(a.c, "DEL", "s")          // removes m1, m2 only
	must(b.c, "SADD", "s", "m3")   // survives the DEL
	must(b.c, "SREM", "gone", "x") // both remove x
	must(a.c, "SREM", "gone", "x")
	must(a.c, "INCRBY", "ctr", "3")
	must(b.c, "INCRBY", "ctr", "4")
	must(a.c, "SET", "c2", "100") // resets what it saw (5), not b's INCR
	must(b.c, "INCR", "c2")
	must(a.c, "DEL", "dh")               // removes f1 only
	must(b.c, "HSET", "dh", "f2", "v2")  // survives the DEL
	must(a.c, "SET", "tc", "string")     // a type conflict: both nodes
	must(b.c, "HSET", "tc", "f", "hash") // must pick the same
	// Adding what b holds is an add (Redis answers 0 all the same): it
	// wins over a's concurrent removes, which saw only the older adds.
	must(a.c, "SREM", "re", "m")
	if n, err := b.c.SAdd(ctx, "re", "m").Result(); n != 0 || err != nil {
		t.Fatalf("SADD of a member held: %d, %v; want 0 as Redis", n, err)
	}
	must(a.c, "ZREM", "zre", "m")
	if n, err := b.c.Do(ctx, "ZADD", "zre", "CH", "1", "m").Int64(); n != 0 || err != nil {
		t.Fatalf("ZADD CH at the score held: %d, %v; want 0 as Redis", n, err)
	}

	b.kill()
	b.restart(t, args...)
	waitConnected(t, 1, a, b)
	var da, db map[string]keyState
	deadline := time.Now().Add(30 * time.Second)
	for {
		da, db = a.dump(t), b.dump(t)
		if equalDumps(da, db) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a and b did not converge in 30s:\n a: %v\n b: %v", da, db)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A peer's write to a watched key aborts EXEC.
	conn := dialRaw(t, a.addr)
	for _, cmd := range []string{"WATCH h", "MULTI", "HGET h f"} {
		if _, err := conn.do(cmd); err != nil {
			t.Fatal(err)
		}
	}
	must(b.c, "HSET", "h", "zz", "1")
	waitUntil(t, 10*time.Second, "a to get b's write", func() bool { return a.c.HExists(ctx, "h", "zz").Val() })
	if got, err := conn.do("EXEC"); err != nil || got != "*-1" {
		t.Fatalf("EXEC after a peer changed the watched key: %q, %v", got, err)
	}
	must(b.c, "HDEL", "h", "zz")
	waitUntil(t, 10*time.Second, "a to get b's HDEL", func() bool { return !a.c.HExists(ctx, "h", "zz").Val() })
	da = a.dump(t)

	// A new node gets every typed key, as whole states (a snapshot).
	c := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitUntil(t, 30*time.Second, "a new node to get every typed key", func() bool {
		return equalDumps(da, c.dump(t))
	})
	want := map[string]string{
		"h":    "hash:a1=x,f=new,g=keep,n=8",
		"s":    "set:m3",
		"ctr":  "17",
		"c2":   "101",
		"dh":   "hash:f2=v2",
		"tc":   "hash:f=hash", // b's write came later
		"re":   "set:m",
		"zre":  "zset:m=1",
		"gone": "",
	}
	for k, v := range want {
		got, ok := da[k]
		if v == "" {
			if ok {
				t.Errorf("%s = %q, want it gone", k, got.value)
			}
			continue
		}
		if got.value != v {
			t.Errorf("%s = %q, want %q", k, got.value, v)
		}
	}
}

// TestTypedMeshUnderLoadAndKill: three nodes take concurrent typed writes
// while one is killed and restarted; all end identical, every counter (a
// sorted-set member's ZINCRBY total too) holds the sum of its acknowledged
// increments, and every member added with a
// unique name and never removed is there.
func TestTypedMeshUnderLoadAndKill(t *testing.T) {
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
	incr := map[string]int64{}      // counter → acknowledged sum
	fieldIncr := map[string]int64{} // hash field counters in "hc"
	zincr := map[string]int64{}     // sorted-set members of "zc" (ZINCRBY only)
	kept := map[string]bool{}       // members of "added" never removed
	// Increments whose reply the kill cut off: applied or not, no one
	// knows (the dial errors after the kill are not among them).
	maybe := map[string][]int64{}
	doubt := func(err error, key string, by int64) {
		if err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			mu.Lock()
			maybe[key] = append(maybe[key], by)
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Clients that never retry: a retried increment whose first reply the
	// kill cut off would count twice.
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
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 3))
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				c := client(i)
				var err error
				switch r := rng.IntN(11); r {
				case 0, 1:
					key := fmt.Sprintf("ctr%d", rng.IntN(4))
					by := int64(rng.IntN(21) - 10)
					if err = c.IncrBy(ctx, key, by).Err(); err == nil {
						mu.Lock()
						incr[key] += by
						mu.Unlock()
					}
					doubt(err, key, by)
				case 2:
					f := fmt.Sprintf("f%d", rng.IntN(4))
					by := int64(rng.IntN(9) + 1)
					if err = c.HIncrBy(ctx, "hc", f, by).Err(); err == nil {
						mu.Lock()
						fieldIncr[f] += by
						mu.Unlock()
					}
					doubt(err, "hc."+f, by)
				case 3:
					m := fmt.Sprintf("n%d-%d", i, j)
					if err = c.SAdd(ctx, "added", m).Err(); err == nil {
						mu.Lock()
						kept[m] = true
						mu.Unlock()
					}
				case 4:
					err = c.SAdd(ctx, "churn", fmt.Sprintf("m%d", rng.IntN(20))).Err()
				case 5:
					err = c.SRem(ctx, "churn", fmt.Sprintf("m%d", rng.IntN(20))).Err()
				case 6:
					err = c.HSet(ctx, "hw", fmt.Sprintf("f%d", rng.IntN(10)), fmt.Sprintf("%d-%d", i, j)).Err()
				case 7:
					err = c.HDel(ctx, "hw", fmt.Sprintf("f%d", rng.IntN(10))).Err()
				case 8:
					m := fmt.Sprintf("z%d", rng.IntN(4))
					by := int64(rng.IntN(9) - 2)
					if err = c.ZIncrBy(ctx, "zc", float64(by), m).Err(); err == nil {
						mu.Lock()
						zincr[m] += by
						mu.Unlock()
					}
					doubt(err, "zc."+m, by)
				case 9:
					err = c.ZAdd(ctx, "zw", redis.Z{Score: float64(rng.IntN(100)), Member: fmt.Sprintf("w%d", rng.IntN(10))}).Err()
				case 10:
					err = c.ZRem(ctx, "zw", fmt.Sprintf("w%d", rng.IntN(10))).Err()
				}
				if err != nil && i != 2 { // node 2 is killed: its clients see errors
					t.Errorf("node %d: %v", i, err)
					return
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
	var d0 map[string]keyState
	waitUntil(t, 60*time.Second, "the three nodes to converge", func() bool {
		d0 = nodes[0].dump(t)
		return equalDumps(d0, nodes[1].dump(t)) && equalDumps(d0, nodes[2].dump(t))
	})
	// A counter holds the sum of its acknowledged increments, plus some of
	// those in doubt.
	accounted := func(name, got string, sum int64) {
		for _, extra := range subsetSums(maybe[name]) {
			if got == fmt.Sprint(sum+extra) {
				return
			}
		}
		t.Errorf("%s = %q, want the sum of its acknowledged increments, %d, plus some of %v", name, got, sum, maybe[name])
	}
	for key, sum := range incr {
		accounted(key, d0[key].value, sum)
	}
	for f, sum := range fieldIncr {
		v, err := nodes[0].c.HGet(ctx, "hc", f).Result()
		if err != nil {
			t.Fatal(err)
		}
		accounted("hc."+f, v, sum)
	}
	for m, sum := range zincr {
		v, err := nodes[0].c.ZScore(ctx, "zc", m).Result()
		if err != nil {
			t.Fatal(err)
		}
		accounted("zc."+m, fmt.Sprint(v), sum)
	}
	ms, err := nodes[0].c.SMembers(ctx, "added").Result()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range ms {
		have[m] = true
	}
	for m := range kept {
		if !have[m] {
			t.Errorf("member %s was acknowledged and never removed, but is missing", m)
		}
	}
	t.Logf("%d counters, %d field counters, %d sorted-set increments, %d unique members: all converged and accounted for (in doubt: %v)", len(incr), len(fieldIncr), len(zincr), len(kept), maybe)
}

// subsetSums lists the sums of every subset of xs (a few at most).
func subsetSums(xs []int64) []int64 {
	if len(xs) > 16 {
		return nil // too many in doubt to account for: the check fails
	}
	sums := []int64{0}
	for _, x := range xs {
		for _, s := range sums {
			sums = append(sums, s+x)
		}
	}
	return sums
}
