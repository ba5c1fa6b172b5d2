package record

import (
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"unsafe"

	"github.com/redmesh/redmesh/hlc"
)

// intCounter is a string counter over base with one count per total, each
// from a node of its own, none reset but the last, which resets reset.
func intCounter(base string, totals []int64, reset int64) Record {
	r := Record{Value: Value{Version: Version{TS: hlc.New(1, 0), Node: 1}, Data: []byte(base)}}
	t := &Typed{Kind: KindString}
	for i, total := range totals {
		c := Count{Node: NodeID(i + 1), Ver: Version{TS: hlc.New(2, 0), Node: NodeID(i + 1)}, Total: total}
		if i == len(totals)-1 && reset != 0 {
			c.ResetVer, c.ResetTotal = c.Ver, reset
		}
		t.Counts = append(t.Counts, c)
	}
	r.Typed = t
	return r
}

// Counts merged from several nodes can add up past an int64, though each
// node keeps its own within one: the value is then the exact sum, not one
// wrapped around.
func TestIntCounterBeyondInt64(t *testing.T) {
	for _, tc := range []struct {
		base   string
		totals []int64
		reset  int64
		want   string
		exists bool
	}{
		{"0", []int64{math.MaxInt64, 1}, 0, "9223372036854775808", true},
		{"1", []int64{math.MaxInt64}, 0, "9223372036854775808", true},
		{"0", []int64{math.MinInt64, -1}, 0, "-9223372036854775809", true},
		{"-5", []int64{math.MinInt64}, 0, "-9223372036854775813", true},
		{"0", []int64{math.MaxInt64, math.MaxInt64, 2}, 0, "18446744073709551616", true},
		// Wrapped, these counts add to 0 and the key would vanish.
		{"", []int64{math.MaxInt64, math.MaxInt64, 2}, 0, "18446744073709551616", true},
		// A total and its reset far apart: what is left fits.
		{"0", []int64{7, math.MaxInt64}, math.MaxInt64 - 3, "10", true},
		{"0", []int64{7, math.MaxInt64}, math.MinInt64 + 1, "18446744073709551621", true},
		{"3", []int64{math.MaxInt64, -4}, 0, "9223372036854775806", true},
		{"", []int64{math.MaxInt64, math.MinInt64 + 1}, 0, "", false},
	} {
		r := intCounter(tc.base, tc.totals, tc.reset)
		if tc.base == "" {
			r.Value = Value{Version: r.Value.Version, Tombstone: true}
		}
		if got := string(r.StringData()); got != tc.want {
			t.Errorf("base %q counts %v reset %d: value %s, want %s", tc.base, tc.totals, tc.reset, got, tc.want)
		}
		if r.Exists() != tc.exists {
			t.Errorf("base %q counts %v: exists %v, want %v", tc.base, tc.totals, r.Exists(), tc.exists)
		}
	}
}

// On random counts the value is the exact sum of the base and every
// count's total minus its reset.
func TestIntCounterIsExactSum(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func() int64 {
		switch rnd.IntN(3) {
		case 0:
			return rnd.Int64N(1000) - 500
		case 1:
			return math.MaxInt64 - rnd.Int64N(1000)
		}
		return math.MinInt64 + rnd.Int64N(1000)
	}
	for range 2000 {
		base := pick()
		totals := make([]int64, 1+rnd.IntN(4))
		for i := range totals {
			totals[i] = pick()
		}
		reset := pick()
		r := intCounter(big.NewInt(base).String(), totals, reset)
		want := big.NewInt(base)
		for _, c := range r.Typed.Counts {
			want.Add(want, big.NewInt(c.Total))
			want.Sub(want, big.NewInt(c.ResetTotal))
		}
		if got := string(r.StringData()); got != want.String() {
			t.Fatalf("base %d counts %+v: value %s, want %s", base, r.Typed.Counts, got, want)
		}
	}
}

// A large hash whose fields are counters holds a count per field and node
// beside its elements: MemSize counts them.
func TestMemSizeCountsCounters(t *testing.T) {
	ts := uint64(0)
	next := func() (Version, error) {
		ts++
		return Version{TS: hlc.New(1000, 0) + hlc.Timestamp(ts), Node: 7}, nil
	}
	var rec Record
	for i := range 2 * bigElems {
		v, _ := next()
		op := BeginTyped(rec, rec.Typed != nil, KindHash, v, next)
		if _, err := op.SetField([]byte(strconv.Itoa(i)), []byte("0")); err != nil {
			t.Fatal(err)
		}
		rec = Merge(rec, op.Delta())
	}
	if !rec.Typed.Large() {
		t.Fatal("the hash is not large")
	}
	plain := rec.Typed.MemSize()
	for i := range 2 * bigElems {
		v, _ := next()
		op := BeginTyped(rec, true, KindHash, v, next)
		op.IncrCounter([]byte(strconv.Itoa(i)), 1)
		rec = Merge(rec, op.Delta())
	}
	want := int64(2*bigElems) * int64(unsafe.Sizeof(Count{}))
	if got := rec.Typed.MemSize() - plain; got < want {
		t.Fatalf("%d counts add %d bytes to MemSize, want at least %d", 2*bigElems, got, want)
	}
}

// A field a delete left with increments it did not observe has counts and
// no element; a base written under them keeps it once they add nothing.
func TestBaseFieldKeepsFieldAtZero(t *testing.T) {
	ts := uint64(0)
	at := func(node NodeID) func() (Version, error) {
		return func() (Version, error) {
			ts++
			return Version{TS: hlc.New(1000, 0) + hlc.Timestamp(ts), Node: node}, nil
		}
	}
	write := func(rec Record, node NodeID, f func(op *TypedOp)) Record {
		next := at(node)
		v, _ := next()
		op := BeginTyped(rec, rec.Typed != nil, KindHash, v, next)
		f(op)
		return op.Delta()
	}
	f := []byte("f")
	a := Merge(Record{}, write(Record{}, 1, func(op *TypedOp) { op.SetField(f, []byte("10")) }))
	b := a
	b = Merge(b, write(b, 2, func(op *TypedOp) { op.IncrCounter(f, 5) })) // unseen at a
	a = Merge(a, write(a, 1, func(op *TypedOp) { op.DelField(f) }))
	a = Merge(a, b)
	if v, ok := a.Typed.FieldValue(f); !ok || string(v) != "5" {
		t.Fatalf("after the HDEL and the unseen increment: %q %v, want 5", v, ok)
	}
	for _, base := range []bool{false, true} {
		dec := write(a, 1, func(op *TypedOp) {
			if base {
				if _, err := op.BaseField(f); err != nil {
					t.Fatal(err)
				}
			}
			op.IncrCounter(f, -5)
		})
		v, ok := Merge(a, dec).Typed.FieldValue(f)
		if base && (!ok || string(v) != "0") {
			t.Fatalf("with a base, the field brought to 0: %q %v, want 0", v, ok)
		}
		if !base && ok {
			t.Fatalf("without a base, the field brought to 0 is %q; the test shows nothing", v)
		}
	}
}

// ParseInt accepts what Redis's string2ll accepts, and only that.
func TestParseIntAsRedis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"-7", -7, true},
		{"1234567890", 1234567890, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551615", 0, false},
		{"18446744073709551616", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"+5", 0, false},
		{"007", 0, false},
		{"00", 0, false},
		{"-0", 0, false},
		{"-07", 0, false},
		{" 5", 0, false},
		{"5 ", 0, false},
		{"1a", 0, false},
		{"1.0", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"5\x00", 0, false},
		{"--5", 0, false},
	} {
		got, ok := ParseInt([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// Every int64 printed reads back.
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		v := int64(r.Uint64()) >> r.IntN(64)
		if got, ok := ParseInt(strconv.AppendInt(nil, v, 10)); !ok || got != v {
			t.Fatalf("ParseInt(%d) = %d, %v", v, got, ok)
		}
	}
}

// A counter whose base is a string INCR refuses, "007" (a SET at one node
// concurrent with an INCR at another), is not added to as the integer 7
// but as a number, as INCRBYFLOAT reads it: the value shown is the same
// sum, printed as a long double.
func TestCounterBaseNotAnInteger(t *testing.T) {
	if v, ok := intCounterValue([]byte("007"), 1, true, nil); ok {
		t.Fatalf("base 007 read as an integer: %s", v)
	}
	if v, ok := intCounterValue([]byte("+5"), 1, true, nil); ok {
		t.Fatalf("base +5 read as an integer: %s", v)
	}
	if v, ok := intCounterValue([]byte("5"), 1, true, nil); !ok || string(v) != "6" {
		t.Fatalf("base 5 plus 1: %s, %v", v, ok)
	}
	for base, want := range map[string]string{"007": "8", "+5": "6", "-0": "1", "5": "6", "x": "x"} {
		if got := counterValue([]byte(base), []Count{{Total: 1}}); string(got) != want {
			t.Errorf("base %q plus 1 shows %q, want %q", base, got, want)
		}
	}
}

// TestPeekCounter: PeekCounter reads exactly the states of one integer
// count of a string's own counter, as the decode reads them, and refuses
// every other state.
func TestPeekCounter(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 3))
	for i := range 4000 {
		a := genTyped(r)
		if i%2 == 0 {
			a = genCounter(r)
		}
		st, ok := PeekCounter(AppendTyped(nil, a))
		want := a.Kind == KindString && oneCount(a) && len(a.Counts[0].Name) == 0 &&
			a.Counts[0].FTotal == "" && a.Counts[0].FReset == ""
		if ok != want {
			t.Fatalf("PeekCounter ok %v, want %v: %+v", ok, want, a)
		}
		if ok && (!sameTyped(st.Typed(), a) || st.Digest() != a.digest()) {
			t.Fatalf("peeked %+v from %+v", st, a)
		}
	}
	float := genCounter(r)
	float.Counts[0].FTotal = "1"
	if _, ok := PeekCounter(AppendTyped(nil, float)); ok {
		t.Fatalf("a state with a float count read as a counter")
	}
}

// TestCounterSupersedes: a state that Supersedes another is what merging
// it into the other gives, which is why a writer may store it unmerged;
// and an increment as TypedOp builds it over a counter supersedes it.
func TestCounterSupersedes(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 9))
	seen := 0
	for range 20000 {
		a, b := genCounter(r), genCounter(r)
		sa, _ := PeekCounter(AppendTyped(nil, a))
		sb, _ := PeekCounter(AppendTyped(nil, b))
		if sb.Supersedes(sa) {
			seen++
			if !sameTyped(mergeTyped(a, b), b) || !sameTyped(mergeTyped(b, a), b) {
				t.Fatalf("%+v supersedes %+v but does not merge into it as itself", b, a)
			}
		}
	}
	if seen == 0 {
		t.Fatalf("no pair superseded")
	}
	cur := Record{Value: Value{Version: v(1, 1), Data: []byte("5")}, Typed: genCounter(r)}
	cur.Typed.Counts[0].Node = 9
	st, _ := PeekCounter(AppendTyped(nil, cur.Typed))
	op := BeginTyped(cur, true, KindString, v(100, 1), nil)
	op.Counter = 9
	op.IncrCounter(nil, 3)
	next, ok := PeekCounter(AppendTyped(nil, op.Delta().Typed))
	if !ok || !next.Supersedes(st) || next.Count.Total != st.Count.Total+3 {
		t.Fatalf("an increment %+v does not supersede the counter %+v", next, st)
	}
}

// TestAppendCounter: a counter's encodings written straight from its
// CounterState are byte for byte those of the state it stands for, in
// memory (AppendTyped) and in a record (AppendBinary), and PeekCounter
// reads the first back.
func TestAppendCounter(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 5))
	wide := func() uint64 { return r.Uint64() >> r.IntN(64) }
	for i := range 5000 {
		var s CounterState
		if i%4 == 0 {
			st, ok := PeekCounter(AppendTyped(nil, genCounter(r)))
			if !ok {
				t.Fatalf("genCounter's state is not a counter")
			}
			s = st
		} else {
			s.KindVersion = Version{TS: hlc.Timestamp(wide()), Node: NodeID(wide())}
			s.Count = Count{Node: NodeID(wide()), Start: hlc.Timestamp(wide()),
				Ver: Version{TS: hlc.Timestamp(wide()), Node: NodeID(wide())}, Total: int64(wide()) * int64(1-2*r.IntN(2))}
			if r.IntN(3) == 0 {
				s.Count.ResetVer = Version{TS: hlc.Timestamp(wide()), Node: NodeID(wide())}
				s.Count.ResetTotal = int64(wide()) * int64(1-2*r.IntN(2))
			}
		}
		want := AppendTyped([]byte("x"), s.Typed())
		if got := AppendCounter([]byte("x"), s); string(got) != string(want) {
			t.Fatalf("%+v: AppendCounter %x, AppendTyped %x", s, got, want)
		}
		if back, ok := PeekCounter(want[1:]); !ok || !reflect.DeepEqual(back, s) {
			t.Fatalf("%+v read back as %+v (%v)", s, back, ok)
		}
		rec := Record{Value: Value{Version: Version{TS: hlc.Timestamp(wide()), Node: NodeID(wide())}, Data: []byte(strconv.Itoa(r.IntN(1000)))}}
		switch r.IntN(4) {
		case 0:
			rec.Expiry.Version = rec.Value.Version
		case 1:
			rec.Expiry = Expiry{Version: Version{TS: hlc.Timestamp(wide()), Node: 3}, At: int64(wide())}
		case 2:
			rec.Value = Value{Version: rec.Value.Version, Tombstone: true}
		}
		full := rec
		full.Typed = s.Typed()
		want = AppendBinary([]byte("y"), full)
		if got := AppendBinaryCounter([]byte("y"), Record{Value: rec.Value, Expiry: rec.Expiry, Typed: genCounter(r)}, s); string(got) != string(want) {
			t.Fatalf("%+v over %+v: AppendBinaryCounter %x, AppendBinary %x", s, rec, got, want)
		}
	}
}

// TestCounterStates: the states CounterStates hands out are those Typed
// builds, each its own: a later one, from the same block or the next,
// changes none handed out before.
func TestCounterStates(t *testing.T) {
	var a CounterStates
	var got []*Typed
	var want []CounterState
	for i := range 3*counterBlock + 5 {
		s := CounterState{KindVersion: v(uint64(i+1), 2), Count: Count{Node: 2, Start: 1, Ver: v(uint64(i+1), 2), Total: int64(i)}}
		got, want = append(got, a.Typed(s)), append(want, s)
	}
	for i, g := range got {
		if !sameTyped(g, want[i].Typed()) || !reflect.DeepEqual(CounterOf(g), want[i]) {
			t.Fatalf("state %d: %+v, want %+v", i, g, want[i].Typed())
		}
	}
}

// TestIncrEncodingShort: an INCR's delta leaves its value register and its
// count's reset register empty and its count at the type register's
// version; its encoding writes none of them, so that it takes little more
// than a SET's (24 bytes with a 3-byte value) however long its run of
// counts, where the long form took 95.
func TestIncrEncodingShort(t *testing.T) {
	now := hlc.Timestamp(1765000000000 << 16) // December 2025, in the HLC's units
	day := hlc.Timestamp(24 * 3600000 << 16)
	ver := Version{TS: now, Node: 0x1234567890abcdef}
	for _, start := range []hlc.Timestamp{now, now - day, 1} {
		st := CounterState{KindVersion: ver, Count: Count{Node: 0x7234567890abcdef, Start: start, Ver: ver, Total: 123456}}
		delta := AppendBinaryCounter(nil, Record{}, st)
		if max := 48; len(delta) > max || start == now && len(delta) > 40 {
			t.Errorf("run started %v before: an INCR's delta takes %d bytes", now-start, len(delta))
		}
		if got, err := Decode(delta); err != nil || !Equal(got, Record{Typed: st.Typed()}) {
			t.Errorf("decoded %+v, %v; want %+v", got, err, st)
		}
	}
}
