package record

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/redmesh/redmesh/hlc"
)

func v(ts uint64, node NodeID) Version { return Version{TS: hlc.Timestamp(ts), Node: node} }

func set(ver Version, data string) Record {
	return Record{Value: Value{Version: ver, Data: []byte(data)}, Expiry: Expiry{Version: ver}}
}

func del(ver Version) Record {
	return Record{Value: Value{Version: ver, Tombstone: true}, Expiry: Expiry{Version: ver}}
}

func expire(ver Version, at int64) Record { return Record{Expiry: Expiry{Version: ver, At: at}} }

func TestMergeTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b Record
		want Record
	}{
		{"newer value wins", set(v(1, 1), "a"), set(v(2, 1), "b"), set(v(2, 1), "b")},
		{"node id breaks timestamp ties", set(v(5, 1), "a"), set(v(5, 2), "b"), set(v(5, 2), "b")},
		{"tombstone beats older value", set(v(1, 1), "a"), del(v(2, 1)), del(v(2, 1))},
		{"tombstone loses to newer value", del(v(2, 1)), set(v(3, 1), "c"), set(v(3, 1), "c")},
		{"tombstone loses to newer value on another node", del(v(2, 9)), set(v(3, 1), "c"), set(v(3, 1), "c")},
		{"anything beats the zero record", Record{}, set(v(1, 1), "a"), set(v(1, 1), "a")},
		{
			"expire does not undo a concurrent set",
			set(v(3, 1), "new"), expire(v(2, 2), 1000),
			Record{Value: Value{Version: v(3, 1), Data: []byte("new")}, Expiry: Expiry{Version: v(3, 1)}},
		},
		{
			"expire after set keeps the value",
			set(v(3, 1), "x"), expire(v(4, 2), 1000),
			Record{Value: Value{Version: v(3, 1), Data: []byte("x")}, Expiry: Expiry{Version: v(4, 2), At: 1000}},
		},
		{"a sweep beats the value it swept", set(v(3, 1), "x"), set(v(3, 1), "x").Swept(), set(v(3, 1), "x").Swept()},
		{"a newer write beats a sweep", set(v(3, 1), "x").Swept(), set(v(4, 1), "y"), set(v(4, 1), "y")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, got := range []Record{Merge(tc.a, tc.b), Merge(tc.b, tc.a)} {
				if !Equal(got, tc.want) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

func TestMergeInto(t *testing.T) {
	local := set(v(2, 1), "a")
	if _, changed := MergeInto(local, set(v(1, 1), "old")); changed {
		t.Error("an older write must not change the record")
	}
	if _, changed := MergeInto(local, local); changed {
		t.Error("the same write twice must not change the record")
	}
	if m, changed := MergeInto(local, set(v(3, 1), "b")); !changed || string(m.Value.Data) != "b" {
		t.Errorf("a newer write must change the record: %+v %v", m, changed)
	}
}

func TestLive(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Record
		now  int64
		want bool
	}{
		{"never written", Record{}, 0, false},
		{"value", set(v(1, 1), "a"), 5, true},
		{"tombstone", del(v(1, 1)), 5, false},
		{"before deadline", Merge(set(v(1, 1), "a"), expire(v(2, 1), 10)), 9, true},
		{"at deadline", Merge(set(v(1, 1), "a"), expire(v(2, 1), 10)), 10, true},
		{"after deadline", Merge(set(v(1, 1), "a"), expire(v(2, 1), 10)), 11, false},
	} {
		if got := tc.r.Live(tc.now); got != tc.want {
			t.Errorf("%s: Live(%d) = %v, want %v", tc.name, tc.now, got, tc.want)
		}
	}
}

// genRecord draws a record from a small version space so that collisions are
// common. Data is a function of the version, as it is in a real mesh, where a
// version names exactly one write.
func genRecord(r *rand.Rand) Record {
	ver := func() Version { return v(uint64(r.IntN(6)), NodeID(r.IntN(3))) }
	var rec Record
	switch r.IntN(4) {
	case 0: // zero record
	case 1:
		rec.Value = Value{Version: ver(), Tombstone: true}
	default:
		vv := ver()
		rec.Value = Value{Version: vv, Data: []byte(fmt.Sprintf("val-%v", vv))}
	}
	if r.IntN(2) == 0 {
		ev := ver()
		rec.Expiry = Expiry{Version: ev, At: int64(ev.TS)*100 + int64(ev.Node)}
	}
	if r.IntN(2) == 0 {
		rec.Typed = genTyped(r)
	}
	if r.IntN(5) == 0 && rec.Exists() {
		rec = rec.Swept()
	}
	return rec
}

func TestMergeProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 20_000; i++ {
		a, b, c := genRecord(r), genRecord(r), genRecord(r)
		if !Equal(Merge(a, b), Merge(b, a)) {
			t.Fatalf("not commutative:\n a=%+v\n b=%+v", a, b)
		}
		if !Equal(Merge(Merge(a, b), c), Merge(a, Merge(b, c))) {
			t.Fatalf("not associative:\n a=%+v\n b=%+v\n c=%+v", a, b, c)
		}
		if !Equal(Merge(a, a), a) {
			t.Fatalf("not idempotent: %+v", a)
		}
		m := Merge(a, b)
		if m.Value.Version.Compare(a.Value.Version) < 0 || m.Expiry.Version.Compare(b.Expiry.Version) < 0 {
			t.Fatalf("merge went backwards: %+v from %+v and %+v", m, a, b)
		}
	}
}

// Every order of arrival of the same writes ends in the same record.
func TestMergeOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < 2_000; i++ {
		writes := make([]Record, 2+r.IntN(6))
		for j := range writes {
			writes[j] = genRecord(r)
		}
		var want Record
		for _, w := range writes {
			want = Merge(want, w)
		}
		for p := 0; p < 5; p++ {
			r.Shuffle(len(writes), func(i, j int) { writes[i], writes[j] = writes[j], writes[i] })
			var got Record
			for _, w := range writes {
				got, _ = MergeInto(got, w)
			}
			if !Equal(got, want) {
				t.Fatalf("order changed the result: %+v vs %+v", got, want)
			}
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	cases := []Record{{}, set(v(1, 1), ""), del(v(9, 9)), Merge(set(v(1, 2), "abc"), expire(v(3, 4), -5))}
	for i := 0; i < 1000; i++ {
		cases = append(cases, genRecord(r))
	}
	for _, rec := range cases {
		b := Encode(rec)
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %+v: %v", rec, err)
		}
		if !Equal(got, rec) {
			t.Fatalf("round trip: %+v became %+v", rec, got)
		}
	}
}

func TestEncodingSharesTheVersionOfASet(t *testing.T) {
	withTTL := Merge(set(v(1, 1), "x"), Record{Expiry: Expiry{Version: v(1, 1), At: 99}})
	separate := Merge(set(v(1, 1), "x"), expire(v(2, 1), 99))
	if len(Encode(withTTL))+versionLen != len(Encode(separate)) {
		t.Fatalf("a SET with TTL should store its version once: %d vs %d bytes", len(Encode(withTTL)), len(Encode(separate)))
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(Merge(set(v(1, 2), "abc"), expire(v(3, 4), 7)))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", good[:5]},
		{"unknown format", append([]byte{9}, good[1:]...)},
		{"unknown flag", append([]byte{1, 0x80}, good[2:]...)},
		{"unknown kind", append([]byte{1, good[1], 7}, good[3:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(bytes.Clone(good), 0)},
		{"huge length", append(append([]byte{1, 0, 0}, make([]byte, 16)...), 0xff, 0xff, 0xff, 0xff, 0x0f)},
	} {
		if _, err := Decode(tc.b); err == nil {
			t.Errorf("%s: decoded without error", tc.name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Record{}))
	f.Add(Encode(set(v(1, 1), "hello")))
	f.Add(Encode(del(v(2, 3))))
	f.Add(Encode(Merge(set(v(1, 2), "abc"), expire(v(3, 4), 7))))
	f.Add([]byte{1, 0xff, 0})
	typed := Record{Typed: &Typed{Kind: KindHash, KindVersion: v(1, 1),
		Fields:  []Elem{{Name: []byte("f"), Dot: v(1, 1), Value: []byte("x")}},
		Removed: []Elem{{Name: []byte("g"), Dot: v(1, 2)}},
		Counts:  []Count{{Name: []byte("f"), Node: 1, Ver: v(1, 1), Total: 3}}}}
	f.Add(Encode(typed))
	floats := Record{Typed: &Typed{KindVersion: v(1, 1), Counts: []Count{
		{Node: 1, Ver: v(1, 1), FTotal: dyadicOf(big.NewFloat(-0.75)).encode()},
		{Node: 2, Ver: v(1, 2), Total: 4, ResetVer: v(1, 2), FReset: dyadicOf(big.NewFloat(1e300)).encode()}}}}
	f.Add(Encode(floats))
	zset := Record{Typed: &Typed{Kind: KindZSet, KindVersion: v(1, 1),
		Scored:      []Elem{{Name: []byte("m"), Dot: v(1, 1), Value: ScoreValue(2.5)}},
		Removed:     []Elem{{Name: []byte("n"), Dot: v(1, 2)}},
		ScoreCounts: []Count{{Name: []byte("m"), Node: 1, Ver: v(1, 1), Total: bitsOf(1.5)}}}}
	f.Add(Encode(zset))
	// Records in the long form an earlier build wrote (TestDecodesV1).
	golden, err := os.ReadFile("testdata/records-v1.txt")
	if err != nil {
		f.Fatal(err)
	}
	for line := range strings.Lines(string(golden)) {
		if enc, err := hex.DecodeString(strings.Fields(line)[0]); err == nil && !strings.HasPrefix(line, "#") {
			f.Add(enc)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(Encode(rec))
		if err != nil || !Equal(again, rec) {
			t.Fatalf("re-encoding %+v: %+v, %v", rec, again, err)
		}
	})
}
