package bridge

import (
	"context"
	"testing"
	"time"

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
	c.RPush(ctx, "l", "x")
	keys := []string{"str", "empty", "bin", "h", "s", "l", "absent"}
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
