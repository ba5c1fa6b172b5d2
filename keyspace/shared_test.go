package keyspace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// queueShared starts fns as UpdateShared calls, one after another, while
// the test holds the leader's token, so that they all wait for one step in
// this order; then it lets them run and returns their errors.
func queueShared(t *testing.T, db *DB, fns []UpdateFunc) []error {
	t.Helper()
	db.leader <- struct{}{}
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = db.UpdateShared(context.Background(), fn) })
		waitFor(t, func() bool {
			db.qmu.Lock()
			defer db.qmu.Unlock()
			return len(db.queue) == i+1
		})
	}
	<-db.leader
	wg.Wait()
	return errs
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUpdateSharedRunsInOrderInOneStep: functions waiting together run in
// one step in the order they came, each seeing those before it, a failing
// or panicking one undoing only its own changes, and their writes are
// committed in one batch.
func TestUpdateSharedRunsInOrderInOneStep(t *testing.T) {
	var mu sync.Mutex
	var batches [][]string
	s := openStore(t, t.TempDir(), func(wo *wal.Options, ko *Options) {
		ko.OnCommit = func(es []wal.Entry) {
			var keys []string
			for _, e := range es {
				keys = append(keys, string(e.Key))
			}
			mu.Lock()
			batches = append(batches, keys)
			mu.Unlock()
		}
	})
	defer s.close(t)
	boom := errors.New("boom")
	var seen string
	fns := []UpdateFunc{
		func(tx *Tx) error {
			_, _, err := tx.Apply([]byte("a"), setRec(1, "1"))
			return err
		},
		func(tx *Tx) error {
			tx.Apply([]byte("a"), setRec(2, "undone"))
			tx.Apply([]byte("b"), setRec(2, "undone"))
			return boom
		},
		func(tx *Tx) error {
			tx.Apply([]byte("c"), setRec(3, "undone"))
			panic("bad command")
		},
		func(tx *Tx) error {
			r, _ := tx.Get([]byte("a"))
			seen = string(r.Value.Data)
			_, _, err := tx.Apply([]byte("d"), setRec(4, "4"))
			return err
		},
	}
	errs := queueShared(t, s.db, fns)
	if errs[0] != nil || !errors.Is(errs[1], boom) || errs[2] == nil || errs[3] != nil {
		t.Fatalf("errors %v", errs)
	}
	if seen != "1" {
		t.Errorf("the fourth function read a = %q, want the first's write", seen)
	}
	for key, want := range map[string]string{"a": "1", "b": "", "c": "", "d": "4"} {
		if got := string(s.db.Get([]byte(key)).Value.Data); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 1 || fmt.Sprint(batches[0]) != "[a d]" {
		t.Fatalf("committed %v, want one batch [a d]", batches)
	}
}

// TestUpdateSharedReadWaitsForTheStepsCommit: a function that writes
// nothing but read what one before it in the step wrote returns only once
// that write is committed, as a reader does.
func TestUpdateSharedReadWaitsForTheStepsCommit(t *testing.T) {
	release := make(chan struct{})
	var committed atomic.Bool
	s := openStore(t, t.TempDir(), func(wo *wal.Options, ko *Options) {
		ko.OnCommit = func([]wal.Entry) {
			<-release
			committed.Store(true)
		}
	})
	defer s.close(t)
	var read string
	var readReturned atomic.Bool
	s.db.leader <- struct{}{}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.db.UpdateShared(context.Background(), func(tx *Tx) error {
			_, _, err := tx.Apply([]byte("k"), setRec(1, "v"))
			return err
		}); err != nil {
			t.Error(err)
		}
	})
	waitFor(t, func() bool { s.db.qmu.Lock(); defer s.db.qmu.Unlock(); return len(s.db.queue) == 1 })
	wg.Go(func() {
		err := s.db.UpdateShared(context.Background(), func(tx *Tx) error {
			r, _ := tx.Get([]byte("k"))
			read = string(r.Value.Data)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if !committed.Load() {
			t.Error("a read of a write in its step returned before the write was committed")
		}
		readReturned.Store(true)
	})
	waitFor(t, func() bool { s.db.qmu.Lock(); defer s.db.qmu.Unlock(); return len(s.db.queue) == 2 })
	<-s.db.leader
	// The step has run once the table holds the write; the commit is held.
	waitFor(t, func() bool { r, _ := s.db.table.Get([]byte("k")); return r.Exists() })
	if readReturned.Load() {
		t.Error("the read returned while its step's commit was held")
	}
	close(release)
	wg.Wait()
	if read != "v" {
		t.Fatalf("read %q, want the write before it in the step", read)
	}
}

// TestUpdateSharedLargeStateOnceForAll: writes of several functions into
// one large state share the step's copy of it, leave the published state
// a reader holds as it was, and each sees those before it.
func TestUpdateSharedLargeStateOnceForAll(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.close(t)
	member := func(ts uint64, name string) record.Record {
		return record.Record{Typed: &record.Typed{Kind: record.KindSet, KindVersion: version(ts),
			Members: []record.Elem{{Name: []byte(name), Dot: version(ts)}}}}
	}
	big := &record.Typed{Kind: record.KindSet, KindVersion: version(1)}
	for i := range 400 {
		big.Members = append(big.Members, record.Elem{Name: fmt.Appendf(nil, "m%04d", i), Dot: version(uint64(2 + i))})
	}
	put(t, s.db, "s", record.Record{Typed: big})
	held := s.db.Get([]byte("s")).Typed
	var fns []UpdateFunc
	lens := make([]int, 20)
	for i := range lens {
		fns = append(fns, func(tx *Tx) error {
			if _, _, err := tx.Apply([]byte("s"), member(uint64(1000+i), fmt.Sprintf("new%02d", i))); err != nil {
				return err
			}
			r, _ := tx.Get([]byte("s"))
			lens[i] = r.Typed.Len()
			return nil
		})
	}
	for i, err := range queueShared(t, s.db, fns) {
		if err != nil {
			t.Fatalf("function %d: %v", i, err)
		}
	}
	for i, n := range lens {
		if n != 401+i {
			t.Errorf("function %d saw %d members, want %d", i, n, 401+i)
		}
	}
	if got := s.db.Get([]byte("s")).Typed.Len(); got != 420 {
		t.Errorf("published %d members, want 420", got)
	}
	if held.Len() != 400 || held.HasMember([]byte("new00")) {
		t.Fatalf("the state a reader held changed: %d members", held.Len())
	}
}
