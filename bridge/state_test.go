package bridge

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/record"
)

func TestDigestIgnoresElementOrder(t *testing.T) {
	a := State{Kind: Hash, Fields: [][]byte{[]byte("f1"), []byte("a"), []byte("f2"), []byte("b")}}
	b := State{Kind: Hash, Fields: [][]byte{[]byte("f2"), []byte("b"), []byte("f1"), []byte("a")}}
	if a.Digest() != b.Digest() {
		t.Fatal("field order changes the digest")
	}
	distinct := []State{
		{},
		{Kind: String},
		{Kind: String, Str: []byte("a")},
		{Kind: String, Str: []byte("a"), At: 1},
		{Kind: Hash, Fields: [][]byte{[]byte("a"), []byte("")}},
		{Kind: Hash, Fields: [][]byte{[]byte(""), []byte("a")}},
		{Kind: Set, Members: [][]byte{[]byte("a")}},
		{Kind: Set},
		{Kind: ZSet, Fields: [][]byte{[]byte("a"), []byte("1")}},
		{Kind: ZSet, Fields: [][]byte{[]byte("a"), []byte("2")}},
		{Kind: List, Members: [][]byte{[]byte("a"), []byte("b")}},
		{Kind: List, Members: [][]byte{[]byte("b"), []byte("a")}},
		{Kind: List},
		{Kind: Whole, Type: "stream", Str: []byte("p")},
		{Kind: Whole, Type: "other", Str: []byte("p")},
		a,
	}
	seen := map[uint64]int{}
	for i, s := range distinct {
		d := s.Digest()
		if j, ok := seen[d]; ok {
			t.Errorf("states %d and %d share digest %x", j, i, d)
		}
		seen[d] = i
	}
	if (State{}).Digest() != 0 {
		t.Error("an absent key's digest is not 0")
	}
}

func TestFromRecordOfAbsentAndLive(t *testing.T) {
	v := record.Version{TS: 5, Node: 1}
	rec := record.Record{Value: record.Value{Version: v, Data: []byte("x")}, Expiry: record.Expiry{Version: v, At: 99}}
	if s := FromRecord(rec, false); s.Kind != None {
		t.Fatalf("a key that is not live reads as %v", s.Kind)
	}
	if s := FromRecord(rec, true); s.Kind != String || string(s.Str) != "x" || s.At != 99 {
		t.Fatalf("got %+v", s)
	}
}

// TestScriptDigestMatches: the digest the backend computes in Lua (the
// audit, the compare-and-set of writes) is State.Digest of what it holds.
func TestScriptDigestMatches(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	c.Set(ctx, "str", "hello", 0)
	c.Set(ctx, "empty", "", 0)
	c.Set(ctx, "bin", "\x00\xff:12:", time.Hour)
	c.HSet(ctx, "h", "f1", "a", "f2", "", "", "x")
	c.PExpireAt(ctx, "h", time.UnixMilli(4102444800123))
	c.SAdd(ctx, "s", "m1", "m2", "3")
	c.RPush(ctx, "l", "x", "", "x", "\x00")
	c.ZAdd(ctx, "z", redis.Z{Score: 0.1, Member: "a"}, redis.Z{Score: 1e21, Member: "b"}, redis.Z{Score: -1e-7, Member: ""},
		redis.Z{Score: math.Inf(1), Member: "c"}, redis.Z{Score: math.Inf(-1), Member: "d"}, redis.Z{Score: 3, Member: "e"})
	c.XAdd(ctx, &redis.XAddArgs{Stream: "x", Values: []string{"f", "v"}})
	keys := []string{"str", "empty", "bin", "h", "s", "l", "z", "x", "absent"}
	got, err := digestScript.Run(ctx, c, keys).StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	states, err := r.read(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if want := digestHex(states[i].Digest()); got[i] != want {
			t.Errorf("%s: script digest %s, State.Digest %s (%+v)", k, got[i], want, states[i])
		}
	}
}

// TestFromRecordMatchesBackend: a sorted set and a list written into a node
// read back as the backend holds the same keys.
func TestFromRecordMatchesBackend(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	scores := []float64{0.1, 1e21, -1e-7, math.Inf(1), 3, 2.5e-300}
	var zs []redis.Z
	e := node.TypedEdit{Kind: record.KindZSet}
	for i, sc := range scores {
		m := []byte{byte('a' + i)}
		zs = append(zs, redis.Z{Score: sc, Member: string(m)})
		e.Add, e.Scores = append(e.Add, m), append(e.Scores, sc)
	}
	c.ZAdd(ctx, "z", zs...)
	c.RPush(ctx, "l", "x", "y", "x")
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		if err := l.EditTyped([]byte("z"), e); err != nil {
			return err
		}
		return l.EditList([]byte("l"), node.ListEdit{Head: [][]byte{[]byte("x")}, Tail: [][]byte{[]byte("y"), []byte("x")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := newReader(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.read(ctx, []string{"z", "l"})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"z", "l"} {
		rec, live := n.Read([]byte(k))
		if got := FromRecord(rec, live); got.Digest() != want[i].Digest() {
			t.Errorf("%s: node %q %q, backend %q %q", k, got.Fields, got.Members, want[i].Fields, want[i].Members)
		}
	}
}

var printScripts = flag.String("print-scripts", "", "write the read and digest scripts into this directory (for bench/bridge-readcost.sh)")

// TestPrintScripts writes the scripts a benchmark measures in Redis, when
// asked to.
func TestPrintScripts(t *testing.T) {
	if *printScripts == "" {
		t.Skip("no -print-scripts")
	}
	for name, src := range map[string]string{"read.lua": readLua, "digest.lua": digestKeysLua} {
		if err := os.WriteFile(filepath.Join(*printScripts, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
