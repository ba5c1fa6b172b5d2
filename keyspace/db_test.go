package keyspace

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

var quiet = slog.New(slog.DiscardHandler)

// store is a log and a keyspace on it, as a node opens them.
type store struct {
	log *wal.Store
	db  *DB
}

func openStore(t testing.TB, dir string, mod func(*wal.Options, *Options)) *store {
	t.Helper()
	wo := wal.Options{Dir: dir, Logger: quiet}
	ko := Options{Logger: quiet}
	if mod != nil {
		mod(&wo, &ko)
	}
	l, err := wal.Open(wo)
	if err != nil {
		t.Fatal(err)
	}
	ko.Log = l
	db, err := Open(ko)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return &store{log: l, db: db}
}

func (s *store) close(t testing.TB) {
	t.Helper()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.log.Close(); err != nil {
		t.Fatal(err)
	}
}

func setRec(ts uint64, val string) record.Record {
	v := version(ts)
	return record.Record{Value: record.Value{Version: v, Data: []byte(val)}, Expiry: record.Expiry{Version: v}}
}

func put(t testing.TB, db *DB, key string, rec record.Record) bool {
	t.Helper()
	var changed bool
	err := db.Update(context.Background(), func(tx *Tx) error {
		var err error
		_, changed, err = tx.Apply([]byte(key), rec)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func TestApplyMergesAndLogsOnlyWinners(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.close(t)
	if !put(t, s.db, "a", setRec(10, "x")) {
		t.Fatal("first write did not change anything")
	}
	if put(t, s.db, "a", setRec(5, "older")) {
		t.Fatal("an older write won")
	}
	if put(t, s.db, "a", setRec(10, "x")) {
		t.Fatal("the same write again changed something")
	}
	if !put(t, s.db, "a", setRec(11, "newer")) {
		t.Fatal("a newer write lost")
	}
	if _, last := s.log.LogBounds(); last != 2 {
		t.Fatalf("log ends at %d, want 2: only winners are logged", last)
	}
	es, err := s.log.ReadLog(1, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || string(es[0].Record.Value.Data) != "x" || string(es[1].Record.Value.Data) != "newer" {
		t.Fatalf("the log holds %+v", es)
	}
	if got := s.db.Get([]byte("a")); string(got.Value.Data) != "newer" {
		t.Fatalf("a = %q", got.Value.Data)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.close(t)
	boom := errors.New("boom")
	err := s.db.Update(context.Background(), func(tx *Tx) error {
		if _, _, err := tx.Apply([]byte("a"), setRec(1, "x")); err != nil {
			return err
		}
		if r, _ := tx.Get([]byte("a")); string(r.Value.Data) != "x" {
			t.Errorf("the transaction does not see its own write: %q", r.Value.Data)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	err = s.db.Update(context.Background(), func(tx *Tx) error { panic("bad command") })
	if err == nil {
		t.Fatal("a panicking function succeeded")
	}
	if r := s.db.Get([]byte("a")); r.Exists() {
		t.Fatal("a failed update's write is visible")
	}
	if _, last := s.log.LogBounds(); last != 0 {
		t.Fatalf("a failed update was logged: log ends at %d", last)
	}
}

func TestRollbackToSavepoint(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	defer s.close(t)
	err := s.db.Update(context.Background(), func(tx *Tx) error {
		tx.Apply([]byte("kept"), setRec(1, "1"))
		sp := tx.Savepoint()
		for i := range 40 { // past the point where own() keeps a map
			tx.Apply(fmt.Appendf(nil, "undone%d", i), setRec(2, "2"))
		}
		tx.Apply([]byte("kept"), setRec(3, "3"))
		tx.RollbackTo(sp)
		if r, _ := tx.Get([]byte("kept")); string(r.Value.Data) != "1" {
			t.Errorf("after rollback kept = %q", r.Value.Data)
		}
		if _, full := tx.Peek([]byte("undone3")); full {
			t.Error("a rolled back change is still seen")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.db.Get([]byte("kept")); string(r.Value.Data) != "1" {
		t.Fatalf("kept = %q", r.Value.Data)
	}
	if s.db.Get([]byte("undone0")).Exists() {
		t.Fatal("a rolled back change was published")
	}
}

// TestConcurrentWritersShareCommits: writers that arrive while a batch
// commits share the next one, and every write is logged once, in order.
func TestConcurrentWritersShareCommits(t *testing.T) {
	var batches atomic.Int64
	var mu sync.Mutex
	var seqs []uint64
	var s *store
	s = openStore(t, t.TempDir(), func(wo *wal.Options, ko *Options) {
		wo.Fsync = wal.FsyncAlways
		ko.OnCommit = func(es []wal.Entry) {
			batches.Add(1)
			// Indexes see a batch before the log shows it: a peer that
			// reads the head, then the Merkle root, must get a root that
			// covers the head.
			if _, last := s.log.LogBounds(); last >= es[0].Seq {
				t.Errorf("the log shows entry %d before OnCommit has it", es[0].Seq)
			}
			mu.Lock()
			for _, e := range es {
				seqs = append(seqs, e.Seq)
			}
			mu.Unlock()
		}
	})
	defer s.close(t)
	const writers, each = 32, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				put(t, s.db, fmt.Sprintf("w%d:%d", w, i), setRec(uint64(1+i), "v"))
			}
		})
	}
	wg.Wait()
	if _, last := s.log.LogBounds(); last != writers*each {
		t.Fatalf("log ends at %d, want %d", last, writers*each)
	}
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("OnCommit saw seq %d at %d", seq, i)
		}
	}
	if b := batches.Load(); b >= writers*each/2 {
		t.Fatalf("%d commits for %d writes: writers do not share commits", b, writers*each)
	}
	t.Logf("%d writes in %d commits", writers*each, batches.Load())
}

// TestReopenKeepsStateAndSequence: after a clean close the checkpoint
// holds everything (nothing is replayed), sequence numbers go on, and a
// reopened store that did not close (its log replayed over an older
// checkpoint) reads the same.
func TestReopenKeepsStateAndSequence(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	for i := range 100 {
		put(t, s.db, fmt.Sprintf("k%d", i), setRec(uint64(i+1), fmt.Sprint(i)))
	}
	put(t, s.db, "big", setRec(500, string(bytes.Repeat([]byte{'b'}, 3<<20))))
	s.close(t)

	s = openStore(t, dir, nil)
	if got := s.db.LastCheckpoint().Seq; got != 101 {
		t.Fatalf("checkpoint at %d, want 101", got)
	}
	for i := range 100 {
		if r := s.db.Get(fmt.Appendf(nil, "k%d", i)); string(r.Value.Data) != fmt.Sprint(i) {
			t.Fatalf("k%d = %q", i, r.Value.Data)
		}
	}
	if r := s.db.Get([]byte("big")); len(r.Value.Data) != 3<<20 {
		t.Fatalf("big holds %d bytes", len(r.Value.Data))
	}
	put(t, s.db, "after", setRec(1000, "x"))
	if _, last := s.log.LogBounds(); last != 102 {
		t.Fatalf("log ends at %d, want 102", last)
	}
	// Drop the checkpoint: the whole log replays to the same keyspace.
	s.close(t)
	if err := os.Remove(filepath.Join(dir, checkpointName)); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	defer s.close(t)
	if r := s.db.Get([]byte("after")); string(r.Value.Data) != "x" || s.db.KeyCount() != 102 {
		t.Fatalf("after replaying the log: after = %q, %d keys", r.Value.Data, s.db.KeyCount())
	}
}

// TestDamagedCheckpoint: a damaged checkpoint is replaced by the whole log
// while the log holds every write, and refuses start-up, saying what to do,
// once it does not.
func TestDamagedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	put(t, s.db, "a", setRec(1, "x"))
	s.close(t)
	path := filepath.Join(dir, checkpointName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-9] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	if r := s.db.Get([]byte("a")); string(r.Value.Data) != "x" {
		t.Fatalf("a = %q after replaying the log", r.Value.Data)
	}
	s.close(t)

	// Truncate the log past a checkpoint, then damage the checkpoint.
	s = openStore(t, dir, func(wo *wal.Options, _ *Options) { wo.RetainBytes = 1 })
	put(t, s.db, "b", setRec(2, "y"))
	if err := s.db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.log.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.log.LogBounds(); first == 1 {
		t.Fatal("nothing truncated")
	}
	s.close(t)
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := wal.Open(wal.Options{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Open(Options{Log: l, Logger: quiet})
	if err == nil || !errors.Is(err, errCheckpoint) {
		t.Fatalf("opened over a damaged checkpoint and a truncated log: %v", err)
	}
	t.Log(err)
}

// TestCheckpointRoundTrip: a checkpoint of a table loads into an equal one.
func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 5000 {
		put(t, s.db, fmt.Sprintf("k%d", r.IntN(3000)), randomRecord(r, uint64(i+10)))
	}
	want := map[string]record.Record{}
	s.db.Table().Scan(0, func(key []byte, _ record.Record) bool {
		want[string(key)] = s.db.Get(key)
		return true
	})
	s.close(t)
	tab := loadCheckpointFile(t, dir)
	for k, w := range want {
		if got, _ := tab.Get([]byte(k)); !record.Equal(got, w) {
			t.Fatalf("%s: %+v, want %+v", k, got, w)
		}
	}
	if tab.KeyCount() != s.db.KeyCount() || tab.ExpiresCount() != s.db.ExpiresCount() || len(want) == 0 {
		t.Fatalf("%d keys loaded, %d written", tab.KeyCount(), s.db.KeyCount())
	}
}

// FuzzLoadCheckpoint: any bytes load or fail, never panic, and never make
// the loader allocate beyond the file.
func FuzzLoadCheckpoint(f *testing.F) {
	tab := NewTable()
	tab.Set([]byte("a"), setRec(1, "x"))
	tab.Set([]byte("b"), record.Record{Value: record.Value{Version: version(2), Tombstone: true}})
	var buf bytes.Buffer
	hdr := append([]byte(checkpointMagic), make([]byte, 12)...)
	hdr[len(checkpointMagic)+8] = shardCount
	buf.Write(hdr)
	for i := range tab.shards {
		var b bytes.Buffer
		tab.shards[i].writeEntries(&sectionWriter{w: &b}, nil)
		sec := b.Bytes()
		var l [8]byte
		l[0], l[1], l[2] = byte(len(sec)), byte(len(sec)>>8), byte(len(sec)>>16)
		buf.Write(l[:])
		buf.Write(sec)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(checkpointMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		loadCheckpoint(bytes.NewReader(b), int64(len(b)), NewTable())
	})
}

// TestLegacyStoreIsConverted: a store of the layout before (keyspace rows in
// Badger, a log of versions only) opens with every key, checkpointed, and
// its sequence numbers go on after the old log's.
func TestLegacyStoreIsConverted(t *testing.T) {
	dir := t.TempDir()
	bo := badger.DefaultOptions(dir)
	bo.Logger = nil
	bdb, err := badger.OpenManaged(bo)
	if err != nil {
		t.Fatal(err)
	}
	txn := bdb.NewTransactionAt(1, true)
	for i := range 100 {
		key := fmt.Appendf(nil, "key%d", i)
		row := append([]byte{'k', 0, 0, 0, 0}, key...)
		binary.BigEndian.PutUint32(row[1:], uint32(Hash(key)>>32))
		if err := txn.Set(row, record.Encode(setRec(uint64(i+1), fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	// The old log: one block (count, time) ending at sequence number 500.
	blk := binary.BigEndian.AppendUint32(nil, 1)
	blk = binary.BigEndian.AppendUint64(blk, 0)
	if err := txn.Set(binary.BigEndian.AppendUint64([]byte{'l'}, 500), blk); err != nil {
		t.Fatal(err)
	}
	if err := txn.Set([]byte("mlog-format"), []byte("blocks")); err != nil {
		t.Fatal(err)
	}
	if err := txn.CommitAt(2, nil); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dir, nil)
	if s.db.KeyCount() != 100 {
		t.Fatalf("%d keys after conversion, want 100", s.db.KeyCount())
	}
	for i := range 100 {
		if r := s.db.Get(fmt.Appendf(nil, "key%d", i)); string(r.Value.Data) != fmt.Sprint(i) {
			t.Fatalf("key%d = %q", i, r.Value.Data)
		}
	}
	put(t, s.db, "new", setRec(1000, "x"))
	if _, last := s.log.LogBounds(); last != 501 {
		t.Fatalf("the first write after conversion got %d, want 501", last)
	}
	s.close(t)
	s = openStore(t, dir, nil)
	defer s.close(t)
	if s.log.Legacy() || s.db.KeyCount() != 101 {
		t.Fatalf("after a restart: legacy %v, %d keys", s.log.Legacy(), s.db.KeyCount())
	}
}

// TestRollbackRebuildsStatesMergedInPlace: merges of one large typed key in
// a step change its state in place (record.Owner); rolling back some of them
// leaves the state the kept ones made, and the table's state, which readers
// share, is never touched before the step publishes.
func TestRollbackRebuildsStatesMergedInPlace(t *testing.T) {
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
	shared := s.db.Get([]byte("s")).Typed
	err := s.db.Update(context.Background(), func(tx *Tx) error {
		tx.Apply([]byte("s"), member(1000, "kept1"))
		tx.Apply([]byte("s"), member(1001, "kept2"))
		sp := tx.Savepoint()
		tx.Apply([]byte("s"), member(1002, "undone1"))
		tx.Apply([]byte("s"), member(1003, "undone2"))
		tx.RollbackTo(sp)
		r, _ := tx.Get([]byte("s"))
		if !r.Typed.HasMember([]byte("kept2")) || r.Typed.HasMember([]byte("undone1")) || r.Typed.Len() != 402 {
			t.Errorf("after rollback: kept2 %v, undone1 %v, %d members", r.Typed.HasMember([]byte("kept2")),
				r.Typed.HasMember([]byte("undone1")), r.Typed.Len())
		}
		tx.Apply([]byte("s"), member(1004, "kept3"))
		if shared.Len() != 400 || shared.HasMember([]byte("kept1")) {
			t.Errorf("the table's state changed before the step published: %d members", shared.Len())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := s.db.Get([]byte("s")).Typed
	for _, m := range []string{"kept1", "kept2", "kept3"} {
		if !got.HasMember([]byte(m)) {
			t.Errorf("%s missing", m)
		}
	}
	if got.Len() != 403 || got.HasMember([]byte("undone2")) || shared.Len() != 400 {
		t.Fatalf("published %d members (undone2 %v); the state read before holds %d", got.Len(), got.HasMember([]byte("undone2")), shared.Len())
	}
}

// loadCheckpointFile loads the checkpoint in dir into a table of its own.
func loadCheckpointFile(t *testing.T, dir string) *Table {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable()
	if _, err := loadCheckpoint(f, info.Size(), tab); err != nil {
		t.Fatal(err)
	}
	return tab
}
