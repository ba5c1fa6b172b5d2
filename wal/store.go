// Package wal is a node's storage on Badger: the write-ahead log, the
// checkpoints' place on disk, and small metadata (the HLC high-water mark,
// the identity key, peer cursors).
//
// The keyspace itself lives in memory (package keyspace); every mutation it
// applies is appended here, value included, in commit order, a batch of
// them per Badger transaction (Commit). With fsync "always" each batch is
// synced before its writers are answered, which is group commit; "everysec"
// syncs in the background once a second; "no" leaves it to the OS and
// Badger. The log feeds the mesh's pushes and peers' catch-up, and replays
// over the last checkpoint at start-up.
package wal

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"golang.org/x/sys/unix"

	"github.com/redmesh/redmesh/hlc"
)

// Fsync is the durability mode, as Redis's appendfsync.
type Fsync string

// Durability modes.
const (
	FsyncAlways   Fsync = "always"
	FsyncEverySec Fsync = "everysec"
	FsyncNo       Fsync = "no"
)

// ParseFsync checks a mode's name.
func ParseFsync(s string) (Fsync, error) {
	switch f := Fsync(strings.ToLower(s)); f {
	case FsyncAlways, FsyncEverySec, FsyncNo:
		return f, nil
	}
	return "", fmt.Errorf("fsync mode %q: want always, everysec or no", s)
}

// Options configures a Store. The zero value of each field is its default.
type Options struct {
	// Dir is the data directory.
	Dir string
	// Fsync is the durability mode; everysec by default.
	Fsync Fsync
	// RetainBytes bounds the log's size; 256 MiB by default.
	RetainBytes int64
	// RetainAge bounds the age of the oldest log entry; 24h by default.
	RetainAge time.Duration
	// RetentionInterval is how often the log is truncated; 10s by default.
	RetentionInterval time.Duration
	// Stable, if set, is the stable time: every member of the mesh has
	// applied every write up to it (the greatest timestamp on a node
	// alone). No peer needs a block whose entries hold only writes up to
	// it: retention drops such blocks once checkpointed, whatever the size
	// and age bounds, and runs as soon as the stable time moves. Zero keeps
	// them all to the bounds.
	Stable func() hlc.Timestamp
	// MemoryBudget is roughly how much RAM Badger may use for its
	// memtables; 64 MiB by default (Badger's own defaults take about
	// 400 MB).
	MemoryBudget int64
	// Logger receives the store's and Badger's logs.
	Logger *slog.Logger
	// Now reads the wall clock for log entry times, and how old
	// checkSpace's last reading is; time.Now by default.
	Now func() time.Time
	// valueLogFileSize replaces valueLogFileSize in tests.
	valueLogFileSize int64
	// journalLimit replaces journalLimit in tests.
	journalLimit int64
	// keepMapped stops the background release of mapped pages, for the
	// test that measures a release.
	keepMapped bool
}

func (o *Options) setDefaults() {
	if o.Fsync == "" {
		o.Fsync = FsyncEverySec
	}
	if o.RetainBytes <= 0 {
		o.RetainBytes = 256 << 20
	}
	if o.RetainAge <= 0 {
		o.RetainAge = 24 * time.Hour
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = 10 * time.Second
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ErrLocked is returned by Open when another process holds the data directory.
var ErrLocked = errors.New("data directory is in use by another process")

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store is closed")

// ErrNeedsRestart is returned by every write once Badger's in-memory state
// cannot take one safely until the process starts again (a flush failed
// inside a DropPrefix): what was committed is on disk, and a restart
// replays it.
var ErrNeedsRestart = errors.New("the log's store must be restarted")

// Row prefixes. One byte each.
const (
	prefixLog  = 'l' // 'l' seq(8) → a block of entries from seq on; 'l' seq(8) part(4) → its continuation (see log.go)
	prefixMeta = 'm' // 'm' name → value
	// 'f' → nothing: a row written and dropped at once to make Badger flush
	// its memtable (see reclaimTruncated).
	prefixFlush = 'f'
	// Rows of the layout before the keyspace moved into memory; a store
	// that has them is converted at start-up (see legacy.go).
	prefixLegacyKey = 'k' // 'k' hash(4) key → record
	prefixLegacyExp = 'x' // 'x' deadline(8) key → nothing
)

// Store is a node's Badger-backed log and metadata.
type Store struct {
	db *badger.DB
	// journal, under fsync always, holds what Badger has not synced.
	journal *journal
	ts      *timestamps
	opts    Options
	log     *slog.Logger

	// Syncs are numbered as they start; syncDone is the highest number
	// completed (SyncMark, SyncedTo).
	syncStarted, syncDone atomic.Uint64

	// reserve is what Badger may write without asking (see checkSpace).
	reserve int64
	// space is checkSpace's last reading of the free space.
	space struct {
		mu   sync.Mutex
		at   time.Time // zero: read it again
		free int64     // bytes free then, less what was asked for since
	}

	stop chan struct{}
	// retainNow asks for a retention pass before the next tick: a new
	// checkpoint may let the log go.
	retainNow chan struct{}
	wg        sync.WaitGroup
	closed    atomic.Bool
	// broken is why Badger must take no more writes in this process: a
	// DropPrefix failed part way (see reclaimTruncated).
	broken atomic.Pointer[error]

	// Log bounds, guarded by logMu; Commit moves last, retention first.
	logMu      sync.Mutex
	firstSeq   uint64 // oldest retained entry; lastSeq+1 when the log is empty
	lastSeq    uint64
	logBytes   int64
	checkpoint uint64 // entries after it are never truncated
	stamps     []blockStamp
	// truncated is how many bytes of log retention dropped since Badger
	// last compacted them away (reclaimTruncated).
	truncated int64

	legacy       bool   // of the layout before; see legacy.go
	legacyFormat []byte // its log-format mark (empty: none); nil for a current store
}

// Open opens (creating if needed) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	bo := badger.DefaultOptions(opts.Dir)
	// The tree holds the small blocks and pointers to the value log:
	// small memtables do. Badger allocates a memtable's arena whole (1.3
	// times its size) as it starts one, and the node counts it as used
	// memory from then on, data or not: 2 MiB by default.
	bo.MemTableSize = max(opts.MemoryBudget/32, 2<<20)
	bo.NumMemtables = 2
	bo.NumLevelZeroTables = 4
	bo.NumLevelZeroTablesStall = 12
	// No caches: with neither compression nor encryption, a table's blocks
	// and index are read in place from its mapping, so the index cache is
	// never consulted and the block cache would keep only parsed headers.
	// Each cache costs about a megabyte of counters and a goroutine whatever
	// it holds.
	bo.BlockCacheSize = 0
	bo.IndexCacheSize = 0
	bo.BaseTableSize = 2 << 20
	bo.TableSizeMultiplier = 1 // compaction buffers a whole table per builder: keep tables small at every level
	// Values over 1 KiB, above all the log's blocks, go to Badger's value
	// log, written once, and the tree holds a pointer; kept in the tree,
	// each went through every flush and compaction until truncated.
	// collectValueLog reclaims the files.
	bo.ValueThreshold = 1 << 10
	bo.ValueLogFileSize = cmp.Or(opts.valueLogFileSize, valueLogFileSize)
	bo.NumCompactors = 2
	bo.Compression = options.None
	bo.DetectConflicts = false // one committer; nothing to conflict with
	bo.MetricsEnabled = false
	bo.SyncWrites = false // we sync per batch (always) or per second (everysec)
	bo.Logger = badgerLogger{opts.Logger.With("component", "badger")}
	if err := removeEmptyValueLogs(opts.Dir, opts.Logger); err != nil {
		return nil, err
	}
	db, err := badger.OpenManaged(bo) // see timestamps.go
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, fmt.Errorf("open %s: %w", opts.Dir, ErrLocked)
		}
		return nil, fmt.Errorf("open badger in %s: %w", opts.Dir, err)
	}
	s := &Store{
		db:        db,
		opts:      opts,
		log:       opts.Logger,
		ts:        newTimestamps(db.MaxVersion()),
		stop:      make(chan struct{}),
		retainNow: make(chan struct{}, 1),
		reserve:   4*db.Opts().MemTableSize + 2*db.Opts().ValueLogFileSize,
	}
	if err := s.checkFormat(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadBounds(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.replayJournal(); err != nil {
		db.Close()
		return nil, err
	}
	if opts.Fsync == FsyncAlways {
		if s.journal, err = openJournal(opts.Dir); err != nil {
			db.Close()
			return nil, err
		}
		s.reserve += cmp.Or(opts.journalLimit, journalLimit)
	}
	s.wg.Add(1)
	go s.background()
	return s, nil
}

// removeEmptyValueLogs removes the empty value-log files in dir. A crash
// between Badger creating a value-log file and sizing it leaves one, and
// Badger then refuses to open the directory; empty, it holds nothing. It
// takes the directory's lock as Badger does (a flock on the directory), so
// it never touches a directory another process has open: that one Badger
// refuses.
func removeEmptyValueLogs(dir string, log *slog.Logger) error {
	d, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil
	}
	defer unix.Flock(int(d.Fd()), unix.LOCK_UN)
	paths, err := filepath.Glob(filepath.Join(dir, "*.vlog"))
	if err != nil {
		return fmt.Errorf("list value-log files in %s: %w", dir, err)
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("look at value-log file: %w", err)
		}
		if fi.Size() != 0 {
			continue
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("remove empty value-log file: %w", err)
		}
		log.Warn("removed an empty value-log file a crash left", "file", p)
	}
	return nil
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.opts.Dir }

// Sync makes everything committed so far durable.
func (s *Store) Sync() error {
	if err := s.sync(); err != nil {
		return fmt.Errorf("fsync the log: %w", err)
	}
	return nil
}

// sync is Badger's Sync, numbered.
func (s *Store) sync() error {
	n := s.syncStarted.Add(1)
	err := s.db.Sync()
	if err == nil {
		for done := s.syncDone.Load(); done < n && !s.syncDone.CompareAndSwap(done, n); done = s.syncDone.Load() {
		}
	}
	return err
}

// SyncMark is the number of the next sync to start: once SyncedTo reaches
// it, everything committed before SyncMark was called is durable.
func (s *Store) SyncMark() uint64 { return s.syncStarted.Load() + 1 }

// SyncedTo is the number of the latest sync completed.
func (s *Store) SyncedTo() uint64 { return s.syncDone.Load() }

// Close stops the background work, syncs and closes Badger. The caller
// commits nothing after it.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	s.wg.Wait()
	serr := s.db.Sync()
	if s.journal != nil {
		if serr == nil {
			serr = s.journal.empty()
		}
		if err := s.journal.close(); err != nil && serr == nil {
			serr = fmt.Errorf("close the journal: %w", err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close badger: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("sync on close: %w", serr)
	}
	return nil
}

// background syncs once a second (everysec) and truncates the log.
func (s *Store) background() {
	defer s.wg.Done()
	syncTick := time.NewTicker(time.Second)
	defer syncTick.Stop()
	retain := time.NewTicker(s.opts.RetentionInterval)
	defer retain.Stop()
	// Close must not wait for a long truncation to finish.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var stable hlc.Timestamp // the stable time of the last pass
	for {
		select {
		case <-s.stop:
			return
		case <-syncTick.C:
			s.releaseVersions()
			if !s.opts.keepMapped {
				s.releaseMapped()
			}
			if s.opts.Fsync == FsyncEverySec {
				if err := s.sync(); err != nil {
					s.log.Error("background fsync failed", "err", err)
				}
			}
			// The stable time moving may let checkpointed blocks go: a
			// cache of short-lived keys otherwise kept up to a tick's
			// worth more of log on disk.
			if now := s.stable(); now > stable && s.checkpointed() {
				stable = now
				s.retain(ctx)
			}
		case <-s.retainNow:
			// Only what no peer needs goes before the bounds' tick.
			if now := s.stable(); now != 0 {
				stable = now
				s.retain(ctx)
			}
		case <-retain.C:
			stable = s.stable()
			s.retain(ctx)
		}
	}
}

// stable reads Options.Stable (0 without it).
func (s *Store) stable() hlc.Timestamp {
	if s.opts.Stable == nil {
		return 0
	}
	return s.opts.Stable()
}

// checkpointed reports whether the checkpoint covers the log's first
// entry, which retention may then drop.
func (s *Store) checkpointed() bool {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.firstSeq <= s.lastSeq && s.checkpoint >= s.firstSeq
}

// retain is a retention pass: truncate the log, then reclaim its space.
func (s *Store) retain(ctx context.Context) {
	if s.broken.Load() != nil {
		return // truncation and value log collection write
	}
	if _, err := s.Truncate(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("log truncation failed", "err", err)
	}
	s.releaseMapped() // the blocks truncation read for their headers
	s.reclaimTruncated()
	s.collectValueLog(ctx)
}

// Fsync is the store's durability mode.
func (s *Store) Fsync() Fsync { return s.opts.Fsync }

// valueLogFileSize is the size of a value log file: the unit in which its
// space is reclaimed, and part of the free space a commit needs (see
// checkSpace). Badger's default, 1 GiB, would keep that much of truncated
// log on disk.
const valueLogFileSize = 16 << 20

// ErrDiskFull is returned by writes when the disk has too little room for
// them: Badger writes through memory-mapped files, and a page the file
// system cannot back kills the process (SIGBUS) rather than failing the
// write, so the store refuses beforehand.
var ErrDiskFull = errors.New("not enough free disk space")

// checkSpace fails with ErrDiskFull unless the data directory's file system
// has room for need bytes more than Badger may touch without asking: the
// rest of its memtable and value log files (created sparse, at twice their
// nominal sizes) and a flushed table.
//
// A statfs costs a tenth of a small commit's CPU, so a figure read less
// than spaceRecheck ago is used again while it leaves spaceSlack beyond
// what is wanted, less what was asked for since: no writer fills a
// gigabyte in ten milliseconds, and a file system that near full is asked
// every time.
func (s *Store) checkSpace(need int64) error {
	want := s.reserve + need
	sp := &s.space
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := s.opts.Now()
	if now.Sub(sp.at) < spaceRecheck && sp.free-need >= s.reserve+spaceSlack {
		sp.free -= need
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.opts.Dir, &st); err != nil {
		sp.at = time.Time{}
		return nil // cannot tell; Badger will say
	}
	free := int64(st.Bavail) * st.Bsize
	sp.at, sp.free = now, free-need
	if free < want {
		sp.at = time.Time{}
		return fmt.Errorf("%w in %s: %d MiB free, the log needs %d MiB", ErrDiskFull, s.opts.Dir, free>>20, want>>20)
	}
	return nil
}

// See checkSpace.
const (
	spaceRecheck = 10 * time.Millisecond
	spaceSlack   = 1 << 30
)

// reclaimTruncated has Badger compact away the log blocks retention
// deleted, once they add up to a value log file, so that collectValueLog
// finds the files they filled. Badger learns what a value log file holds
// that is dead only by compacting the tree; but the tree holds only the
// blocks' keys and pointers, so its memtable may take hundreds of MiB of log
// to fill and be flushed, and the files stay until then (a TTL workload grew
// the disk round after round). Dropping a prefix is Badger's one way to
// flush the memtable on demand (writes wait for that flush, a few
// milliseconds), and it compacts level 0 after; flattening then compacts the
// levels below, where older blocks' keys may be.
func (s *Store) reclaimTruncated() {
	if s.broken.Load() != nil {
		return
	}
	s.logMu.Lock()
	due := s.truncated >= s.db.Opts().ValueLogFileSize
	s.logMu.Unlock()
	if !due || s.checkSpace(0) != nil {
		return
	}
	err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte{prefixFlush}, nil) })
	if err == nil {
		// The compactions drop only the versions no reader can see.
		s.releaseVersions()
		// Badger refuses every write while a prefix drops
		// (ErrBlockedWrites): commits wait on the commit lock instead.
		s.ts.commitMu.Lock()
		err = s.db.DropPrefix([]byte{prefixFlush}) // flushes, then compacts level 0
		if err != nil && !errors.Is(err, badger.ErrDBClosed) && !errors.Is(err, badger.ErrBlockedWrites) {
			// A flush that failed in DropPrefix (a full disk) leaves the
			// memtable it flushed listed both as the one written to and
			// as one waiting for its flush: a second DropPrefix, or the
			// memtable's turn to be flushed, flushes it twice and frees
			// it while still listed, and Badger panics. No write may
			// reach it, so every commit from now on fails; Close still
			// flushes it once.
			broken := fmt.Errorf("%w: a flush failed while compacting the truncated log: %w", ErrNeedsRestart, err)
			s.broken.Store(&broken)
		}
		s.ts.commitMu.Unlock()
	}
	if err == nil {
		err = s.db.Flatten(1)
	}
	if err != nil {
		if errp := s.broken.Load(); errp != nil {
			s.log.Error("the log takes no more writes until the node restarts", "err", *errp)
		} else if !errors.Is(err, badger.ErrDBClosed) && !s.closed.Load() {
			s.log.Error("compact the truncated log", "err", err)
		}
		return
	}
	s.logMu.Lock()
	s.truncated = 0
	s.logMu.Unlock()
}

// collectValueLog reclaims value log files that are mostly garbage (values
// overwritten or deleted, log blocks truncated, as compaction has found):
// Badger copies what still lives in each to the head of the value log and
// deletes the file.
func (s *Store) collectValueLog(ctx context.Context) {
	for ctx.Err() == nil && s.checkSpace(0) == nil {
		// Badger's rewrite reads the memtable's highest version without
		// the lock its writes take (v4.9.6: DB.MaxVersion against
		// memTable.Put). The value read is at most the true one, which
		// only makes compaction keep more versions while the file is
		// rewritten (its discard clamp), so commits go on beside it; a
		// build with the race detector, which would stop the process
		// there, makes them wait instead (at a cost to write latency:
		// bench/RESULTS.md).
		if raceDetector {
			s.ts.commitMu.Lock()
		}
		err := s.db.RunValueLogGC(0.5)
		if raceDetector {
			s.ts.commitMu.Unlock()
		}
		if err == nil {
			s.releaseMapped() // the file it read through its mapping
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.log.Error("value log collection failed", "err", err)
		}
		return
	}
}

// DiskSize is the size of the files in the data directory, in bytes.
// (Badger's own Size reads counters kept only with its metrics on.)
func (s *Store) DiskSize() int64 {
	entries, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		s.log.Warn("sizing the data directory", "err", err)
		return 0
	}
	var total int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
	}
	return total
}

// Meta names.
const (
	metaSeqFloor = "seq-floor" // the highest seq ever truncated, so an empty log never reuses seqs
)

// GetMeta reads a metadata value; ok is false if it was never written.
func (s *Store) GetMeta(name string) (value []byte, ok bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		value, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("read meta %q: %w", name, err)
	}
	return value, ok, nil
}

// PutMetaSync writes a metadata value and syncs it to disk before returning,
// whatever the fsync mode: metadata (the clock's high-water mark, the node's
// identity) must never be lost.
func (s *Store) PutMetaSync(name string, value []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	err := s.checkSpace(int64(len(value)))
	if err == nil {
		err = s.update(func(txn *badger.Txn) error { return txn.Set(metaKey(name), value) })
	}
	if err == nil {
		err = s.sync()
	}
	if err != nil {
		return fmt.Errorf("write meta %q: %w", name, err)
	}
	return nil
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func getUint64(txn *badger.Txn, name string) (uint64, error) {
	item, err := txn.Get(metaKey(name))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("meta %q: %d bytes, want 8", name, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

// badgerLogger sends Badger's logs to slog; its INFO chatter goes to debug.
// Badger logs at debug level on every write, so a message is formatted only
// if its level is on.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) logf(level slog.Level, f string, a []any) {
	if b.l.Enabled(context.Background(), level) {
		b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(f, a...)))
	}
}

func (b badgerLogger) Errorf(f string, a ...any)   { b.logf(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.logf(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.logf(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.logf(slog.LevelDebug, f, a) }
