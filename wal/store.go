// Package wal is a node's storage on Badger: the keyspace, the write-ahead
// log, and small metadata (the HLC high-water mark, the identity key, peer
// cursors).
//
// Every mutation goes through Update, whose function reads and merges records
// through a Tx. One writer goroutine runs the functions of many clients one
// after another and commits their changes in a single Badger transaction:
// each changed keyspace row together with the log's entries for them. With
// fsync "always" the writer syncs once per batch before any of its clients is
// answered, which is group commit; "everysec" syncs in the background once a
// second; "no" leaves it to the OS and Badger.
//
// Keyspace rows are laid out by a 32-bit hash of the key, so that the keys of
// one Merkle bucket are one contiguous prefix range and SCAN has a stable,
// restartable cursor.
package wal

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
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
	// KeyHash places a key's row in the keyspace. The Merkle index passes its
	// bucket hash so that a bucket is one row range; xxhash by default.
	KeyHash func(key []byte) uint32
	// MemoryBudget is roughly how much RAM the store may use for Badger's
	// memtables and caches and its own record cache (half each); 64 MiB by
	// default. Badger's own defaults take about 400 MB. The version index
	// (about 100 bytes a key) comes on top.
	MemoryBudget int64
	// Logger receives the store's and Badger's logs.
	Logger *slog.Logger
	// Now reads the wall clock for log entry times; time.Now by default.
	Now func() time.Time
	// OnCommit, if set, is called by the writer after each batch is durable
	// (as the fsync mode defines it) with the log entries it added, in order,
	// before any client of the batch is answered and before LogBounds and
	// ReadLog include them (so an index it keeps reflects every entry the
	// log shows). It must not block for long; it may not call Update.
	OnCommit func([]Entry)
	// valueLogFileSize replaces valueLogFileSize in tests.
	valueLogFileSize int64
}

// DefaultKeyHash is the row hash used when Options.KeyHash is nil.
func DefaultKeyHash(key []byte) uint32 { return uint32(xxhash.Sum64(key) >> 32) }

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
	if o.KeyHash == nil {
		o.KeyHash = DefaultKeyHash
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

// Row prefixes. One byte each; the keyspace rows sort by key hash.
const (
	prefixKey  = 'k' // 'k' hash(4) key → record
	prefixLog  = 'l' // 'l' seq(8) → a block of entries from seq on (see log.go)
	prefixMeta = 'm' // 'm' name → value
	prefixExp  = 'x' // 'x' deadline(8) key → nothing: keys by expiry deadline
)

// Store is a node's Badger-backed keyspace and log.
type Store struct {
	db   *badger.DB
	ts   *timestamps
	opts Options
	log  *slog.Logger

	reqs   chan *request
	stop   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
	mu     sync.Mutex // orders Close against Update's send

	// Log bounds, guarded by logMu; the writer moves last, retention first.
	logMu    sync.Mutex
	firstSeq uint64 // oldest retained entry; lastSeq+1 when the log is empty
	lastSeq  uint64
	logBytes int64
	logFreed uint64        // bytes of entries ever truncated (meta log-freed)
	logSized chan struct{} // closed once logBytes counts the entries found at start-up

	index *index
	cache *recordCache
	// The last index snapshot's sequence number and time; the background
	// goroutine's (or, before it starts and after it stops, Open's and
	// Close's) alone.
	snapSeq      uint64
	snapTime     time.Time
	snapCheckSeq uint64 // the log's last seq at the previous snapshotDue

	keys    atomic.Int64 // rows holding a value (expired or not)
	expires atomic.Int64 // of those, rows with a deadline
}

// Open opens (creating if needed) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	opts.setDefaults()
	bo := badger.DefaultOptions(opts.Dir)
	budget := opts.MemoryBudget / 2 // the other half is the record cache
	bo.MemTableSize = max(budget/4, 4<<20)
	bo.NumMemtables = 2
	// Rows are placed by a hash of the key, so writes land all over the
	// key range and each compaction from level 0 rewrites about all of
	// level 1. Merging four level-0 tables at a time, into a level 1 of
	// 64 MiB (two levels hold a million keys, not three), cuts those
	// rewrites: loading 1M keys took 11–12 s against 14–16.
	bo.NumLevelZeroTables = 4
	bo.NumLevelZeroTablesStall = 12
	bo.BaseLevelSize = 64 << 20
	bo.BlockCacheSize = budget / 4
	bo.IndexCacheSize = budget / 8
	bo.BaseTableSize = 2 << 20
	bo.TableSizeMultiplier = 1 // compaction buffers a whole table per builder: keep tables small at every level
	// Values over 1 KiB go to Badger's value log, written once, and the LSM
	// tree holds a pointer. Above all that takes the log's blocks (a
	// batch's entries, up to 16 KiB) out of the tree: kept in it, each went
	// through every flush and compaction until truncated, a quarter of a
	// busy node's CPU. collectValueLog reclaims the files.
	bo.ValueThreshold = 1 << 10
	bo.ValueLogFileSize = cmp.Or(opts.valueLogFileSize, valueLogFileSize)
	bo.NumCompactors = 2
	bo.Compression = options.None // compression cost compaction 150 MB of buffers and CPU for small values
	bo.DetectConflicts = false    // one writer goroutine; nothing to conflict with
	bo.MetricsEnabled = false
	bo.SyncWrites = false // we sync per batch (always) or per second (everysec)
	bo.Logger = badgerLogger{opts.Logger.With("component", "badger")}
	db, err := badger.OpenManaged(bo) // see timestamps.go
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, fmt.Errorf("open %s: %w", opts.Dir, ErrLocked)
		}
		return nil, fmt.Errorf("open badger in %s: %w", opts.Dir, err)
	}
	s := &Store{
		db:    db,
		opts:  opts,
		log:   opts.Logger,
		reqs:  make(chan *request, 1024),
		ts:    newTimestamps(db.MaxVersion()),
		index: newIndex(),
		cache: newRecordCache(opts.MemoryBudget / 2),
		stop:  make(chan struct{}),

		logSized: make(chan struct{}),
	}
	if err := s.upgradeLog(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadState(); err != nil {
		db.Close()
		return nil, err
	}
	s.wg.Add(2)
	if !isClosed(s.logSized) {
		s.wg.Add(1)
		last := s.lastSeq
		go func() { defer s.wg.Done(); s.sizeLog(last) }()
	}
	go s.writer()
	go s.background()
	return s, nil
}

// loadState recovers the log bounds, the version index and the key count.
// The log's size, which takes reading every entry's key, is summed later by
// sizeLog, off the start-up path.
func (s *Store) loadState() error {
	err := s.view(func(txn *badger.Txn) error {
		floor, err := getUint64(txn, metaSeqFloor)
		if err != nil {
			return err
		}
		if s.logFreed, err = getUint64(txn, metaLogFreed); err != nil {
			return err
		}
		s.firstSeq, s.lastSeq = floor+1, floor
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		if it.Rewind(); it.Valid() {
			s.firstSeq = blockSeq(it.Item().Key())
		}
		rit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, Reverse: true})
		defer rit.Close()
		if rit.Seek(logKey(math.MaxUint64)); rit.Valid() {
			last, err := blockLast(rit.Item())
			if err != nil {
				return err
			}
			s.lastSeq = max(s.lastSeq, last)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the log's bounds: %w", err)
	}
	return s.loadIndex()
}

// sizeLog adds up the size of the entries that were in the log at start-up;
// the writer has been adding the new ones' meanwhile. Truncation waits for it.
// It reads every entry's key, so it runs only when the index snapshot could
// not say (see loadIndex).
func (s *Store) sizeLog(last uint64) {
	defer close(s.logSized)
	var total int64
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if blockSeq(it.Item().Key()) > last {
				break
			}
			total += blockSize(it.Item())
		}
		return nil
	})
	if err != nil {
		s.log.Error("sizing the log failed; retention by size undercounts", "err", err)
	}
	s.logMu.Lock()
	s.logBytes += total
	s.logMu.Unlock()
}

// Close stops the writer after the requests already queued, syncs and closes
// Badger.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	close(s.stop)
	s.mu.Unlock()
	s.wg.Wait()
	// With the writer stopped the snapshot is exact: the next start
	// replays nothing.
	if err := s.writeSnapshot(); err != nil {
		s.log.Error("index snapshot at close failed", "err", err)
	}
	serr := s.db.Sync()
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
	for {
		select {
		case <-s.stop:
			return
		case <-syncTick.C:
			s.releaseVersions()
			if s.opts.Fsync == FsyncEverySec {
				if err := s.db.Sync(); err != nil {
					s.log.Error("background fsync failed", "err", err)
				}
			}
			if s.snapshotDue(time.Now()) {
				if err := s.writeSnapshot(); err != nil {
					s.log.Error("index snapshot failed", "err", err)
				}
			}
		case <-retain.C:
			if _, err := s.Truncate(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("log truncation failed", "err", err)
			}
			s.collectValueLog(ctx)
		}
	}
}

// Fsync is the store's durability mode.
func (s *Store) Fsync() Fsync { return s.opts.Fsync }

// KeyCount is the number of keys holding a value, expired ones included until
// they are swept (as Redis's DBSIZE counts them).
func (s *Store) KeyCount() int64 { return s.keys.Load() }

// ExpiresCount is the number of keys holding a value with a deadline.
func (s *Store) ExpiresCount() int64 { return s.expires.Load() }

// valueLogFileSize is the size of a value log file: the unit in which its
// space is reclaimed. Badger's default, 1 GiB, would keep that much of
// truncated log on disk.
const valueLogFileSize = 64 << 20

// collectValueLog reclaims value log files that are mostly garbage (values
// overwritten or deleted, log blocks truncated, as compaction has found):
// Badger copies what still lives in each to the head of the value log and
// deletes the file.
func (s *Store) collectValueLog(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.db.RunValueLogGC(0.5)
		if err == nil {
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
	metaLogFreed = "log-freed" // bytes of log entries ever truncated, for the log's size at start-up
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
	err := s.update(func(txn *badger.Txn) error { return txn.Set(metaKey(name), value) })
	if err == nil {
		err = s.db.Sync()
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
