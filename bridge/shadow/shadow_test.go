package shadow

import (
	"maps"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	m := map[uint64]uint64{1: 2, 3: 4, 1 << 63: 5}
	run, got, err := Decode(Encode("run", m))
	if err != nil || run != "run" || !maps.Equal(got, m) {
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
	f.Add(Encode("abc", map[uint64]uint64{7: 8}))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, m, err := Decode(data); err == nil && len(m) > len(data)/16 {
			t.Fatalf("%d entries from %d bytes", len(m), len(data))
		}
	})
}
