package record

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/hll"
)

// genHLL draws a sketch from a small universe: four epochs, some removed,
// registers set at a few places (some beyond the size at which the encoding
// packs them), cache writes whose version always carries the same field.
func genHLL(r *rand.Rand) *HLL {
	h := &HLL{}
	for i := range 4 {
		epoch := v(uint64(1+i), NodeID(i%2))
		switch r.IntN(4) {
		case 0:
			h.Removed = append(h.Removed, epoch)
		case 1, 2:
			e := HLLEpoch{Epoch: epoch, Dense: r.IntN(4) == 0}
			if r.IntN(5) > 0 {
				e.Regs = make([]byte, hll.Registers)
				n := 1 + r.IntN(8)
				if r.IntN(5) == 0 {
					n = 9000
				}
				for range n {
					e.Regs[r.IntN(hll.Registers)] = byte(1 + r.IntN(hll.MaxRegister))
				}
			}
			h.Epochs = append(h.Epochs, e)
		}
	}
	if r.IntN(2) == 0 || h.empty() {
		ts := uint64(1 + r.IntN(4))
		h.Cache = HLLCache{Ver: v(ts, 1), Card: ts * 7, Of: ts * 13}
	}
	return h
}

func TestHLLMergeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
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

// pfadd is a PFADD's delta to epoch e as a node builds it: the registers
// the elements raise.
func pfadd(e Version, elems ...string) *HLL {
	regs := make([]byte, hll.Registers)
	for _, x := range elems {
		i, val := hll.Hash([]byte(x))
		regs[i] = max(regs[i], val)
	}
	return &HLL{Epochs: []HLLEpoch{{Epoch: e, Regs: regs}}}
}

// TestHLLMergeKeepsEveryAdd: adds at different nodes, to one epoch or to
// epochs two nodes created at once, merged in any order and more than once,
// give the registers of all of them.
func TestHLLMergeKeepsEveryAdd(t *testing.T) {
	var deltas []*HLL
	var all []string
	for i := range 60 {
		x := string(rune('a'+i%26)) + string(rune('0'+i/26))
		all = append(all, x)
		deltas = append(deltas, pfadd(v(1+uint64(i%3), NodeID(i%3)), x))
	}
	want := pfadd(v(9, 9), all...).Epochs[0].Regs
	r := rand.New(rand.NewPCG(1, 1))
	for range 10 {
		r.Shuffle(len(deltas), func(i, j int) { deltas[i], deltas[j] = deltas[j], deltas[i] })
		var m *HLL
		for _, d := range deltas {
			m = mergeHLL(m, d)
			m = mergeHLL(m, d)
		}
		if !bytes.Equal(m.Registers(), want) {
			t.Fatal("an add was lost")
		}
	}
}

// TestHLLRecord: the key shows its sketch as Redis's string while the value
// register holds an epoch; a SET over it replaces it and removes the epochs
// it observed, so a PFADD to one of them arriving later adds nothing back,
// while an epoch another node created concurrently survives.
func TestHLLRecord(t *testing.T) {
	eA, eB := v(5, 1), v(5, 2)
	create := func(e Version, elems ...string) Record {
		h := pfadd(e, elems...)
		h.Cache = HLLCache{Ver: e, Card: hll.CacheInvalid}
		return Record{Value: Value{Version: e}, Expiry: Expiry{Version: e}, Typed: &Typed{KindVersion: e, HLL: h}}
	}
	a, b := create(eA, "a"), create(eB, "b")
	m := Merge(a, b)
	want := hll.Encode(pfadd(eA, "a", "b").Epochs[0].Regs, false, hll.CacheInvalid)
	if got := m.StringData(); !bytes.Equal(got, want) {
		t.Fatalf("StringData = %q, want %q", got, want)
	}
	if !m.Exists() || m.Kind() != KindString || m.Newest() != eB {
		t.Fatalf("exists %v kind %v newest %v", m.Exists(), m.Kind(), m.Newest())
	}
	// A SET at a node that had seen only a's epoch, as node.put builds it.
	set := Record{Value: Value{Version: v(7, 1), Data: []byte("x")}, Typed: a.Typed.Clear(v(7, 1).TS)}
	set.Typed.KindVersion = v(7, 1)
	late := Record{Typed: &Typed{HLL: pfadd(eA, "late")}}
	after := Merge(Merge(m, set), late)
	if string(after.StringData()) != "x" {
		t.Fatalf("after SET: %q", after.StringData())
	}
	if h := after.Typed.HLL; len(h.Epochs) != 1 || h.Epochs[0].Epoch != eB {
		t.Fatalf("after SET the epochs are %+v, want b's alone", h.Epochs)
	}
	back, err := Decode(Encode(after))
	if err != nil || !Equal(back, after) {
		t.Fatalf("round trip: %v", err)
	}
	// An expiry sweep removes every epoch.
	if sw := m.Swept(); sw.Typed.HLL.Epochs != nil || sw.Exists() {
		t.Fatalf("swept: %+v", sw.Typed.HLL)
	}
}

func TestHLLEncodingRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 200 {
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
	// A state without a sketch has no sketch flag in the kind byte.
	plain := &Typed{Kind: KindSet, KindVersion: v(1, 1)}
	if b := AppendTyped(nil, plain); b[0]&kindHasHLL != 0 || Kind(b[0]&^kindFlags) != KindSet {
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
