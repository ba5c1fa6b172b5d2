package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBitmapCommandsMatchRedis runs SETBIT ... BITFIELD_RO and LCS, errors
// included, against a real redis-server and a node.
func TestBitmapCommandsMatchRedis(t *testing.T) {
	script, err := os.ReadFile("testdata/bitmaps.redis")
	if err != nil {
		t.Fatal(err)
	}
	compareScript(t, string(script))
}

// TestHyperLogLogMatchesRedis runs PFADD, PFCOUNT, PFMERGE and PFDEBUG,
// errors included, against a real redis-server and a node, reading every
// string back with GET: the same bytes, sparse and dense, cached
// cardinality included. One sketch grows, 300 elements at a time, past the
// point where Redis promotes it to dense.
func TestHyperLogLogMatchesRedis(t *testing.T) {
	script, err := os.ReadFile("testdata/hyperloglog.redis")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.Write(script)
	for i := range 12 {
		b.WriteString("PFADD big")
		for j := range 300 {
			fmt.Fprintf(&b, " e%d-%d", i, j)
		}
		b.WriteString("\nPFDEBUG ENCODING big\nPFCOUNT big\nSTRLEN big\n")
	}
	b.WriteString(`GET big
PFMERGE big2 h big
PFDEBUG ENCODING big2
PFCOUNT big2
GET big2
PFMERGE sp h e
PFDEBUG ENCODING sp
GET sp
PFSELFTEST
`)
	compareScript(t, b.String())
}

func compareScript(t *testing.T, script string) {
	t.Helper()
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	want := redisCLI(t, redisAddr, script)
	got := redisCLI(t, p.addr, script)
	if got != want {
		t.Errorf("differs from Redis\n%s", diffLines(script, want, got))
	}
}

// TestRedisHyperLogLogStringsWork: a HyperLogLog string made by Redis, SET
// into a node, reads, counts, merges and takes PFADDs as in Redis, sparse and
// dense.
func TestRedisHyperLogLogStringsWork(t *testing.T) {
	ctx := context.Background()
	r := redis.NewClient(&redis.Options{Addr: startRedis(t), Protocol: 2})
	n := redis.NewClient(&redis.Options{Addr: startNode(t, t.TempDir()).addr, Protocol: 2})
	defer r.Close()
	defer n.Close()
	var elems []any
	for i := range 3000 {
		elems = append(elems, fmt.Sprintf("m%d", i))
	}
	must := func(cmd *redis.Cmd) any {
		t.Helper()
		v, err := cmd.Result()
		if err != nil {
			t.Fatalf("%v: %v", cmd.Args(), err)
		}
		return v
	}
	must(r.Do(ctx, append([]any{"PFADD", "sparse"}, elems[:100]...)...))
	must(r.Do(ctx, append([]any{"PFADD", "dense"}, elems...)...))
	must(r.Do(ctx, "PFCOUNT", "dense")) // a valid cache in the header
	for _, k := range []string{"sparse", "dense"} {
		s := must(r.Do(ctx, "GET", k)).(string)
		must(n.Do(ctx, "SET", k, s))
	}
	steps := [][]any{
		{"PFCOUNT", "sparse"},
		{"GET", "sparse"},
		{"PFCOUNT", "dense"},
		{"PFADD", "sparse", "m0", "m1"},
		{"PFADD", "sparse", "new1", "new2"},
		{"GET", "sparse"},
		{"PFADD", "dense", "m5"},
		{"PFADD", "dense", "zzz", "yyy", "xxx"},
		{"GET", "dense"},
		{"PFCOUNT", "dense"},
		{"GET", "dense"},
		{"PFMERGE", "both", "sparse", "dense"},
		{"GET", "both"},
		{"PFCOUNT", "sparse", "dense"},
	}
	for _, s := range steps {
		want, werr := r.Do(ctx, s...).Result()
		got, gerr := n.Do(ctx, s...).Result()
		if fmt.Sprint(want) != fmt.Sprint(got) || fmt.Sprint(werr) != fmt.Sprint(gerr) {
			t.Errorf("%v: redis %q (%v), redmesh %q (%v)", s, want, werr, got, gerr)
		}
	}
}

// TestHyperLogLogMergesAcrossNodes: node b runs alone (no mesh) while a
// writes, then rejoins. PFADDs at both count every element, as Redis counts
// them all added at one server, also where both created the key; a SET over
// a HyperLogLog removes it with the PFADDs made to it concurrently; a bitmap
// written at both keeps the later whole value.
func TestHyperLogLogMergesAcrossNodes(t *testing.T) {
	ctx := context.Background()
	r := redis.NewClient(&redis.Options{Addr: startRedis(t), Protocol: 2})
	defer r.Close()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)
	do := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	pfadd := func(c *redis.Client, key, prefix string, n int) {
		t.Helper()
		args := []any{"PFADD", key}
		for i := range n {
			args = append(args, fmt.Sprintf("%s%d", prefix, i))
		}
		do(c, args...)
		do(r, args...)
	}
	pfadd(a.c, "hl", "both-", 50)
	pfadd(a.c, "big", "both-", 2000)
	pfadd(a.c, "over", "o-", 10)
	do(a.c, "SETBIT", "bits", 0, 1)
	waitUntil(t, 20*time.Second, "b to hold a's writes", func() bool { return equalDumps(a.dump(t), b.dump(t)) })

	args := b.args
	b.kill()
	b.restart(t, "--no-mesh")
	pfadd(a.c, "hl", "a-", 40) // ∥ b's PFADDs: all counted
	pfadd(b.c, "hl", "b-", 40)
	pfadd(a.c, "big", "a-", 1500)
	pfadd(b.c, "big", "b-", 1500)
	pfadd(b.c, "bonly", "b-", 10) // a key b alone creates
	pfadd(a.c, "fresh", "a-", 30) // both create it: all counted
	pfadd(b.c, "fresh", "b-", 30)
	do(a.c, "SET", "over", "x") // removes the sketch, b's adds to it included
	do(b.c, "PFADD", "over", "late1", "late2")
	do(a.c, "SETBIT", "bits", 1, 1)
	do(b.c, "SETBIT", "bits", 2, 1) // later: its whole value wins

	b.kill()
	b.restart(t, args...)
	waitConnected(t, 1, a, b)
	waitUntil(t, 30*time.Second, "a and b to converge", func() bool { return equalDumps(a.dump(t), b.dump(t)) })
	// GET first: PFCOUNT caches the count in the string, at both nodes.
	keys := []string{"hl", "big", "bonly", "fresh"}
	for _, key := range keys {
		want := r.Get(ctx, key).Val()
		for _, node := range []*meshNode{a, b} {
			if got := node.c.Get(ctx, key).Val(); got != want {
				t.Errorf("%s at %s: %q, want Redis's %q", key, node.id, got, want)
			}
		}
	}
	for _, key := range keys {
		for _, node := range []*meshNode{a, b} {
			if got, want := node.c.PFCount(ctx, key).Val(), r.PFCount(ctx, key).Val(); got != want {
				t.Errorf("PFCOUNT %s at %s = %d, want %d", key, node.id, got, want)
			}
		}
	}
	if got := a.c.Get(ctx, "over").Val(); got != "x" {
		t.Errorf("over = %q, want the SET's value", got)
	}
	if got := a.c.Get(ctx, "bits").Val(); got != "\xa0" {
		t.Errorf("bits = %q, want b's whole value %q", got, "\xa0")
	}
}
