package record

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// goldenRecords are the records whose encodings, in the long form a build
// before counts' short form logged, checkpointed and sent, with no flag for
// an empty value register, testdata/records-v1.txt keeps.
func goldenRecords() []Record {
	incr := CounterState{KindVersion: v(1<<40|5, 7), Count: Count{Node: 0x1234, Start: 1<<40 | 1, Ver: v(1<<40|5, 7), Total: 42}}
	fresh := CounterState{KindVersion: v(1<<41, 7), Count: Count{Node: 0x1234, Start: 1 << 41, Ver: v(1<<41, 7), Total: -3}}
	reset := CounterState{KindVersion: v(1<<41|9, 7), Count: Count{Node: 0x1234, Start: 1 << 41, Ver: v(1<<41|9, 8), Total: 100,
		ResetVer: v(1<<41|3, 8), ResetTotal: 60}}
	recs := []Record{
		set(v(1<<40, 7), "xxx"),
		del(v(1<<40|1, 7)),
		Merge(set(v(1<<40, 7), "abc"), expire(v(1<<40|2, 9), 1<<42)),
		{Value: Value{Version: v(1<<40, 7), Data: []byte("5")}, Expiry: Expiry{Version: v(1<<40, 7)}},
		{Typed: incr.Typed()}, // an INCR's delta
		{Value: Value{Version: v(1<<41, 7), Data: []byte("0")}, Expiry: Expiry{Version: v(1<<41, 7)}, Typed: fresh.Typed()},
		{Value: Value{Version: v(1<<40, 7), Data: []byte("10")}, Expiry: Expiry{Version: v(1<<40|1, 7), At: 99}, Typed: reset.Typed()},
		{Typed: &Typed{Kind: KindHash, KindVersion: v(1, 1),
			Fields:  []Elem{{Name: []byte("f"), Dot: v(1, 1), Value: []byte("x")}},
			Removed: []Elem{trace(Elem{Name: []byte("g"), Dot: v(1, 2)}, 3)},
			Counts:  []Count{{Name: []byte("f"), Node: 1, Ver: v(1, 1), Total: 3}}}},
	}
	r := rand.New(rand.NewPCG(13, 13))
	for range 40 {
		recs = append(recs, Record{Value: Value{Version: v(uint64(r.IntN(9)), NodeID(r.IntN(3)))}, Typed: genTyped(r)})
	}
	return recs
}

// TestDecodesV1: records as an earlier build logged, checkpointed and sent
// them still decode, to the states they were (their versions and digests,
// and the records themselves where the test spells them out), and
// re-encoded decode the same.
func TestDecodesV1(t *testing.T) {
	f, err := os.ReadFile("testdata/records-v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := goldenRecords()
	i := 0
	for line := range strings.Lines(string(f)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(strings.TrimSpace(line), " ") // the value's data may be empty
		if len(fields) != 10 {
			t.Fatalf("record %d: %d fields", i, len(fields))
		}
		enc, err1 := hex.DecodeString(fields[0])
		data, err2 := hex.DecodeString(fields[7])
		var vs [3]Version
		var tomb bool
		var at int64
		_, err3 := fmt.Sscan(strings.Join(append(fields[1:7:7], fields[8:]...), " "), &vs[0].TS, &vs[0].Node, &vs[1].TS, &vs[1].Node, &vs[2].TS, &vs[2].Node, &tomb, &at)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		got, err := Decode(enc)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if got.Versions() != vs || string(got.Value.Data) != string(data) || got.Value.Tombstone != tomb || got.Expiry.At != at {
			t.Fatalf("record %d decoded as %+v (versions %v), want versions %v", i, got, got.Versions(), vs)
		}
		if i < len(want) && !Equal(got, want[i]) {
			t.Fatalf("record %d decoded as %+v, want %+v", i, got, want[i])
		}
		again, err := Decode(Encode(got))
		if err != nil || !Equal(again, got) || again.Versions() != vs {
			t.Fatalf("record %d re-encoded: %+v, %v; want %+v", i, again, err, got)
		}
		i++
	}
	if i != len(want) {
		t.Fatalf("%d records in the sample, want %d", i, len(want))
	}
}
