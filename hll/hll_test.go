package hll

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// Strings redis-server 7.0.15 returned for GET after the commands named.
var (
	// PFADD k a b c foo bar
	goldenFive = []byte("HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\\\xb3\x90D>\x80F!\x80J\x8e\x84K\xfb\x80BZ")
	// PFADD e
	goldenEmpty = []byte("HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\xff")
)

func add(regs []byte, elems ...string) {
	for _, e := range elems {
		i, v := Hash([]byte(e))
		regs[i] = max(regs[i], v)
	}
}

func TestEncodeMatchesRedis(t *testing.T) {
	regs := make([]byte, Registers)
	add(regs, "a", "b", "c", "foo", "bar")
	if got := Encode(regs, false, CacheInvalid); !bytes.Equal(got, goldenFive) {
		t.Errorf("Encode = %q, want %q", got, goldenFive)
	}
	if got := Encode(nil, false, CacheInvalid); !bytes.Equal(got, goldenEmpty) {
		t.Errorf("Encode(empty) = %q, want %q", got, goldenEmpty)
	}
	if c := Count(regs); c != 5 {
		t.Errorf("Count = %d, want 5", c)
	}
	d, err := Describe(goldenFive)
	if want := "Z:7348 v:5,1 Z:1087 v:1,1 Z:1570 v:1,1 Z:2703 v:2,1 Z:3068 v:1,1 Z:603"; err != nil || d != want {
		t.Errorf("Describe = %q, %v; want %q", d, err, want)
	}
}

// TestEncodeRoundTrips: a string decodes to the registers it was built from,
// sparse or dense, and the estimate is within Redis's own test bounds.
func TestEncodeRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 10, 100, 1000, 3000, 20000} {
		regs := make([]byte, Registers)
		for i := range n {
			add(regs, fmt.Sprintf("e%d-%d", i, rng.Uint64()))
		}
		for _, dense := range []bool{false, true} {
			s := Encode(regs, dense, 7)
			if err := Check(s); err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			if dense && !IsDense(s) {
				t.Errorf("n=%d: asked dense, got sparse", n)
			}
			if !IsDense(s) && len(s) > SparseMaxBytes {
				t.Errorf("n=%d: sparse string of %d bytes", n, len(s))
			}
			back := make([]byte, Registers)
			if err := MaxInto(back, s); err != nil || !bytes.Equal(back, regs) {
				t.Fatalf("n=%d dense=%v: round trip differs (%v)", n, dense, err)
			}
			if Card(s) != 7 {
				t.Errorf("card = %d", Card(s))
			}
		}
		got := float64(Count(regs))
		if d := got - float64(n); d > 0.05*float64(n)+1 || -d > 0.05*float64(n)+1 {
			t.Errorf("Count of %d = %v", n, got)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, s := range []string{"", "HYLL", "HYLX\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00abc"} {
		if Check([]byte(s)) == nil {
			t.Errorf("Check(%q) accepted", s)
		}
	}
	short := append([]byte(nil), goldenEmpty[:HeaderLen]...)
	short = append(short, 0x7f) // an XZERO cut in half
	if Check(short) != nil || MaxInto(make([]byte, Registers), short) == nil {
		t.Error("a truncated sparse string decoded")
	}
}

// FuzzMaxInto: any string that passes Check decodes without a panic, and
// what decodes re-encodes to the same registers.
func FuzzMaxInto(f *testing.F) {
	f.Add(goldenFive)
	f.Add(goldenEmpty)
	f.Add(Encode(nil, true, 0))
	f.Fuzz(func(t *testing.T, s []byte) {
		if Check(s) != nil {
			return
		}
		regs := make([]byte, Registers)
		if err := MaxInto(regs, s); err != nil {
			return
		}
		Describe(s)
		back := make([]byte, Registers)
		if err := MaxInto(back, Encode(regs, false, 0)); err != nil || !bytes.Equal(back, regs) {
			t.Fatalf("re-encoding differs: %v", err)
		}
	})
}
