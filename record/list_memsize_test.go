package record

import (
	"fmt"
	"runtime"
	"testing"
)

// heapOf is the live heap that build's result holds.
func heapOf(build func() *Typed) (*Typed, int64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	t := build()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return t, int64(ms.HeapAlloc) - int64(before)
}

// MemSize of a large list and a large sorted set, loaded as the node's
// writes load them (steps of many writes under one Owner), is their heap
// within 15% (a sorted set's trees grow looser between compactions, up to
// half as many elements again): INFO's used_memory and --maxmemory count
// on it.
func TestListAndZSetMemSize(t *testing.T) {
	const n = 100_000
	list := func() *Typed {
		// At the head, before the first element (LPUSH).
		return pushedList(n, func(cur Record) (lo, hi []byte) {
			if v := cur.Typed.ListView(); v.Len() > 0 {
				hi = v.At(0).Name
			}
			return nil, hi
		}).Typed.Detached()
	}
	zset := func() *Typed {
		return steppedTyped(t, n, KindZSet, func(op *TypedOp, i int) error {
			_, err := op.SetScore(fmt.Appendf(nil, "member:%012d", i), float64(i*7919%n))
			return err
		}).Typed.Detached()
	}
	for name, build := range map[string]func() *Typed{"list": list, "sorted set": zset} {
		typed, heap := heapOf(build)
		if got := typed.MemSize(); got < heap*85/100 || got > heap*115/100 {
			t.Errorf("%s of %d: MemSize %d, heap %d", name, n, got, heap)
		}
		runtime.KeepAlive(typed)
	}
}

// pushedList is a list of n elements ("element:%012d"), one pushed a
// write between the positions at returns for the list so far, in steps
// of 1,024 writes that change the state in place (an Owner each).
func pushedList(n int, at func(cur Record) (lo, hi []byte)) Record {
	cur, ts := Record{}, uint64(1<<30)
	var o *Owner
	for i := range n {
		if i%1024 == 0 {
			o = new(Owner)
		}
		ts++
		value := fmt.Appendf(nil, "element:%012d", i)
		lo, hi := at(cur)
		cur, _ = MergeOwned(cur, listOp(cur, v(ts, 2), func(op *TypedOp) error {
			_, err := op.PushListedRun(lo, hi, [][]byte{value})
			return err
		}), o)
	}
	return cur
}

// steppedTyped is a typed record of kind with n elements, add writing
// element i, loaded as the node's writes load it: 100 writes a step, in
// states changed in place 16 steps at a time (an Owner each).
func steppedTyped(t testing.TB, n int, kind Kind, add func(op *TypedOp, i int) error) Record {
	cur, ts := Record{}, uint64(1<<30)
	var o *Owner
	for i := 0; i < n; i += 100 {
		if i%1600 == 0 {
			o = new(Owner)
		}
		ts++
		op := BeginTyped(cur, cur.Typed != nil, kind, v(ts, 2), func() (Version, error) { ts++; return v(ts, 2), nil })
		for m := range 100 {
			if err := add(op, i+m); err != nil {
				t.Fatal(err)
			}
		}
		cur, _ = MergeOwned(cur, op.Delta(), o)
	}
	return cur
}
