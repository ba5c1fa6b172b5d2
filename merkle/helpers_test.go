package merkle

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The tests' records have two registers, as a node's do today: the value
// (Data nil is a tombstone) and the expiry (the zero version when never set).

func newStore(tb testing.TB, shape Shape) *MemStore {
	tb.Helper()
	m, err := NewMemStore(shape)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

type gen struct {
	rng *rand.Rand
	ts  uint64
}

func (g *gen) version() Version {
	g.ts += 1 + uint64(g.rng.IntN(3))
	return Version{TS: g.ts, Node: uint64(g.rng.IntN(4) + 1)}
}

func (g *gen) value() []byte {
	b := make([]byte, 1+g.rng.IntN(12))
	for i := range b {
		b[i] = byte('a' + g.rng.IntN(26))
	}
	return b
}

func (g *gen) record() []Register {
	v := g.version()
	switch g.rng.IntN(4) {
	case 0: // SET with EX: both registers at one version
		return []Register{{v, g.value()}, {v, []byte("ttl")}}
	case 1: // tombstone
		return []Register{{v, nil}}
	default: // SET without expiry
		return []Register{{v, g.value()}}
	}
}

// diverge changes key on a and/or b in one of the ways two nodes drift apart,
// and reports which.
func (g *gen) diverge(a, b *MemStore, key []byte) string {
	cur := a.Get(key)
	bump := func(m *MemStore, reg int, data []byte) {
		regs := slices.Clone(m.Get(key))
		for len(regs) <= reg {
			regs = append(regs, Register{})
		}
		regs[reg] = Register{g.version(), data}
		m.Put(key, regs)
	}
	switch k := g.rng.IntN(9); {
	case k == 0 && cur != nil:
		bump(a, 0, g.value())
		return "value newer on a"
	case k == 1 && cur != nil:
		bump(b, 0, g.value())
		return "value newer on b"
	case k == 2 && cur != nil:
		bump(a, 0, g.value())
		bump(b, 1, []byte("ttl2"))
		return "value newer on a, expiry newer on b"
	case k == 3 && cur != nil:
		bump(b, 0, nil)
		return "deleted on b"
	case k == 4 && cur != nil:
		// Concurrent writes: one timestamp, two writers.
		g.ts++
		a.Put(key, []Register{{Version{g.ts, 7}, []byte("A")}})
		b.Put(key, []Register{{Version{g.ts, 9}, []byte("B")}})
		return "concurrent"
	case k == 5:
		a.Put(key, g.record())
		return "new on a"
	case k == 6:
		b.Put(key, g.record())
		return "new on b"
	case k == 7:
		a.Put(key, g.record())
		b.Put(key, g.record())
		return "new on both"
	default:
		bump(a, 1, []byte("ttl3"))
		bump(b, 1, []byte("ttl4"))
		return "expiry on both"
	}
}

// randomPair returns two stores with n keys in common, then d keys diverged.
func randomPair(tb testing.TB, rng *rand.Rand, shape Shape, n, d int) (a, b *MemStore, diverged map[string]string) {
	a, b = newStore(tb, shape), newStore(tb, shape)
	g := &gen{rng: rng}
	for i := range n {
		key := fmt.Appendf(nil, "k%d", i)
		r := g.record()
		a.Put(key, r)
		b.Put(key, r)
	}
	diverged = map[string]string{}
	for range d {
		key := fmt.Appendf(nil, "k%d", rng.IntN(n+d+1))
		diverged[string(key)] = g.diverge(a, b, key)
	}
	return a, b, diverged
}

// differing lists the keys whose registers differ between a and b.
func differing(a, b *MemStore) []string {
	var out []string
	seen := map[string]bool{}
	check := func(x, y *MemStore) {
		x.Range(func(k []byte, regs []Register) bool {
			if !seen[string(k)] && !regsEqual(regs, y.Get(k)) {
				out = append(out, string(k))
			}
			seen[string(k)] = true
			return true
		})
	}
	check(a, b)
	check(b, a)
	slices.Sort(out)
	return out
}

func regsEqual(x, y []Register) bool {
	for len(x) > 0 && x[len(x)-1].Version.IsZero() {
		x = x[:len(x)-1]
	}
	for len(y) > 0 && y[len(y)-1].Version.IsZero() {
		y = y[:len(y)-1]
	}
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i].Version != y[i].Version || !bytes.Equal(x[i].Data, y[i].Data) || (x[i].Data == nil) != (y[i].Data == nil) {
			return false
		}
	}
	return true
}
