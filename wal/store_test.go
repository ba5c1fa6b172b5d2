package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

var quiet = slog.New(slog.DiscardHandler)

func open(t testing.TB, dir string, mod func(*Options)) *Store {
	t.Helper()
	o := Options{Dir: dir, Logger: quiet}
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

// commit logs one batch: entry i sets key(i) to val, after the log's end.
func commit(t testing.TB, s *Store, n int, key func(i int) string, val string) {
	t.Helper()
	_, last := s.LogBounds()
	var b Batch
	for i := range n {
		b.Add(last+uint64(i)+1, []byte(key(i)), setRec(last+uint64(i)+1, val), [3]record.Version{}, [3]record.Version{})
	}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	s.Advance(&b)
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	defer s.Close()
	if _, err := Open(Options{Dir: dir, Logger: quiet}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestCommitRefusesAGap(t *testing.T) {
	s := open(t, t.TempDir(), nil)
	defer s.Close()
	var b Batch
	b.Add(5, []byte("k"), setRec(1, "v"), [3]record.Version{}, [3]record.Version{})
	if err := s.Commit(&b); err == nil {
		t.Fatal("a batch starting at 5 was logged after an empty log")
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

// Retention drops the blocks no peer needs (their writes are all at or
// before the stable time) up to the checkpoint, however small and young
// the log, and keeps the rest.
func TestRetentionDropsUnneeded(t *testing.T) {
	var mu sync.Mutex
	var stable hlc.Timestamp
	setStable := func(ts hlc.Timestamp) { mu.Lock(); stable = ts; mu.Unlock() }
	s := open(t, t.TempDir(), func(o *Options) {
		o.RetentionInterval = time.Hour // the test truncates by hand
		o.Stable = func() hlc.Timestamp { mu.Lock(); defer mu.Unlock(); return stable }
	})
	defer s.Close()
	for range 20 { // entry i is stamped i (commit's setRec)
		commit(t, s, 10, func(i int) string { return fmt.Sprint("k", i) }, "v")
	}
	s.SetCheckpoint(150)
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.LogBounds(); first != 1 {
		t.Fatalf("a small, young log truncated to %d with no stable time", first)
	}
	setStable(105) // the first ten blocks', and half the eleventh's
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.LogBounds(); first != 101 {
		t.Fatalf("truncated to %d, want 101: the blocks no peer needs", first)
	}
	setStable(math.MaxUint64)
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, last := s.LogBounds(); first != 151 || last != 200 {
		t.Fatalf("truncated to %d..%d, want 151..200: the checkpoint bounds it", first, last)
	}
}

// A block is judged by the writes it holds, not by when it was committed
// here: a peer's write stamped ahead of this node's clock keeps its block
// (and every later one) until the stable time passes it. The blocks this
// process committed are judged by what their batch noted; those of an
// earlier run (reopened), by decoding them.
func TestRetentionJudgesBlocksByTheirWrites(t *testing.T) {
	for _, reopen := range []bool{false, true} {
		t.Run(fmt.Sprint("reopen=", reopen), func(t *testing.T) {
			var mu sync.Mutex
			var stable hlc.Timestamp
			dir := t.TempDir()
			opts := func(o *Options) {
				o.RetentionInterval = time.Hour // the test truncates by hand
				o.Stable = func() hlc.Timestamp { mu.Lock(); defer mu.Unlock(); return stable }
			}
			s := open(t, dir, opts)
			defer func() { s.Close() }()
			// Blocks of 20 KB, in Badger's value log as the log's are, where the
			// size Badger reports of a value is an estimate.
			val := strings.Repeat("v", 2000)
			var b Batch
			for i := range uint64(10) {
				ts := i + 1
				if i == 5 {
					ts = 1000 // stamped ahead
				}
				b.Add(i+1, []byte(fmt.Sprint("k", i)), setRec(ts, val), [3]record.Version{}, [3]record.Version{})
			}
			if err := s.Commit(&b); err != nil {
				t.Fatal(err)
			}
			s.Advance(&b)
			commit(t, s, 10, func(i int) string { return fmt.Sprint("k", i) }, val) // 11..20, stamped so
			if reopen {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				s = open(t, dir, opts)
			}
			s.SetCheckpoint(20)
			for _, c := range []struct {
				stable hlc.Timestamp
				first  uint64
			}{{999, 1}, {1000, 21}} {
				mu.Lock()
				stable = c.stable
				mu.Unlock()
				if _, err := s.Truncate(context.Background()); err != nil {
					t.Fatal(err)
				}
				if first, _ := s.LogBounds(); first != c.first {
					t.Fatalf("stable time %d: truncated to %d, want %d", c.stable, first, c.first)
				}
			}
			if n := s.LogBytes(); n != 0 {
				t.Fatalf("an empty log counts %d bytes", n)
			}
		})
	}
}

// Retention runs as soon as the stable time moves past checkpointed
// blocks, without waiting for its tick or another checkpoint.
func TestRetentionFollowsTheStableTime(t *testing.T) {
	var stable, reads atomic.Uint64
	s := open(t, t.TempDir(), func(o *Options) {
		o.RetentionInterval = time.Hour
		o.Stable = func() hlc.Timestamp { reads.Add(1); return hlc.Timestamp(stable.Load()) }
	})
	defer s.Close()
	for range 5 {
		commit(t, s, 10, func(i int) string { return fmt.Sprint("k", i) }, "v")
	}
	before := reads.Load()
	s.SetCheckpoint(50) // with no stable time yet, its pass drops nothing
	for len(s.retainNow) > 0 || reads.Load() == before {
		time.Sleep(time.Millisecond)
	}
	stable.Store(30)
	deadline := time.Now().Add(10 * time.Second)
	for first, _ := s.LogBounds(); first != 31; first, _ = s.LogBounds() {
		if time.Now().After(deadline) {
			t.Fatalf("log starts at %d, want 31 once the stable time passed 30", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Retention drops the oldest blocks beyond the size and age bounds, never
// past the checkpoint, and an emptied log never reuses sequence numbers.
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
	for range 100 {
		commit(t, s, 10, func(i int) string { return fmt.Sprint("k", i) }, "0123456789")
	}
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.LogBounds(); first != 1 {
		t.Fatalf("truncated to %d without a checkpoint", first)
	}
	s.SetCheckpoint(500)
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, last := s.LogBounds()
	if first != 501 || last != 1000 {
		t.Fatalf("truncated to %d..%d, want 501..1000: the checkpoint bounds it", first, last)
	}
	s.SetCheckpoint(1000)
	if _, err := s.Truncate(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, last = s.LogBounds()
	if s.LogBytes() > 10_000 || first <= 501 || last != 1000 {
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
	s.Close()

	s = open(t, dir, func(o *Options) { o.Now = clock })
	defer s.Close()
	if first, last := s.LogBounds(); first != 1001 || last != 1000 {
		t.Fatalf("after reopen: %d..%d", first, last)
	}
	commit(t, s, 1, func(int) string { return "fresh" }, "v")
	if _, last := s.LogBounds(); last != 1001 {
		t.Fatalf("new entry got seq %d, want 1001", last)
	}
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
	for range 1500 { // about 8 MiB of log, in batches of 200 entries
		commit(t, s, 200, func(i int) string { return fmt.Sprint("k", i) }, "v")
	}
	if n := vlogs(); n < 6 {
		t.Fatalf("%d value log files after %d bytes of log; are its blocks kept in the LSM tree?", n, s.LogBytes())
	}
	before := s.DiskSize()
	if before < 6<<20 {
		t.Fatalf("DiskSize %d with six value log files of 1 MiB", before)
	}
	_, last := s.LogBounds()
	s.SetCheckpoint(last)
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
}

// Retention alone, with no restart and no memtable filled, has Badger
// compact the blocks it dropped, so that their value log files go: the log
// of a node that needs none of it before its checkpoint stays small on disk.
func TestRetentionReclaimsValueLogAtOnce(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) {
		o.RetentionInterval = time.Hour // only a checkpoint asks for a pass
		o.valueLogFileSize = 1 << 20
		o.Stable = func() hlc.Timestamp { return math.MaxUint64 }
	})
	defer s.Close()
	vlogs := func() int {
		files, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}
	for range 1500 { // about 8 MiB of log
		commit(t, s, 200, func(i int) string { return fmt.Sprint("k", i) }, "v")
	}
	if n := vlogs(); n < 6 {
		t.Fatalf("%d value log files after %d bytes of log", n, s.LogBytes())
	}
	_, last := s.LogBounds()
	s.SetCheckpoint(last) // asks for a retention pass
	deadline := time.Now().Add(30 * time.Second)
	for vlogs() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d value log files remain, the log truncated to %d bytes", vlogs(), s.LogBytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.LogBytes() != 0 {
		t.Fatalf("%d bytes of log kept that no peer needs", s.LogBytes())
	}
}

// A full disk refuses commits with ErrDiskFull, before Badger touches a
// page of a memory-mapped file the file system cannot back (which kills the
// process), and commits go on once space returns. It mounts a small tmpfs,
// so it needs root, as CI has.
func TestFullDiskRefusesCommits(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=128m"); err != nil {
		t.Skipf("cannot mount a tmpfs (not root?): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	s := open(t, filepath.Join(dir, "d"), nil)
	defer s.Close()
	commit(t, s, 10, func(i int) string { return fmt.Sprint("k", i) }, "v")
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // the disk is full
		}
	}
	f.Close()
	var b Batch
	_, last := s.LogBounds()
	b.Add(last+1, []byte("k"), setRec(100, "v"), [3]record.Version{}, [3]record.Version{})
	if err := s.Commit(&b); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("commit on a full disk: %v, want ErrDiskFull", err)
	}
	if err := s.PutMetaSync("m", []byte("x")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("meta on a full disk: %v, want ErrDiskFull", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(&b); err != nil {
		t.Fatalf("commit once space returned: %v", err)
	}
	s.Advance(&b)
	if _, last := s.LogBounds(); last != 11 {
		t.Fatalf("log ends at %d, want 11", last)
	}
}

// Commits made while retention has Badger drop a prefix (its one way to
// flush the memtable) wait for it rather than fail: Badger refuses every
// write while a DropPrefix runs, and a failed commit makes the node refuse
// its clients' writes.
func TestCommitsWaitForReclaim(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) {
		o.RetentionInterval = time.Hour
		o.valueLogFileSize = 1 << 20
	})
	defer s.Close()
	done := make(chan error, 1)
	go func() {
		for i := range 300 {
			_, last := s.LogBounds()
			var b Batch
			for j := range 50 {
				seq := last + uint64(j) + 1
				b.Add(seq, []byte(fmt.Sprint("k", i, "-", j)), setRec(seq, "v"), [3]record.Version{}, [3]record.Version{})
			}
			if err := s.Commit(&b); err != nil {
				done <- err
				return
			}
			s.Advance(&b)
		}
		done <- nil
	}()
	for reclaims := 0; ; reclaims++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("a commit failed while the log was reclaimed (%d reclaims): %v", reclaims, err)
			}
			if reclaims == 0 {
				t.Fatal("no reclaim ran beside the commits")
			}
			return
		default:
		}
		s.logMu.Lock()
		s.truncated = s.db.Opts().ValueLogFileSize // as if retention had dropped a file's worth
		s.logMu.Unlock()
		s.reclaimTruncated()
	}
}

// TestOpenStoreHeap: an open store with the default budget holds a few MiB
// of heap (its memtable's arena above all), which a node counts as used
// memory however little it holds.
func TestOpenStoreHeap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := int64(after.HeapAlloc) - int64(before.HeapAlloc); n > 6<<20 {
		t.Errorf("an open store holds %d KiB of heap, want at most 6 MiB", n>>10)
	}
}

// A store runs no block or index cache: its tables are read in place from
// their mappings, and each cache held about a megabyte of its own.
func TestOpenStoreRunsNoCaches(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := s.db.BlockCacheMetrics(); m != nil {
		t.Errorf("Badger runs a block cache: %v", m)
	}
	if m := s.db.IndexCacheMetrics(); m != nil {
		t.Errorf("Badger runs an index cache: %v", m)
	}
}

// checkSpace uses a recent reading of the free space only while it leaves
// the slack beyond what is wanted, counting what was asked for since; a
// reading that close to the limit, or an old one, is taken again.
func TestCheckSpaceReadsAgainNearTheLimit(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s := open(t, t.TempDir(), func(o *Options) { o.Now = now; o.RetentionInterval = time.Hour })
	defer s.Close()
	sp := &s.space
	if err := s.checkSpace(0); err != nil {
		t.Skipf("too little free space here: %v", err)
	}
	sp.mu.Lock()
	real := sp.free
	// A recent reading with room to spare is used, less what is asked.
	sp.free = s.reserve + spaceSlack + 1000
	sp.mu.Unlock()
	if real < s.reserve+spaceSlack+(1<<30) {
		t.Skipf("too little free space here for the slack: %d MiB", real>>20)
	}
	if err := s.checkSpace(600); err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	got := sp.free
	sp.mu.Unlock()
	if got != s.reserve+spaceSlack+400 {
		t.Fatalf("free after a check from the last reading: %d, want %d", got, s.reserve+spaceSlack+400)
	}
	// One that would leave less than the slack is read again.
	if err := s.checkSpace(600); err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	got = sp.free
	// So is an old one, however much it showed.
	sp.free = 1 << 62
	sp.mu.Unlock()
	if got < real-(512<<20) {
		t.Fatalf("free %d MiB after the check near the limit: not read again (about %d MiB)", got>>20, real>>20)
	}
	mu.Lock()
	clock = clock.Add(spaceRecheck)
	mu.Unlock()
	if err := s.checkSpace(0); err != nil {
		t.Fatal(err)
	}
	sp.mu.Lock()
	got = sp.free
	sp.mu.Unlock()
	if got == 1<<62 {
		t.Fatal("an old reading was used")
	}
}

// A kill between Badger creating a value-log file and sizing it leaves the
// file empty; Badger then refuses to open the directory. The store opens,
// its log whole.
func TestOpenAfterEmptyValueLogFile(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, nil)
	commit(t, s, 100, func(i int) string { return fmt.Sprintf("k%03d", i) }, strings.Repeat("v", 2000))
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	vlogs, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil || len(vlogs) == 0 {
		t.Fatalf("value-log files: %v %v", vlogs, err)
	}
	var maxFid int
	for _, p := range vlogs {
		var fid int
		if _, err := fmt.Sscanf(filepath.Base(p), "%06d.vlog", &fid); err == nil {
			maxFid = max(maxFid, fid)
		}
	}
	empty := filepath.Join(dir, fmt.Sprintf("%06d.vlog", maxFid+1))
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	defer s.Close()
	first, last := s.LogBounds()
	if first != 1 || last != 100 {
		t.Fatalf("log bounds after reopening: %d..%d, want 1..100", first, last)
	}
	es, err := s.ReadLog(1, 1000, 1<<30)
	if err != nil || len(es) != 100 || string(es[99].Key) != "k099" {
		t.Fatalf("log after reopening: %d entries, %v", len(es), err)
	}
}
