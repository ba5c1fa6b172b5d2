package keyspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redmesh/redmesh/record"
)

// TestStepsTakeOverPublishedState: steps writing into one large set take
// over the state the step before published (record.Owner) while readers
// (Get, View, Peek, SnapshotRange, Scan, checkpoints) read it at once; a
// state a reader holds never changes under it, a savepoint rolled back and
// a failed step put the published state back, and what is published, and
// what a restart loads, is what the writes that stayed made.
func TestStepsTakeOverPublishedState(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	key := []byte("s")
	big := &record.Typed{Kind: record.KindSet, KindVersion: version(1)}
	want := map[string]bool{}
	for i := range 400 {
		name := fmt.Sprintf("m%05d", i)
		big.Members = append(big.Members, record.Elem{Name: []byte(name), Dot: version(uint64(2 + i))})
		want[name] = true
	}
	put(t, s.db, "s", record.Record{Typed: big})
	// members is an SADD of names, their dots from ts on.
	members := func(ts uint64, names []string) record.Record {
		st := &record.Typed{Kind: record.KindSet, KindVersion: version(ts)}
		for i, name := range names {
			st.Members = append(st.Members, record.Elem{Name: []byte(name), Dot: version(ts + uint64(i))})
		}
		return record.Record{Typed: st}
	}
	// check reads a state whole and holds it to its length.
	check := func(where string, st *record.Typed) error {
		n := 0
		st.EachMember(func([]byte) bool { n++; return true })
		if n != st.Len() {
			return fmt.Errorf("%s: %d members listed, Len %d", where, n, st.Len())
		}
		return nil
	}
	var held []*record.Typed
	var lens []int
	readers := readWhileWritten(s.db, key, check,
		func(rec record.Record) bool { return rec.Live(0) && rec.Typed.Len() >= 400 },
		func(st *record.Typed) {
			if len(held) < 8 {
				held, lens = append(held, st), append(lens, st.Len())
			}
		})
	r := rand.New(rand.NewPCG(3, 9))
	ts, adopted := uint64(10_000), 0
	for step := range 400 {
		var added []string
		failStep := r.IntN(10) == 0
		err := s.db.Update(context.Background(), func(tx *Tx) error {
			for w := range 1 + r.IntN(4) {
				names := []string{fmt.Sprintf("m%05d", r.IntN(2000))}
				if r.IntN(3) == 0 { // a command adding several members
					for range 1 + r.IntN(30) {
						names = append(names, fmt.Sprintf("m%05d", r.IntN(2000)))
					}
				}
				slices.Sort(names)
				names = slices.Compact(names)
				sp := tx.Savepoint()
				if _, _, err := tx.Apply(key, members(ts+1, names)); err != nil {
					return err
				}
				ts += uint64(len(names))
				if w == 0 {
					adopted += len(tx.adopted)
				}
				if r.IntN(5) == 0 {
					tx.RollbackTo(sp)
					continue
				}
				added = append(added, names...)
			}
			if failStep {
				return errors.New("the step fails")
			}
			return nil
		})
		if failStep != (err != nil) {
			t.Fatalf("step %d: %v", step, err)
		}
		if !failStep {
			for _, name := range added {
				want[name] = true
			}
		}
	}
	if err := readers(); err != nil {
		t.Fatal(err)
	}
	for i, st := range held {
		if err := check("held", st); err != nil || st.Len() != lens[i] {
			t.Fatalf("a state a reader held changed under it: %v, Len %d, was %d", err, st.Len(), lens[i])
		}
	}
	if adopted < 100 {
		t.Fatalf("%d steps took the published state over", adopted)
	}
	same := func(where string, st *record.Typed) {
		t.Helper()
		got := map[string]bool{}
		st.EachMember(func(name []byte) bool { got[string(name)] = true; return true })
		if len(got) != len(want) || st.Len() != len(want) {
			t.Fatalf("%s: %d members (Len %d), want %d", where, len(got), st.Len(), len(want))
		}
		for name := range want {
			if !got[name] {
				t.Fatalf("%s: %s missing", where, name)
			}
		}
	}
	same("published", s.db.Get(key).Typed)
	s.close(t)
	s = openStore(t, dir, nil)
	defer s.close(t)
	same("after a restart", s.db.Get(key).Typed)
}

// TestStepsTakeOverPublishedList is TestStepsTakeOverPublishedState for a
// list: steps push at the tail and pop at both ends of one large list,
// taking over the list the step before published, while a goroutine reads
// it whole (Get, View, Peek, SnapshotRange, checkpoints) and by its header
// (Scan); savepoints rolled back and failed steps put it back; what is
// published, and what a restart loads, is the list the writes that stayed
// made, in order.
func TestStepsTakeOverPublishedList(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	key := []byte("l")
	ts := uint64(10)
	next := func() record.Version { ts++; return version(ts) }
	var want []string
	write := func(tx *Tx, fn func(cur record.Record, op *record.TypedOp) error) error {
		cur, err := tx.Get(key)
		if err != nil {
			return err
		}
		op := record.BeginTyped(cur, cur.Typed.ListLen() > 0, record.KindList, next(), func() (record.Version, error) { return next(), nil })
		if err := fn(cur, op); err != nil {
			return err
		}
		_, _, err = tx.Apply(key, op.Delta())
		return err
	}
	push := func(tx *Tx, value string) error {
		return write(tx, func(cur record.Record, op *record.TypedOp) error {
			var lo []byte
			if v := cur.Typed.ListView(); v.Len() > 0 {
				lo = v.At(v.Len() - 1).Name
			}
			_, err := op.PushListed(lo, nil, []byte(value))
			return err
		})
	}
	pop := func(tx *Tx, tail bool) error {
		return write(tx, func(cur record.Record, op *record.TypedOp) error {
			v := cur.Typed.ListView()
			i := 0
			if tail {
				i = v.Len() - 1
			}
			op.RemListed(v.At(i).Name)
			return nil
		})
	}
	if err := s.db.Update(context.Background(), func(tx *Tx) error {
		for i := range 400 {
			want = append(want, fmt.Sprintf("v%05d", i))
			if err := push(tx, want[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	values := func(st *record.Typed) []string {
		var out []string
		v := st.ListView()
		v.Ascend(0, func(e record.Elem) bool { out = append(out, string(e.Value)); return true })
		return out
	}
	check := func(where string, st *record.Typed) error {
		if n := len(values(st)); n != st.ListLen() || n < 300 {
			return fmt.Errorf("%s: %d elements listed, ListLen %d", where, n, st.ListLen())
		}
		return nil
	}
	var held []*record.Typed
	var heldValues [][]string
	readers := readWhileWritten(s.db, key, check,
		func(rec record.Record) bool { return rec.Live(0) && rec.Typed.ListLen() >= 300 },
		func(st *record.Typed) {
			if len(held) < 8 {
				held, heldValues = append(held, st), append(heldValues, values(st))
			}
		})
	r := rand.New(rand.NewPCG(5, 11))
	adopted := 0
	for step := range 400 {
		model := slices.Clone(want)
		failStep := r.IntN(10) == 0
		err := s.db.Update(context.Background(), func(tx *Tx) error {
			for w := range 1 + r.IntN(4) {
				sp := tx.Savepoint()
				after := model
				var err error
				switch k := r.IntN(3); {
				case k == 0 || len(model) < 350:
					value := fmt.Sprintf("s%05d.%d", step, w)
					err = push(tx, value)
					after = append(slices.Clip(model), value)
				case k == 1:
					err = pop(tx, true)
					after = model[:len(model)-1]
				default:
					err = pop(tx, false)
					after = model[1:]
				}
				if err != nil {
					return err
				}
				if w == 0 {
					adopted += len(tx.adopted)
				}
				if r.IntN(5) == 0 {
					tx.RollbackTo(sp)
					continue
				}
				model = after
			}
			if failStep {
				return errors.New("the step fails")
			}
			return nil
		})
		if failStep != (err != nil) {
			t.Fatalf("step %d: %v", step, err)
		}
		if !failStep {
			want = model
		}
	}
	if err := readers(); err != nil {
		t.Fatal(err)
	}
	for i, st := range held {
		if got := values(st); !slices.Equal(got, heldValues[i]) {
			t.Fatalf("a list a reader held changed under it: %d elements, held %d", len(got), len(heldValues[i]))
		}
	}
	if adopted < 100 {
		t.Fatalf("%d steps took the published list over", adopted)
	}
	same := func(where string, st *record.Typed) {
		t.Helper()
		if got := values(st); !slices.Equal(got, want) || st.ListLen() != len(want) {
			t.Fatalf("%s: %d elements (ListLen %d), want %d", where, len(got), st.ListLen(), len(want))
		}
	}
	same("published", s.db.Get(key).Typed)
	s.close(t)
	s = openStore(t, dir, nil)
	defer s.close(t)
	same("after a restart", s.db.Get(key).Typed)
}

// readWhileWritten reads key in every way a reader outside the write path
// does (Get, View, Peek, SnapshotRange, Scan's header, checkpoints), one
// after another on a goroutine of its own, until the function it returns is
// called, which stops them and returns the first failure. check reads a
// state whole; header judges what Scan shows of it; held is given each state
// Get and Peek returned, on the readers' goroutine, to keep and look at
// again once they stop.
func readWhileWritten(db *DB, key []byte, check func(where string, st *record.Typed) error, header func(record.Record) bool, held func(*record.Typed)) (stop func() error) {
	var (
		stopped atomic.Bool
		failed  atomic.Pointer[error]
		wg      sync.WaitGroup
	)
	fail := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stopped.Load(); i++ {
			var st *record.Typed
			switch i % 6 {
			case 0:
				st = db.Get(key).Typed
			case 1:
				db.View(key, func(rec record.Record) { fail(check("View", rec.Typed)) })
			case 2:
				st = db.Peek(key).Typed
			case 3:
				db.Table().SnapshotRange(0, func(_ uint64, k []byte, rec record.Record) bool {
					if bytes.Equal(k, key) {
						fail(check("SnapshotRange", rec.Typed))
					}
					return true
				})
			case 4:
				db.Table().Scan(0, func(k []byte, rec record.Record) bool {
					if bytes.Equal(k, key) && !header(rec) {
						fail(errors.New("Scan: the header of the state read wrong"))
					}
					return true
				})
			default:
				fail(db.Checkpoint())
			}
			if st != nil {
				fail(check("Get/Peek", st))
				held(st)
			}
		}
	}()
	return func() error {
		stopped.Store(true)
		wg.Wait()
		if p := failed.Load(); p != nil {
			return *p
		}
		return nil
	}
}
