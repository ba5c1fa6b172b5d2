package shadow

import (
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	m := map[uint64]Entry{
		1:       {Digest: 2, Kind: 1},
		3:       {Digest: 4, Kind: 2, At: 1700000000000, Elems: &[]Elem{{1, 2}, {3, 4}}},
		1 << 63: {Digest: 5, Kind: 5, At: -1, Elems: &[]Elem{{7, 0}}},
	}
	run, got, err := Decode(Encode("run", m))
	if err != nil || run != "run" || !reflect.DeepEqual(got, m) {
		t.Fatalf("got %q %v %v", run, got, err)
	}
	b := Encode("run", m)
	b[len(b)-9] ^= 1
	if _, _, err := Decode(b); err == nil {
		t.Fatal("a damaged file decoded")
	}
}

// FuzzDecode: damaged bytes are an error, never a crash or an allocation
// beyond their size.
func FuzzDecode(f *testing.F) {
	f.Add(Encode("abc", map[uint64]Entry{7: {Digest: 8, Elems: &[]Elem{{1, 2}}}}))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, m, err := Decode(data)
		if err != nil {
			return
		}
		elems := 0
		for _, e := range m {
			elems += len(e.List())
		}
		if len(m)*entryMin+elems*16 > len(data) {
			t.Fatalf("%d entries and %d elements from %d bytes", len(m), elems, len(data))
		}
	})
}
