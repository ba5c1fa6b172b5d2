package record

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

// genTyped draws a typed state from a small universe of writes, so that
// states share elements and traces often. As in a real mesh, a dot names one
// write: the same dot always carries the same element, and a node's count at
// one version always has the same total.
func genTyped(r *rand.Rand) *Typed { return genTypedN(r, 12) }

// genTypedN draws from a universe of n element writes; past bigElems the
// states are held in the large form.
func genTypedN(r *rand.Rand, n int) *Typed {
	dot := func(i int) Version { return v(uint64(10+i/3), NodeID(i%3)) }
	name := func(i int) []byte { return fmt.Appendf(nil, "%c%d", 'a'+byte(i%4), i/40) }
	t := &Typed{}
	if r.IntN(4) > 0 {
		t.Kind, t.KindVersion = Kind(r.IntN(5)), v(uint64(r.IntN(6)), NodeID(r.IntN(3)))
	}
	// A list element's name is a position; a few share one (concurrent
	// LSETs of one element), most end with their own dot.
	elemName := func(i int) []byte {
		if i%4 != 3 {
			return name(i)
		}
		if i%3 == 0 {
			return appendLevel(nil, level{int64(i%5) - 2, dot(i / 9 * 9)})
		}
		return appendLevel(nil, level{int64(i%5) - 2, dot(i)})
	}
	gone := map[int]bool{}
	for i := range n {
		if r.IntN(4) == 0 {
			gone[i] = true
			// Concurrent removes of one element trace it at different times.
			t.Removed = append(t.Removed, trace(Elem{Name: elemName(i), Dot: dot(i)}, dot(i).TS+hlc.Timestamp(r.IntN(3))))
		}
	}
	for i := range n {
		if r.IntN(3) > 0 || gone[i] {
			continue
		}
		switch {
		case i%4 == 3:
			t.Listed = append(t.Listed, Elem{Name: elemName(i), Dot: dot(i), Value: fmt.Appendf(nil, "v%d", i)})
		case i%3 == 0:
			t.Fields = append(t.Fields, Elem{Name: name(i), Dot: dot(i), Value: fmt.Appendf(nil, "%d", i*11)})
		case i%3 == 1:
			t.Members = append(t.Members, Elem{Name: name(i), Dot: dot(i)})
		default:
			t.Scored = append(t.Scored, Elem{Name: name(i), Dot: dot(i), Value: ScoreValue(float64(i%7)*0.75 - 2)})
		}
	}
	total := func(ts uint64) int64 { return int64(ts*ts) - 5 }
	countNames := [][]byte{nil, []byte("a")}
	for i := 0; i < n; i += 3 { // a large state's counters: its counts in a tree
		countNames = append(countNames, name(i))
	}
	for _, name := range countNames {
		for node := range NodeID(3) {
			if r.IntN(2) == 0 {
				continue
			}
			ts := uint64(1 + r.IntN(5))
			c := Count{Name: name, Node: node, Ver: v(ts, node), Total: total(ts)}
			if r.IntN(4) == 0 {
				// A later run of counts (Count.Start): its totals start again.
				c.Start, c.Total = 7, total(ts)/3
			}
			if r.IntN(2) == 0 {
				rts := uint64(1 + r.IntN(int(ts)))
				c.ResetVer, c.ResetTotal = v(rts, node), total(rts)
				if node == 1 {
					c.FReset = exactTotal(rts, c.Start)
				}
			}
			if node == 1 { // float increments too (exact.go)
				c.FTotal = exactTotal(ts, c.Start)
			}
			t.Counts = append(t.Counts, c)
		}
	}
	// Score counts, their totals floats: a node's total at one version is
	// always the same.
	ftotal := func(ts uint64) int64 { return bitsOf(float64(ts*ts)*0.3 - 1) }
	for _, name := range [][]byte{[]byte("b0"), []byte("c0"), []byte("z")} {
		for node := range NodeID(3) {
			if r.IntN(2) == 0 {
				continue
			}
			ts := uint64(1 + r.IntN(5))
			c := Count{Name: name, Node: node, Ver: v(ts, node), Total: ftotal(ts)}
			if r.IntN(2) == 0 {
				rts := uint64(1 + r.IntN(int(ts)))
				c.ResetVer, c.ResetTotal = v(rts, node), ftotal(rts)
			}
			t.ScoreCounts = append(t.ScoreCounts, c)
		}
	}
	t.Normalize()
	if t.size() > bigElems {
		t = &Typed{Kind: t.Kind, KindVersion: t.KindVersion, big: t.bigCopy()}
	}
	return t
}

// exactTotal is a node's float total at version ts of its run started at
// start: one total per version, as in a real mesh.
func exactTotal(ts uint64, start hlc.Timestamp) Exact {
	f := new(big.Float).SetFloat64(float64(ts*ts)*0.1 - 1.7 + float64(start))
	return dyadicOf(f).encode()
}

// sameTyped compares two states element by element, whatever their forms.
func sameTyped(a, b *Typed) bool {
	if a.empty() || b.empty() {
		return a.empty() && b.empty()
	}
	return bytes.Equal(AppendTyped(nil, a), AppendTyped(nil, b)) && a.digest() == b.digest() && a.Len() == b.Len() &&
		a.ZLen() == b.ZLen() && a.ListLen() == b.ListLen() && sameListView(a.ListView(), b.ListView())
}

// sameZView compares two score orders entry by entry.
func sameZView(a, b ZView) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i := range a.Len() {
		x, y := a.At(i), b.At(i)
		if !bytes.Equal(x.Name, y.Name) || math.Float64bits(x.Score) != math.Float64bits(y.Score) {
			return false
		}
	}
	return true
}

// indexMatches checks a large state's score index, kept as merges change
// it, against the order computed from scratch.
func indexMatches(t *Typed) bool {
	if t.big == nil {
		return true
	}
	var want []ZEntry
	t.eachScore(func(e ZEntry) bool { want = append(want, e); return true })
	slices.SortFunc(want, CompareZ)
	return sameZView(t.ZView(), ZView{small: want})
}

func TestTypedMergeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	for i := range 20_000 {
		n := 12
		if i%100 == 0 {
			n = 800 // both forms, and merges between them
		}
		a, b, c := genTypedN(r, n), genTypedN(r, n), genTyped(r)
		if !sameTyped(mergeTyped(a, b), mergeTyped(b, a)) {
			t.Fatalf("not commutative:\n a=%+v\n b=%+v", a, b)
		}
		if !sameTyped(mergeTyped(mergeTyped(a, b), c), mergeTyped(a, mergeTyped(b, c))) {
			t.Fatalf("not associative:\n a=%+v\n b=%+v\n c=%+v", a, b, c)
		}
		if !sameTyped(mergeTyped(a, a), a) {
			t.Fatalf("not idempotent: %+v", a)
		}
		if m := mergeTyped(a, b); m.digest() != mergeTyped(b, a).digest() {
			t.Fatalf("equal states with different digests: %+v", m)
		}
		for _, kind := range []Kind{KindHash, KindSet} {
			m := *mergeTyped(a, b)
			m.Kind = kind
			if m.shows() != (m.Len() > 0) {
				t.Fatalf("shows %v with %d fields or members: %+v", m.shows(), m.Len(), m)
			}
		}
		if i%400 == 0 { // large states (n 800), a quarter of them: the check sorts
			if m := mergeTyped(mergeTyped(a, b), c); !indexMatches(m) || !indexMatches(mergeTyped(c, m)) {
				t.Fatalf("a large state's score index is not its members' order")
			}
		}
	}
}

// hash and set writes as a node's commands build them.
func hset(d Version, name, value string, seen *Typed) Record {
	return Record{Typed: &Typed{Kind: KindHash, KindVersion: d,
		Fields:  []Elem{{Name: []byte(name), Dot: d, Value: []byte(value)}},
		Removed: traces(seen.run(listFields, []byte(name)), d.TS), Counts: seen.Resets([]byte(name))}}
}

func hdel(d Version, name string, seen *Typed) Record {
	return Record{Typed: &Typed{Kind: KindHash, KindVersion: d, Removed: traces(seen.run(listFields, []byte(name)), d.TS), Counts: seen.Resets([]byte(name))}}
}

func sadd(d Version, name string) Record {
	return Record{Typed: &Typed{Kind: KindSet, KindVersion: d, Members: []Elem{{Name: []byte(name), Dot: d}}}}
}

func srem(d Version, name string, seen *Typed) Record {
	return Record{Typed: &Typed{Kind: KindSet, KindVersion: d, Removed: traces(seen.run(listMembers, []byte(name)), d.TS)}}
}

func delKey(d Version, seen Record) Record {
	return Record{Value: Value{Version: d, Tombstone: true}, Expiry: Expiry{Version: d}, Typed: seen.Typed.Clear(d.TS)}
}

func incr(d Version, by int64, seen Record) Record {
	c := seen.Typed.Count(nil, d.Node)
	return Record{Typed: &Typed{KindVersion: d, Counts: []Count{{Node: d.Node, Ver: d, Total: c.Total + by, ResetVer: c.ResetVer, ResetTotal: c.ResetTotal}}}}
}

func merged(recs ...Record) Record {
	var m Record
	for _, r := range recs {
		m = Merge(m, r)
	}
	return m
}

func fields(r Record) map[string]string {
	out := map[string]string{}
	r.Typed.EachField(func(n, v []byte) bool { out[string(n)] = string(v); return true })
	return out
}

func TestHashFieldsMergeOneByOne(t *testing.T) {
	a := hset(v(1, 1), "f", "A", nil)
	b := hset(v(2, 2), "g", "B", nil)
	if got := fields(merged(a, b)); got["f"] != "A" || got["g"] != "B" || len(got) != 2 {
		t.Fatalf("fields written at two nodes: %v", got)
	}
	// Concurrent writes of one field: the later version shows, at every node.
	x, y := hset(v(5, 1), "f", "x", nil), hset(v(5, 2), "f", "y", nil)
	if got := fields(merged(x, y))["f"]; got != "y" || fields(merged(y, x))["f"] != "y" {
		t.Fatalf("concurrent field writes: %q", got)
	}
}

func TestHDelRemovesOnlyWhatItObserved(t *testing.T) {
	base := hset(v(1, 1), "f", "old", nil)
	// Node 1 deletes f having seen only base; node 2 concurrently rewrote f.
	del := hdel(v(3, 1), "f", base.Typed)
	rewrite := hset(v(2, 2), "f", "new", base.Typed)
	for _, order := range [][]Record{{base, del, rewrite}, {base, rewrite, del}, {rewrite, del, base}} {
		if got := fields(merged(order...)); got["f"] != "new" {
			t.Fatalf("the concurrent write of f must survive the HDEL: %v", got)
		}
	}
	// An HDEL that observed the field removes it; a late copy of the add
	// does not bring it back.
	gone := merged(base, hdel(v(4, 1), "f", base.Typed), base)
	if gone.Exists() {
		t.Fatalf("the field came back: %v", fields(gone))
	}
}

func TestSetAddWins(t *testing.T) {
	s := merged(sadd(v(1, 1), "m"))
	rem := srem(v(3, 1), "m", s.Typed)
	again := sadd(v(2, 2), "m") // concurrent with the SREM
	for _, order := range [][]Record{{s, rem, again}, {again, s, rem}, {rem, again, s}} {
		if m := merged(order...); !m.Typed.HasMember([]byte("m")) || m.Kind() != KindSet {
			t.Fatalf("concurrent SADD must win over SREM: %+v", m.Typed)
		}
	}
	if m := merged(s, rem); m.Exists() {
		t.Fatalf("SREM of the only member leaves an empty set: %+v", m.Typed)
	}
}

func TestCountersAddUp(t *testing.T) {
	base := Record{Value: Value{Version: v(1, 1), Data: []byte("10")}}
	a := incr(v(2, 1), 5, base)
	b := incr(v(2, 2), 7, base)
	b2 := incr(v(3, 2), -2, merged(base, b))
	if got := string(merged(base, a, b, b2).StringData()); got != "20" {
		t.Fatalf("10 + 5 + 7 - 2 = %s", got)
	}
	// A SET that observed a's increment resets it, not b's concurrent ones.
	seen := merged(base, a)
	set := Record{Value: Value{Version: v(4, 1), Data: []byte("100")}, Typed: &Typed{KindVersion: v(4, 1), Counts: seen.Typed.Resets(nil)}}
	if got := string(merged(base, a, b, b2, set).StringData()); got != "105" {
		t.Fatalf("SET 100 with b's +7-2 unobserved = %s", got)
	}
	// A DEL concurrent with an increment leaves the increment.
	del := delKey(v(5, 1), merged(base, a, b, set))
	later := incr(v(6, 2), 1, merged(base, b, b2))
	m := merged(base, a, b, set, del, b2, later)
	if got := string(m.StringData()); !m.Exists() || got != "-1" {
		t.Fatalf("after DEL, the unobserved -2 and +1 = %q (exists %v)", got, m.Exists())
	}
}

func TestTypeConflictResolvesAlikeEverywhere(t *testing.T) {
	str := Record{Value: Value{Version: v(3, 1), Data: []byte("s")}, Typed: &Typed{Kind: KindString, KindVersion: v(3, 1)}}
	h := hset(v(4, 2), "f", "v", nil)
	for _, m := range []Record{merged(str, h), merged(h, str)} {
		if m.Kind() != KindHash || !m.Exists() {
			t.Fatalf("the later write's type must show: %v", m.Kind())
		}
	}
}

func TestTypedEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 9))
	for range 2000 {
		rec := genRecord(r)
		rec.Typed = genTyped(r)
		got, err := Decode(Encode(rec))
		if err != nil || !Equal(got, rec) {
			t.Fatalf("round trip of %+v: %+v, %v", rec, got, err)
		}
		if len(Encode(rec)) > EncodedSize(rec) {
			t.Fatalf("EncodedSize %d < %d", EncodedSize(rec), len(Encode(rec)))
		}
	}
}

func TestTypedDecodeRefusesDisorder(t *testing.T) {
	rec := Record{Typed: &Typed{Kind: KindSet, Members: []Elem{{Name: []byte("b"), Dot: v(1, 1)}, {Name: []byte("a"), Dot: v(2, 1)}}}}
	if _, err := Decode(Encode(rec)); err == nil {
		t.Fatal("members out of order decoded")
	}
}

// A large state's digest, kept as it changes, equals the digest computed
// from scratch, and its encoding decodes to the same state.
func TestLargeStateDigestAndEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for range 50 {
		a, b := genTypedN(r, 900), genTypedN(r, 900)
		m := mergeTyped(a, b)
		if m.big == nil {
			t.Fatal("a merge of large states is not large")
		}
		enc := AppendTyped(nil, m)
		small, err := DecodeTyped(enc)
		if err != nil {
			t.Fatal(err)
		}
		if small.digest() != m.digest() || small.Len() != m.Len() {
			t.Fatalf("digest %x / len %d of the large form, %x / %d decoded", m.digest(), m.Len(), small.digest(), small.Len())
		}
		if !bytes.Equal(AppendTyped(nil, small), enc) {
			t.Fatal("re-encoding differs")
		}
	}
}

// Merging into a large state leaves the state merged into as it was.
func TestLargeStateMergeCopiesOnWrite(t *testing.T) {
	s := &Typed{Kind: KindSet, KindVersion: v(1, 1)}
	for i := range 1000 {
		s.Members = append(s.Members, Elem{Name: fmt.Appendf(nil, "m%04d", i), Dot: v(uint64(100+i), 1)})
	}
	s = mergeTyped(s, &Typed{Kind: KindSet, KindVersion: v(2, 1), Members: []Elem{{Name: []byte("extra"), Dot: v(5000, 1)}}})
	before := AppendTyped(nil, s)
	d := &Typed{Kind: KindSet, KindVersion: v(3, 2), Removed: traces(s.run(listMembers, []byte("m0007")), v(3, 2).TS), Members: []Elem{{Name: []byte("new"), Dot: v(6000, 2)}}}
	m := mergeTyped(s, d)
	if !bytes.Equal(AppendTyped(nil, s), before) {
		t.Fatal("the merge changed the state it merged into")
	}
	if m.HasMember([]byte("m0007")) || !m.HasMember([]byte("new")) || m.Len() != 1001 || s.Len() != 1001 {
		t.Fatalf("merged: has m0007 %v, new %v, len %d (was %d)", m.HasMember([]byte("m0007")), m.HasMember([]byte("new")), m.Len(), s.Len())
	}
}

// TestHIncrByLargeHash counts in 12,000 fields of one hash, each increment
// built and merged as a node does (TypedOp, then a merge into the key's
// state), two nodes' increments alike: every value is the sum of its
// increments, whichever node made them, and an increment of a large hash
// allocates what a path of its trees takes, not a copy of every count.
func TestHIncrByLargeHash(t *testing.T) {
	const fields = 12_000
	var st *Typed
	ts := uint64(0)
	incr := func(field []byte, by int64, node NodeID) {
		ts++
		cur := Record{Typed: st}
		op := BeginTyped(cur, st != nil, KindHash, v(ts, node), nil)
		if _, had := st.FieldValue(field); !had {
			if _, err := op.SetField(field, []byte("0")); err != nil {
				t.Fatal(err)
			}
		}
		op.IncrCounter(field, by)
		m, _ := MergeInto(cur, op.Delta())
		st = m.Typed
	}
	name := func(i int) []byte { return fmt.Appendf(nil, "f:%06d", i) }
	for i := range fields {
		incr(name(i), int64(i), NodeID(1+i%2))
	}
	for i := range fields {
		incr(name(i), 3, NodeID(2-i%2)) // the other node's count of the field
	}
	if st.big == nil || st.countLen() != 2*fields {
		t.Fatalf("large form %v, %d counts; want the large form and %d", st.big != nil, st.countLen(), 2*fields)
	}
	if got := st.Len(); got != fields {
		t.Fatalf("HLEN %d, want %d", got, fields)
	}
	for i := range fields {
		if got, _ := st.FieldValue(name(i)); string(got) != fmt.Sprint(i+3) {
			t.Fatalf("field %d reads %q, want %d", i, got, i+3)
		}
	}
	field := name(fields / 2)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 100
	for range n {
		cur := Record{Typed: st}
		op := BeginTyped(cur, true, KindHash, v(ts+1, 1), nil)
		op.IncrCounter(field, 1)
		MergeInto(cur, op.Delta())
	}
	runtime.ReadMemStats(&after)
	// A copy of the counts alone would be 24,000 Counts, some 3 MB.
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 64<<10 {
		t.Fatalf("%d bytes allocated an increment of a hash of %d counters", per, fields)
	}
}

// TestTypedInMemoryForm: AppendTyped's form decodes to the state it was
// written from, and takes less than half the encoding's bytes for a small
// hash whose fields one command wrote.
func TestTypedInMemoryForm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	for i := range 3000 {
		n := 12
		if i%100 == 0 {
			n = 300
		}
		a := genTypedN(r, n)
		if i%2 == 0 {
			a = mergeTyped(a, genTypedN(r, n))
		}
		b := AppendTyped(nil, a)
		got, err := DecodeTyped(b)
		if err != nil {
			t.Fatalf("%v: %+v", err, a)
		}
		if !sameTyped(got, a) || got.digest() != a.digest() {
			t.Fatalf("decoded\n %+v\nfrom\n %+v", got, a)
		}
		if _, err := DecodeTyped(b[:len(b)-1]); err == nil && len(b) > 0 {
			t.Fatalf("a truncated state decoded: %+v", a)
		}
	}
	h := &Typed{Kind: KindHash, KindVersion: v(1<<40, 7)}
	for i := range 10 {
		h.Fields = append(h.Fields, Elem{Name: fmt.Appendf(nil, "field:%d", i), Dot: v(1<<40+uint64(i), 7), Value: []byte("value00000")})
	}
	if mem, enc := len(AppendTyped(nil, h)), len(appendTyped(nil, h)); mem > enc/2 {
		t.Fatalf("in memory %d bytes, encoded %d", mem, enc)
	}
}

// FuzzDecodeTyped: any bytes decode to a state in the in-memory form or an
// error, never a panic, and what decodes encodes back alike.
func FuzzDecodeTyped(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 8 {
		f.Add(AppendTyped(nil, genTyped(r)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeTyped(b)
		if err != nil {
			return
		}
		again, err := DecodeTyped(AppendTyped(nil, got))
		if err != nil || !sameTyped(again, got) {
			t.Fatalf("re-encoded state: %v", err)
		}
	})
}

// genCounter draws a string counter's state of one count, as INCR at one
// node leaves it: runs, versions, totals and resets from a small universe.
func genCounter(r *rand.Rand) *Typed {
	ts := uint64(1 + r.IntN(5))
	c := Count{Node: 1, Start: hlc.Timestamp(r.IntN(2)), Ver: v(ts, 1), Total: int64(ts*ts) - 5}
	if r.IntN(3) == 0 {
		c.ResetVer, c.ResetTotal = v(ts-1, 1), int64((ts-1)*(ts-1))-5
	}
	return &Typed{KindVersion: v(uint64(r.IntN(6)), NodeID(r.IntN(3))), Counts: []Count{c}}
}

// TestOneCountMerge: the merge of two one-count states (an INCR's delta
// into a counter one node increments), which allocates them together,
// keeps the merge's properties and agrees with the merge of counts lists.
func TestOneCountMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for range 5000 {
		a, b, c := genCounter(r), genCounter(r), genCounter(r)
		if !oneCount(a) || !oneCount(b) {
			t.Fatalf("not one count: %+v %+v", a, b)
		}
		m := mergeTyped(a, b)
		want := &Typed{Counts: unionSorted(a.Counts, b.Counts, compareCountKey, mergeCount)}
		want.Kind, want.KindVersion = mergedKind(a, b)
		if !sameTyped(m, want) {
			t.Fatalf("merged %+v, want %+v", m, want)
		}
		if !sameTyped(m, mergeTyped(b, a)) || !sameTyped(mergeTyped(m, c), mergeTyped(a, mergeTyped(b, c))) || !sameTyped(mergeTyped(a, a), a) {
			t.Fatalf("merge properties broken for %+v %+v %+v", a, b, c)
		}
	}
}

// TestDecodeTypedDetached: a state decoded by DecodeTypedDetached keeps
// its contents when its encoding is overwritten, whether it decoded in
// place (a string's counters) or from a copy.
func TestDecodeTypedDetached(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 1))
	for i := range 2000 {
		a := genTyped(r)
		switch i % 3 {
		case 0:
			a = genCounter(r)
		case 1:
			// A string over a hash's hidden field and its counter: names and
			// a value that a decode in place would alias.
			a = genCounter(r)
			a.Fields = []Elem{{Name: []byte("field"), Dot: v(3, 2), Value: []byte("value")}}
			a.Counts = append(a.Counts, Count{Name: []byte("field"), Node: 2, Ver: v(4, 2), Total: 9})
		}
		b := AppendTyped(nil, a)
		got, err := DecodeTypedDetached(b)
		if err != nil {
			t.Fatalf("%v: %+v", err, a)
		}
		for j := range b {
			b[j] = 0xff
		}
		if !sameTyped(got, a) {
			t.Fatalf("decoded\n %+v\nafter its encoding was overwritten, from\n %+v", got, a)
		}
	}
}
