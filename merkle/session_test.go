package merkle

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

var testShapes = []Shape{
	DefaultShape,
	{FanOut: 4, Depth: 3, Hash: HashXXH64},  // 64 buckets: crowded leaves
	{FanOut: 2, Depth: 1, Hash: HashXXH64},  // the Hello already carries the leaves
	{FanOut: 32, Depth: 2, Hash: HashXXH64}, // the Hello carries only the root
	{FanOut: 8, Depth: 4, Hash: HashXXH64},
}

// TestReconcileProperty: after one session both sides hold the same entries
// and the same root, every key that differed was moved, and nothing else was.
func TestReconcileProperty(t *testing.T) {
	iters := 400
	if testing.Short() {
		iters = 60
	}
	for i := range iters {
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 0xbeef))
		shape := testShapes[i%len(testShapes)]
		n := rng.IntN(400)
		d := rng.IntN(60)
		if i%7 == 0 {
			d = n + 10 // most keys differ
		}
		a, b, _ := randomPair(t, rng, shape, n, d)
		want := differing(a, b)
		// Every other session splits its transfers into small messages.
		maxTransfer := 0
		if i%2 == 1 {
			maxTransfer = 1 + rng.IntN(100)
		}
		sa, _ := NewInitiator(Config{Shape: shape, Local: a, Salt: rng.Uint64(), MaxTransferBytes: maxTransfer})
		sb, _ := NewResponder(Config{Shape: shape, Local: b, MaxTransferBytes: maxTransfer})
		st, err := Drive(Peer{sa, a.Apply}, Peer{sb, b.Apply}, nil)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		ra, rb := sa.Result(), sb.Result()
		if maxTransfer > 0 && st.PayloadBytes > 300 && st.Messages == st.Flights {
			t.Fatalf("seed %d: %d payload bytes were not split", seed, st.PayloadBytes)
		}
		if left := differing(a, b); len(left) != 0 {
			t.Fatalf("seed %d (shape %v, n=%d, d=%d): %d keys still differ after one session, e.g. %q",
				seed, shape, n, d, len(left), left[0])
		}
		if a.Tree().Root() != b.Tree().Root() {
			t.Fatalf("seed %d: roots differ with equal entries", seed)
		}
		moved := map[string]bool{}
		for _, ks := range [][][]byte{ra.Pulled, ra.Pushed} {
			for _, k := range ks {
				moved[string(k)] = true
			}
		}
		var got []string
		for k := range moved {
			got = append(got, k)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: moved %d keys %q, want the %d that differed %q", seed, len(got), got, len(want), want)
		}
		if len(ra.Pulled) != len(rb.Pushed) || len(ra.Pushed) != len(rb.Pulled) {
			t.Fatalf("seed %d: results disagree: a pulled %d pushed %d, b pulled %d pushed %d",
				seed, len(ra.Pulled), len(ra.Pushed), len(rb.Pulled), len(rb.Pushed))
		}
		if len(want) > 0 && st.RoundTrips > 4 {
			t.Fatalf("seed %d: %d round trips", seed, st.RoundTrips)
		}
		// The same pair, now equal, agrees in one round trip.
		st, ra, _, err = Reconcile(b, a, rng.Uint64())
		if err != nil {
			t.Fatal(err)
		}
		if st.RoundTrips != 1 || !ra.Equal || st.PayloadBytes != 0 {
			t.Fatalf("seed %d: equal stores took %+v", seed, st)
		}
	}
}

func TestEqualStoresOneRoundTrip(t *testing.T) {
	for _, shape := range testShapes {
		rng := rand.New(rand.NewPCG(1, 2))
		a, b, _ := randomPair(t, rng, shape, 300, 0)
		st, ra, rb, err := Reconcile(a, b, 42)
		if err != nil {
			t.Fatal(err)
		}
		if st.RoundTrips != 1 || st.Messages != 2 || !ra.Equal || !rb.Equal {
			t.Errorf("%v: %+v", shape, st)
		}
		if total := st.MetaBytes + st.PayloadBytes; total >= 100 {
			t.Errorf("%v: equal stores cost %d bytes", shape, total)
		}
	}
}

// A key whose registers diverge in opposite directions moves both ways in the
// same session, and ends with the newest of each register on both sides.
func TestBothDirections(t *testing.T) {
	a, b := newStore(t, DefaultShape), newStore(t, DefaultShape)
	k := []byte("k")
	a.Put(k, []Register{{Version{10, 1}, []byte("new")}, {Version{5, 1}, []byte("e1")}})
	b.Put(k, []Register{{Version{5, 1}, []byte("old")}, {Version{10, 2}, []byte("e2")}})
	st, ra, rb, err := Reconcile(a, b, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := []Register{{Version{10, 1}, []byte("new")}, {Version{10, 2}, []byte("e2")}}
	if !regsEqual(a.Get(k), want) || !regsEqual(b.Get(k), want) {
		t.Fatalf("a=%v b=%v", a.Get(k), b.Get(k))
	}
	if len(ra.Pulled) != 1 || len(ra.Pushed) != 1 || len(rb.Pulled) != 1 || len(rb.Pushed) != 1 {
		t.Fatalf("results %+v %+v", ra, rb)
	}
	if st.RoundTrips != 4 {
		t.Errorf("round trips %d, want 4", st.RoundTrips)
	}
}

func TestShapeMismatch(t *testing.T) {
	a := newStore(t, DefaultShape)
	other := Shape{FanOut: 16, Depth: 3, Hash: HashXXH64}
	b := newStore(t, other)
	_, _, _, err := Reconcile(a, b, 1)
	var se *ShapeError
	if !errors.Is(err, ErrShapeMismatch) || !errors.As(err, &se) || se.Remote != DefaultShape || se.Local != other {
		t.Fatalf("err = %v", err)
	}
	// The initiator hears of it through the Abort.
	sa, _ := NewInitiator(Config{Shape: DefaultShape, Local: a, Salt: 1})
	sb, _ := NewResponder(Config{Shape: other, Local: b})
	out, _ := sa.Start()
	out, err = sb.Step(out.Msgs[0])
	if err == nil || len(out.Msgs) != 1 || !sb.Done() {
		t.Fatalf("responder: %v %+v", err, out)
	}
	m, err := Unmarshal(Marshal(out.Msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sa.Step(m)
	var ae *AbortError
	if !errors.As(err, &ae) || ae.Code != AbortShape || !errors.Is(err, ErrShapeMismatch) || !sa.Done() {
		t.Fatalf("initiator: %v", err)
	}
}

// Messages out of place are refused with ErrProtocol, never a panic.
func TestProtocolViolations(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a, b, _ := randomPair(t, rng, DefaultShape, 200, 20)
	cases := []struct {
		name string
		msg  Message
	}{
		{"summaries before leaves", &Summaries{Mismatch: NewBitmap(16)}},
		{"wrong bitmap length", &Digests{Level: 2, Mismatch: NewBitmap(3)}},
		{"wrong level", &Digests{Level: 3, Mismatch: NewBitmap(16)}},
		{"transfer too early", &Transfer{}},
		{"second hello", &Hello{Shape: DefaultShape}},
		{"empty mismatch", &Digests{Level: 2, Mismatch: NewBitmap(16)}},
	}
	for _, c := range cases {
		sa, _ := NewInitiator(Config{Shape: DefaultShape, Local: a, Salt: 5})
		if _, err := sa.Start(); err != nil {
			t.Fatal(err)
		}
		out, err := sa.Step(c.msg)
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: err = %v", c.name, err)
		}
		if len(out.Msgs) != 1 || out.Msgs[0].Type() != TypeAbort || !sa.Done() {
			t.Errorf("%s: out = %+v", c.name, out)
		}
	}
	_ = b
}
