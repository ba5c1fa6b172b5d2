package record

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/hll"
)

// genHLL draws a sketch from a small universe: three epochs, registers set
// at a few places (some beyond the size at which the encoding packs them),
// cache writes whose version always carries the same field.
func genHLL(r *rand.Rand) *HLL {
	h := &HLL{Epoch: v(uint64(1+r.IntN(3)), NodeID(r.IntN(2)))}
	if r.IntN(6) == 0 {
		h.Gone = true
		return h
	}
	h.Dense = r.IntN(4) == 0
	if r.IntN(5) > 0 {
		h.Regs = make([]byte, hll.Registers)
		n := 1 + r.IntN(8)
		if r.IntN(5) == 0 {
			n = 9000
		}
		for range n {
			h.Regs[r.IntN(hll.Registers)] = byte(1 + r.IntN(hll.MaxRegister))
		}
	}
	if r.IntN(2) == 0 {
		ts := uint64(1 + r.IntN(4))
		h.Cache = HLLCache{Ver: v(ts, 1), Card: ts * 7, Of: ts * 13}
	}
	return h
}

func TestHLLMergeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 3_000 {
		a, b, c := genHLL(r), genHLL(r), genHLL(r)
		if !equalHLL(mergeHLL(a, b), mergeHLL(b, a)) {
			t.Fatalf("not commutative:\n a=%+v\n b=%+v", a, b)
		}
		if !equalHLL(mergeHLL(mergeHLL(a, b), c), mergeHLL(a, mergeHLL(b, c))) {
			t.Fatalf("not associative")
		}
		if !equalHLL(mergeHLL(a, a), a) {
			t.Fatalf("not idempotent: %+v", a)
		}
		// Through the typed state: the merge, its equality and its digest.
		ta, tb := &Typed{HLL: a}, &Typed{HLL: b}
		if m := mergeTyped(ta, tb); m.digest() != mergeTyped(tb, ta).digest() {
			t.Fatalf("equal states with different digests")
		}
	}
}

// TestHLLMergeKeepsEveryAdd: adds at different nodes to one epoch, merged in
// any order, give the registers of all of them.
func TestHLLMergeKeepsEveryAdd(t *testing.T) {
	epoch := v(1, 1)
	want := make([]byte, hll.Registers)
	var deltas []*HLL
	for i := range 50 {
		d := &HLL{Epoch: epoch, Regs: make([]byte, hll.Registers)}
		idx, val := hll.Hash([]byte{byte(i), 'x'})
		d.Regs[idx] = val
		want[idx] = max(want[idx], val)
		deltas = append(deltas, d)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		r.Shuffle(len(deltas), func(i, j int) { deltas[i], deltas[j] = deltas[j], deltas[i] })
		var m *HLL
		for _, d := range deltas {
			m = mergeHLL(m, d)
			m = mergeHLL(m, d) // twice: idempotent
		}
		if !bytes.Equal(m.Regs, want) {
			t.Fatal("an add was lost")
		}
	}
}

// TestHLLRecord: the key shows its sketch as Redis's string while the value
// register holds the epoch; a SET over it replaces it, and a PFADD of the old
// epoch arriving after the SET adds nothing back.
func TestHLLRecord(t *testing.T) {
	e := v(5, 1)
	regs := make([]byte, hll.Registers)
	idx, val := hll.Hash([]byte("a"))
	regs[idx] = val
	created := Record{
		Value:  Value{Version: e},
		Expiry: Expiry{Version: e},
		Typed:  &Typed{KindVersion: e, HLL: &HLL{Epoch: e, Cache: HLLCache{Ver: e, Card: hll.CacheInvalid}}},
	}
	add := Record{Typed: &Typed{KindVersion: v(6, 2), HLL: &HLL{Epoch: e, Regs: regs}}}
	m := Merge(created, add)
	want := hll.Encode(regs, false, hll.CacheInvalid)
	if got := m.StringData(); !bytes.Equal(got, want) {
		t.Fatalf("StringData = %q, want %q", got, want)
	}
	if !m.Exists() || m.Kind() != KindString || m.Newest() != v(6, 2) {
		t.Fatalf("exists %v kind %v newest %v", m.Exists(), m.Kind(), m.Newest())
	}
	// A SET at another node, as node.put builds it.
	set := Record{Value: Value{Version: v(7, 1), Data: []byte("x")}, Typed: m.Typed.Clear()}
	set.Typed.KindVersion = v(7, 1)
	after := Merge(Merge(m, set), Record{Typed: &Typed{HLL: &HLL{Epoch: e, Regs: regs}}})
	if string(after.StringData()) != "x" || after.Typed.HLL.Regs != nil {
		t.Fatalf("after SET: %q, %+v", after.StringData(), after.Typed.HLL)
	}
	b, err := Decode(Encode(after))
	if err != nil || !Equal(b, after) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestHLLEncodingRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 500 {
		ty := genTyped(r)
		ty.HLL = genHLL(r)
		rec := Record{Value: Value{Version: v(1, 1), Data: []byte("d")}, Typed: ty}
		enc := Encode(rec)
		if len(enc) > EncodedSize(rec) {
			t.Fatalf("encoding of %d bytes, EncodedSize %d", len(enc), EncodedSize(rec))
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !Equal(back, rec) || !bytes.Equal(Encode(back), enc) {
			t.Fatalf("round trip differs")
		}
	}
	// A state without a sketch encodes as before: no flag in the kind byte.
	plain := &Typed{Kind: KindSet, KindVersion: v(1, 1)}
	if b := AppendTyped(nil, plain); b[0] != byte(KindSet) {
		t.Fatalf("kind byte %#x", b[0])
	}
}

// FuzzDecodeHLL: any bytes decode to a sketch or an error, never a panic, and
// a sketch decoded re-encodes to the same bytes.
func FuzzDecodeHLL(f *testing.F) {
	r := rand.New(rand.NewPCG(2, 2))
	for range 8 {
		f.Add(appendHLL(nil, genHLL(r)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, rest, err := decodeHLL(b)
		if err != nil {
			return
		}
		if enc := appendHLL(nil, h); !bytes.Equal(enc, b[:len(b)-len(rest)]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, b[:len(b)-len(rest)])
		}
	})
}
