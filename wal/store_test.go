package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

func open(t testing.TB, dir string, mod func(*Options)) *Store {
	t.Helper()
	o := Options{Dir: dir}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func setRec(ts uint64, val string) record.Record {
	v := record.Version{TS: hlc.Timestamp(ts), Node: 1}
	return record.Record{Value: record.Value{Version: v, Data: []byte(val)}, Expiry: record.Expiry{Version: v}}
}

func put(t *testing.T, s *Store, key string, rec record.Record) bool {
	t.Helper()
	var changed bool
	err := s.Update(context.Background(), func(tx *Tx) error {
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
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	if !put(t, s, "a", setRec(10, "x")) {
		t.Fatal("first write did not change anything")
	}
	if put(t, s, "a", setRec(5, "older")) {
		t.Fatal("an older write won")
	}
	if put(t, s, "a", setRec(10, "x")) {
		t.Fatal("a duplicate write was applied again")
	}
	if !put(t, s, "a", setRec(11, "y")) {
		t.Fatal("a newer write lost")
	}
	got, err := s.Get([]byte("a"))
	if err != nil || string(got.Value.Data) != "y" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	first, last := s.LogBounds()
	if first != 1 || last != 2 {
		t.Fatalf("log bounds %d..%d, want 1..2 (losers are not logged)", first, last)
	}
	entries, err := s.ReadLog(1, 100, 1<<20)
	if err != nil || len(entries) != 2 || string(entries[1].Record.Value.Data) != "y" {
		t.Fatalf("ReadLog = %+v, %v", entries, err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	boom := errors.New("refused")
	err := s.Update(context.Background(), func(tx *Tx) error {
		if _, _, err := tx.Apply([]byte("a"), setRec(1, "x")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	err = s.Update(context.Background(), func(tx *Tx) error { panic("bad command") })
	if err == nil {
		t.Fatal("a panicking update reported success")
	}
	if r, _ := s.Get([]byte("a")); r.Exists() {
		t.Fatal("a failed update left a write behind")
	}
	if _, last := s.LogBounds(); last != 0 {
		t.Fatalf("a failed update was logged: last seq %d", last)
	}
	if put(t, s, "b", setRec(1, "ok")); s.KeyCount() != 1 {
		t.Fatalf("store unusable after a panic: %d keys", s.KeyCount())
	}
}

func TestTxSeesEarlierChangesInBatch(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	err := s.Update(context.Background(), func(tx *Tx) error {
		tx.Apply([]byte("k"), setRec(1, "one"))
		r, err := tx.Get([]byte("k"))
		if err != nil || string(r.Value.Data) != "one" {
			return fmt.Errorf("read own write: %+v %v", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsStateAndSequence(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	for i := 0; i < 100; i++ {
		put(t, s, fmt.Sprint("k", i), setRec(uint64(i+1), "v"))
	}
	put(t, s, "k0", record.Record{Value: record.Value{Version: record.Version{TS: 1000, Node: 1}, Tombstone: true}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	defer s.Close()
	if _, last := s.LogBounds(); last != 101 {
		t.Fatalf("last seq %d after reopen, want 101", last)
	}
	if s.KeyCount() != 99 {
		t.Fatalf("key count %d after reopen, want 99", s.KeyCount())
	}
	put(t, s, "new", setRec(5, "v"))
	if _, last := s.LogBounds(); last != 102 {
		t.Fatalf("sequence did not continue: %d", last)
	}
	rep, err := s.Check()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 101 || rep.Keys != 100 || rep.LogEntries != 102 {
		t.Fatalf("check report %+v", rep)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	defer s.Close()
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestConcurrentWritersShareCommits(t *testing.T) {
	for _, mode := range []Fsync{FsyncAlways, FsyncEverySec, FsyncNo} {
		t.Run(string(mode), func(t *testing.T) {
			var mu sync.Mutex
			commits, early := 0, 0
			var s *Store
			s = open(t, t.TempDir(), func(o *Options) {
				o.Fsync = mode
				o.OnCommit = func(es []Entry) {
					// Before the log shows them: an index OnCommit keeps
					// must reflect every entry LogBounds admits to.
					if _, last := s.LogBounds(); last >= es[0].Seq {
						mu.Lock()
						early++
						mu.Unlock()
					}
					mu.Lock()
					commits++
					mu.Unlock()
				}
			})
			defer s.Close()
			const writers, each = 32, 50
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						put(t, s, fmt.Sprintf("w%d-%d", w, i), setRec(1, "v"))
					}
				}()
			}
			wg.Wait()
			if s.KeyCount() != writers*each {
				t.Fatalf("%d keys, want %d", s.KeyCount(), writers*each)
			}
			if early > 0 {
				t.Errorf("%d batches were in LogBounds before OnCommit saw them", early)
			}
			if commits >= writers*each {
				t.Errorf("%d commits for %d writes: no group commit", commits, writers*each)
			}
			if _, err := s.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTooLargeIsRefusedAlone(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) { o.MemoryBudget = 16 << 20 })
	defer s.Close()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Update(context.Background(), func(tx *Tx) error {
				n := 10
				if i == 1 {
					n = 200_000 // far over one transaction
				}
				for j := 0; j < n; j++ {
					if _, _, err := tx.Apply([]byte(fmt.Sprintf("r%d-%d", i, j)), setRec(1, "v")); err != nil {
						return err
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if !errors.Is(errs[1], ErrTooLarge) {
		t.Fatalf("huge update: %v, want ErrTooLarge", errs[1])
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("small updates failed beside a huge one: %v %v", errs[0], errs[2])
	}
	if s.KeyCount() != 20 {
		t.Fatalf("%d keys, want 20", s.KeyCount())
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestKeyTooLong(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	err := s.Update(context.Background(), func(tx *Tx) error {
		_, _, err := tx.Apply(make([]byte, MaxKeyLen+1), setRec(1, "v"))
		return err
	})
	if !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("Update = %v", err)
	}
}

func TestRetentionBySizeAndAge(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) {
		o.Now = clock
		o.RetainBytes = 10_000
		o.RetainAge = time.Hour
		o.RetentionInterval = time.Hour // the test truncates by hand
	})
	for i := 0; i < 1000; i++ {
		put(t, s, fmt.Sprint("k", i%50), setRec(uint64(i+1), "0123456789"))
	}
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, last := s.LogBounds()
	if s.LogBytes() > 10_000 || first <= 1 || last != 1000 {
		t.Fatalf("after size truncation: %d bytes, seqs %d..%d", s.LogBytes(), first, last)
	}
	if _, err := s.ReadLog(1, 10, 1<<20); !errors.Is(err, ErrTruncated) {
		t.Fatalf("reading truncated entries: %v, want ErrTruncated", err)
	}
	if e, err := s.ReadLog(first, 10, 1<<20); err != nil || len(e) != 10 || e[0].Seq != first {
		t.Fatalf("reading from the oldest retained: %d entries, %v", len(e), err)
	}

	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, last = s.LogBounds()
	if first != 1001 || last != 1000 || s.LogBytes() != 0 {
		t.Fatalf("after age truncation: seqs %d..%d, %d bytes", first, last, s.LogBytes())
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// An emptied log never reuses sequence numbers.
	s = open(t, dir, func(o *Options) { o.Now = clock })
	defer s.Close()
	if first, last := s.LogBounds(); first != 1001 || last != 1000 {
		t.Fatalf("after reopen: %d..%d", first, last)
	}
	put(t, s, "fresh", setRec(5000, "v"))
	if _, last := s.LogBounds(); last != 1001 {
		t.Fatalf("new entry got seq %d, want 1001", last)
	}
}

func TestScanVisitsEveryRowOnce(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	const n = 500
	for i := 0; i < n; i++ {
		put(t, s, fmt.Sprint("key", i), setRec(1, "v"))
	}
	seen := map[string]int{}
	var cursor uint64
	for rounds := 0; ; rounds++ {
		count := 0
		next, err := s.Scan(cursor, func(k []byte, _ record.Record) bool {
			seen[string(k)]++
			count++
			return count < 7
		})
		if err != nil {
			t.Fatal(err)
		}
		if next == 0 {
			break
		}
		if rounds > n {
			t.Fatal("scan does not end")
		}
		cursor = next
	}
	if len(seen) != n {
		t.Fatalf("scan saw %d keys, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Fatalf("%s seen %d times", k, c)
		}
	}
}

func TestMetaIsDurable(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	if err := s.PutMetaSync("x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir, nil)
	defer s.Close()
	v, ok, err := s.GetMeta("x")
	if err != nil || !ok || string(v) != "hello" {
		t.Fatalf("GetMeta = %q %v %v", v, ok, err)
	}
	if _, ok, _ := s.GetMeta("missing"); ok {
		t.Fatal("missing meta found")
	}
}

func TestRollbackToSavepoint(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	put(t, s, "a", setRec(1, "base"))
	err := s.Update(context.Background(), func(tx *Tx) error {
		tx.Apply([]byte("a"), setRec(2, "kept"))
		sp := tx.Savepoint()
		tx.Apply([]byte("a"), setRec(3, "undone"))
		tx.Apply([]byte("b"), setRec(3, "undone"))
		tx.RollbackTo(sp)
		if r, _ := tx.Get([]byte("a")); string(r.Value.Data) != "kept" {
			return fmt.Errorf("after rollback a = %q", r.Value.Data)
		}
		if r, _ := tx.Get([]byte("b")); r.Exists() {
			return fmt.Errorf("after rollback b exists")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get([]byte("a")); string(r.Value.Data) != "kept" {
		t.Fatalf("a = %q", r.Value.Data)
	}
	if r, _ := s.Get([]byte("b")); r.Exists() {
		t.Fatal("a rolled-back write was committed")
	}
	if _, last := s.LogBounds(); last != 2 {
		t.Fatalf("log has %d entries, want 2", last)
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestCacheNeverServesStale hammers a few keys with increasing versions while
// readers read them: no reader may ever see a key go back to an older
// version, and after each write is acknowledged every reader sees it.
func TestCacheNeverServesStale(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) { o.MemoryBudget = 1 << 20 }) // tiny cache: constant eviction
	defer s.Close()
	const keys, writes = 8, 3000
	var acked [keys]atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen [keys]uint64
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				k := i % keys
				floor := acked[k].Load()
				rec, err := s.Get([]byte(fmt.Sprint("k", k)))
				if err != nil {
					t.Error(err)
					return
				}
				ts := uint64(rec.Value.Version.TS)
				if ts < seen[k] || ts < floor {
					t.Errorf("key %d went back to version %d (seen %d, acknowledged %d)", k, ts, seen[k], floor)
					return
				}
				seen[k] = ts
			}
		}()
	}
	for i := 1; i <= writes; i++ {
		k := i % keys
		put(t, s, fmt.Sprint("k", k), setRec(uint64(i), fmt.Sprint("v", i)))
		acked[k].Store(uint64(i))
	}
	close(done)
	wg.Wait()
}

type countingStringer struct{ n *int }

func (c countingStringer) String() string { *c.n++; return "x" }

// Badger logs at debug level on every write: at the default level those
// messages must cost no formatting.
func TestBadgerLoggerFormatsOnlyEnabledLevels(t *testing.T) {
	var buf strings.Builder
	l := badgerLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	formatted := 0
	arg := countingStringer{&formatted}
	l.Debugf("write %v", arg)
	l.Infof("opened %v", arg)
	if formatted != 0 || buf.Len() != 0 {
		t.Fatalf("debug and info (sent to debug) formatted %d times, wrote %q", formatted, buf.String())
	}
	l.Warningf("careful %v\n", arg)
	if formatted != 1 || !strings.Contains(buf.String(), `msg="careful x"`) {
		t.Fatalf("warning: formatted %d times, wrote %q", formatted, buf.String())
	}
}

// The log's blocks go to Badger's value log; once truncated, the files that
// held them are reclaimed, and what is retained still reads back.
func TestValueLogReclaimsTruncatedLog(t *testing.T) {
	dir := t.TempDir()
	opts := func(o *Options) {
		o.RetainBytes = 512 << 10
		o.RetentionInterval = time.Hour // the test truncates by hand
		o.valueLogFileSize = 1 << 20
	}
	vlogs := func() int {
		files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}
	s := open(t, dir, opts)
	ts := uint64(0)
	for b := 0; b < 1500; b++ { // about 8 MiB of log, in blocks of 200 entries
		err := s.Update(context.Background(), func(tx *Tx) error {
			for i := 0; i < 200; i++ {
				ts++
				if _, _, err := tx.Apply([]byte(fmt.Sprint("k", i)), setRec(ts, "v")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := vlogs(); n < 6 {
		t.Fatalf("%d value log files after %d bytes of log; are its blocks kept in the LSM tree?", n, s.LogBytes())
	}
	before := s.DiskSize()
	if before < 6<<20 {
		t.Fatalf("DiskSize %d with six value log files of 1 MiB", before)
	}
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = compact(t, s, dir, opts)
	defer s.Close()
	s.collectValueLog(context.Background())
	if n := vlogs(); n > 3 {
		t.Fatalf("%d value log files after truncating the log to 512 KiB", n)
	}
	if after := s.DiskSize(); after >= before {
		t.Fatalf("DiskSize %d after reclaiming the value log, %d before", after, before)
	}
	first, last := s.LogBounds()
	entries, err := s.ReadLog(first, int(last-first+1), 64<<20)
	if err != nil || uint64(len(entries)) != last-first+1 || entries[len(entries)-1].Seq != last {
		t.Fatalf("reading the retained log %d..%d: %d entries, %v", first, last, len(entries), err)
	}
	if _, err := s.Check(); err != nil {
		t.Fatal(err)
	}
}
