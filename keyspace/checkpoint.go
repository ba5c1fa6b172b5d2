package keyspace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// A checkpoint is the whole table in one file, written while writes go on.
// It begins at sequence number S, the last published when it starts, and
// copies the shards one range of entries at a time, so it may also hold
// changes newer than S. A key removed (collected) and written again while
// the copy goes on may be in it twice, the later copy the later state. That
// is harmless: start-up loads it and replays the
// log from S+1, and replaying an entry is a merge, which leaves a newer
// record as it is. What must never happen is a checkpoint holding a change
// the log then loses in a crash: so before the file replaces the previous
// one, everything published by the end of the copy is committed and the log
// synced. Only then may the log drop entries up to S (wal.SetCheckpoint).
//
// Files rather than Badger rows: a row per key is what the keyspace left
// Badger to escape (bench/RESULTS.md has the figures), a file is written
// with plain sequential writes that do not stay resident in memory, and it
// is read back on every core.
//
// The file: magic; S (8 bytes); the shard count (4); per shard the length
// of its section (8) and the section: per entry the key after its length
// (a uvarint) and the encoded record; an xxhash of everything before it.
// Little-endian.
const (
	checkpointName  = "keyspace.checkpoint"
	checkpointMagic = "redmesh-checkpoint-1\n"
	// A checkpoint is written once the log grew by the last checkpoint's
	// size, and at least by this much, since it.
	checkpointMinGrowth = 16 << 20
	// A checkpoint, or a log since it, of more than this and over four
	// times what the keyspace now holds calls for a checkpoint.
	checkpointShrunk = 4 << 20
	// rangeEntries is how many entries a checkpoint copies per hold of a
	// shard's lock.
	rangeEntries = 4096
)

var errCheckpoint = errors.New("bad checkpoint")

type checkpointState struct {
	mu     sync.Mutex // one checkpoint at a time
	seq    uint64     // the last checkpoint's S
	at     time.Time  // when it was installed
	took   time.Duration
	size   int64
	logged atomic.Int64 // log bytes committed since the last checkpoint began
}

// CheckpointInfo describes the last checkpoint, for INFO.
type CheckpointInfo struct {
	Seq   uint64
	At    time.Time // zero if none was written since start-up or loaded
	Bytes int64
}

// LastCheckpoint describes the last checkpoint written or loaded.
func (db *DB) LastCheckpoint() CheckpointInfo {
	db.ckpt.mu.Lock()
	defer db.ckpt.mu.Unlock()
	return CheckpointInfo{Seq: db.ckpt.seq, At: db.ckpt.at, Bytes: db.ckpt.size}
}

func (db *DB) checkpointPath() string { return filepath.Join(db.log.Dir(), checkpointName) }

// checkpointer writes checkpoints when they are due.
func (db *DB) checkpointer() {
	defer db.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		}
		db.ckpt.mu.Lock()
		grown := db.ckpt.logged.Load()
		since := time.Since(db.ckpt.at)
		// Due when the log has grown by the keyspace's size (replay at
		// start-up then costs about a load) or by half its retention
		// bound (it is truncated only up to a checkpoint), or after a
		// long while; but never more than a tenth of the time.
		due := grown > 0 && since >= 9*db.ckpt.took &&
			(grown >= min(max(checkpointMinGrowth, db.ckpt.size), db.log.RetainBytes()/2) || since >= db.opts.CheckpointEvery)
		// Or when the keyspace is a fraction of the last checkpoint or of
		// the log since (expiry and collection, never logged, emptied a
		// cache): a new checkpoint is then cheap, and lets the old one's
		// file and the log go, which would otherwise hold the disk until
		// the log grows again.
		if size := db.ckpt.size; !due && (size > checkpointShrunk || grown > checkpointShrunk) && since >= 9*db.ckpt.took {
			_, now := db.table.SnapshotSize()
			due = size > checkpointShrunk && size > 4*now || grown > checkpointShrunk && grown > 4*now
		}
		db.ckpt.mu.Unlock()
		if due {
			if err := db.checkpoint(); err != nil && !db.closed.Load() {
				db.lg.Error("checkpoint failed", "err", err)
			}
		}
	}
}

// Checkpoint writes a checkpoint now: the one way to make local changes
// (Local), which are never logged, survive a crash before the next
// checkpoint that is due.
func (db *DB) Checkpoint() error { return db.checkpoint() }

// checkpoint writes the table to the checkpoint file, replacing the last
// once it and every change it holds are durable.
func (db *DB) checkpoint() error {
	db.ckpt.mu.Lock()
	defer db.ckpt.mu.Unlock()
	start := time.Now()
	db.pmu.Lock()
	seq := db.seq
	db.pmu.Unlock()
	logged := db.ckpt.logged.Load()

	tmp := db.checkpointPath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("create checkpoint: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// A shard's section is written as it is encoded, its length filled in
	// after it and the checksum read back from the file: the file's layout
	// puts both before what they cover, and holding a section whole until
	// its length is known took as much memory as the keyspace's encoding
	// (one large list is one section).
	w := bufio.NewWriterSize(f, 1<<20)
	hdr := append([]byte(checkpointMagic), make([]byte, 12)...)
	binary.LittleEndian.PutUint64(hdr[len(checkpointMagic):], seq)
	binary.LittleEndian.PutUint32(hdr[len(checkpointMagic)+8:], shardCount)
	w.Write(hdr)
	size := int64(len(hdr))
	var buf []byte
	for i := range db.table.shards {
		w.Write(make([]byte, 8))
		sec := sectionWriter{w: w}
		buf = db.table.shards[i].writeEntries(&sec, buf[:0], db.table.gate)
		if sec.err == nil {
			sec.err = w.Flush()
		}
		if sec.err != nil {
			return fmt.Errorf("write checkpoint: %w", sec.err)
		}
		if _, err := f.WriteAt(binary.LittleEndian.AppendUint64(nil, uint64(sec.n)), size); err != nil {
			return fmt.Errorf("write checkpoint: %w", err)
		}
		size += 8 + sec.n
	}
	sum := xxhash.New()
	if _, err := io.CopyBuffer(sum, io.NewSectionReader(f, 0, size), make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("read checkpoint back for its checksum: %w", err)
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint64(nil, sum.Sum64())); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	size += 8
	// Every change the copy may hold must be in the log, synced.
	db.pmu.Lock()
	end := db.seq
	db.pmu.Unlock()
	if err := db.waitDurable(end); err != nil {
		return err
	}
	if err := db.log.Sync(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close checkpoint: %w", err)
	}
	f = nil
	if err := os.Rename(tmp, db.checkpointPath()); err != nil {
		return fmt.Errorf("install checkpoint: %w", err)
	}
	if err := wal.SyncDir(db.log.Dir()); err != nil {
		return fmt.Errorf("install checkpoint: %w", err)
	}
	db.log.SetCheckpoint(seq)
	db.ckpt.seq, db.ckpt.at, db.ckpt.size, db.ckpt.took = seq, time.Now(), size, time.Since(start)
	db.ckpt.logged.Add(-logged)
	db.lg.Debug("checkpoint written", "seq", seq, "bytes", size, "took", time.Since(start))
	return nil
}

// waitDurable waits until every entry up to seq is committed, or fails if
// the log does.
func (db *DB) waitDurable(seq uint64) error {
	db.dmu.Lock()
	defer db.dmu.Unlock()
	for seq > db.durable.Load() {
		if errp := db.failure.Load(); errp != nil {
			return fmt.Errorf("checkpoint waits for the log: %w", *errp)
		}
		db.dcond.Wait()
	}
	return nil
}

// spillAt is how much of a large typed state's encoding a checkpoint
// buffers before writing it out.
const spillAt = 64 << 10

// sectionWriter writes a shard's section, counting its bytes; the first
// error sticks.
type sectionWriter struct {
	w   io.Writer
	n   int64
	err error
}

// spill writes b out and returns it emptied, for the encoding to go on in.
func (sw *sectionWriter) spill(b []byte) []byte {
	if sw.err == nil && len(b) > 0 {
		var n int
		n, sw.err = sw.w.Write(b)
		sw.n += int64(n)
	}
	return b[:0]
}

// writeEntries writes the shard's entries to sw, encoded in b, a range at
// a time under its read lock, so a writer never waits for more than one
// range. A large typed state is encoded after the lock is released: it is
// an object no write changes once published (writes build the next one
// beside it), and its encoding takes as long as it has elements, which the
// writer publishing to this shard, and every write behind it, would
// otherwise wait for; it is written out as it is encoded, through a buffer
// of about spillAt bytes. It still comes before the next range's entries,
// so a key written again into an entry further on is in the file after
// it, as loading expects. It returns b, for the next shard.
func (s *shard) writeEntries(sw *sectionWriter, b []byte, gate *sync.Mutex) []byte {
	type large struct {
		key []byte
		rec record.Record
	}
	var later []large
	for lo := 0; ; lo += rangeEntries {
		s.mu.RLock()
		n := len(s.entries)
		if lo >= n {
			s.mu.RUnlock()
			return b
		}
		if gate != nil && s.rangeMutable(lo, min(lo+rangeEntries, n)) {
			// A large state the writer could still change in place is
			// frozen first, with the writer's lock, as readers do.
			s.mu.RUnlock()
			gate.Lock()
			s.mu.RLock()
			n = len(s.entries)
			s.freezeRange(lo, min(lo+rangeEntries, n))
			gate.Unlock()
		}
		for i := lo; i < min(lo+rangeEntries, n); i++ {
			if s.entries[i].flags&flagFree != 0 {
				continue
			}
			key := s.key(&s.entries[i])
			if s.entries[i].flags&(flagTyped|flagObj) == flagTyped {
				// An INCR's counter is written from its state as the
				// table holds it, not decoded into a state first.
				data, state := splitBlob(s.value(i))
				if st, ok := record.PeekCounter(state); ok {
					rec := s.registers(i)
					rec.Value.Data = data
					b = binary.AppendUvarint(b, uint64(len(key)))
					b = append(b, key...)
					b = record.AppendBinaryCounter(b, rec, st)
					continue
				}
			}
			rec := s.record(i, true)
			if s.entries[i].flags&flagObj != 0 {
				// The key and the value register's data are in the
				// arena, which a write may change in place: copied.
				rec.Value.Data = bytes.Clone(rec.Value.Data)
				later = append(later, large{bytes.Clone(key), rec})
				continue
			}
			b = binary.AppendUvarint(b, uint64(len(key)))
			b = append(b, key...)
			b = record.AppendBinary(b, rec)
		}
		s.mu.RUnlock()
		b = sw.spill(b)
		for i, l := range later {
			b = binary.AppendUvarint(b, uint64(len(l.key)))
			b = append(b, l.key...)
			b = record.AppendBinarySpill(b, l.rec, spillAt, sw.spill)
			b = sw.spill(b)
			later[i] = large{}
		}
		later = later[:0]
	}
}

// readCheckpoint loads the checkpoint file into the empty table and returns
// its S; ok is false if there is none.
func (db *DB) readCheckpoint() (seq uint64, ok bool, err error) {
	f, err := os.Open(db.checkpointPath())
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("open checkpoint: %w", err)
	}
	seq, err = loadCheckpoint(f, info.Size(), db.table)
	if err != nil {
		return 0, false, fmt.Errorf("load checkpoint %s: %w", db.checkpointPath(), err)
	}
	db.ckpt.size = info.Size()
	return seq, true, nil
}

// loadCheckpoint reads a checkpoint of size bytes from r into t, which must
// be empty, decoding the shards on every core. It never allocates more than
// the file holds.
func loadCheckpoint(r io.Reader, size int64, t *Table) (uint64, error) {
	sum := xxhash.New()
	br := bufio.NewReaderSize(io.TeeReader(io.LimitReader(r, size-8), sum), 1<<20)
	hdr := make([]byte, len(checkpointMagic)+12)
	if size < int64(len(hdr))+8 {
		return 0, fmt.Errorf("%w: %d bytes is too short", errCheckpoint, size)
	}
	if _, err := io.ReadFull(br, hdr); err != nil {
		return 0, fmt.Errorf("%w: header: %v", errCheckpoint, err)
	}
	if string(hdr[:len(checkpointMagic)]) != checkpointMagic {
		return 0, fmt.Errorf("%w: unknown format", errCheckpoint)
	}
	seq := binary.LittleEndian.Uint64(hdr[len(checkpointMagic):])
	if n := binary.LittleEndian.Uint32(hdr[len(checkpointMagic)+8:]); n != shardCount {
		return 0, fmt.Errorf("%w: %d shards, want %d", errCheckpoint, n, shardCount)
	}
	left := size - 8 - int64(len(hdr))
	type section struct {
		i   int
		buf []byte
	}
	work := make(chan section)
	var wg sync.WaitGroup
	errs := make([]error, shardCount)
	workers := max(runtime.GOMAXPROCS(0), 1)
	// A section's buffer goes back to the reader once its shard is loaded
	// (the table copies what it keeps): a fresh process's first touch of
	// each page costs a fault, and the sections are as large as the file.
	free := make(chan []byte, workers+1)
	for range workers {
		wg.Go(func() {
			for sec := range work {
				var kept bool
				kept, errs[sec.i] = t.loadShard(sec.i, sec.buf)
				if !kept {
					select {
					case free <- sec.buf:
					default:
					}
				}
			}
		})
	}
	var rerr error
	for i := range shardCount {
		var l [8]byte
		if _, rerr = io.ReadFull(br, l[:]); rerr != nil {
			break
		}
		n := binary.LittleEndian.Uint64(l[:])
		left -= 8
		if n > uint64(left) {
			rerr = fmt.Errorf("shard %d: %d bytes, the file holds %d", i, n, left)
			break
		}
		left -= int64(n)
		var buf []byte
		select {
		case buf = <-free:
		default:
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, rerr = io.ReadFull(br, buf); rerr != nil {
			break
		}
		work <- section{i, buf}
	}
	close(work)
	wg.Wait()
	if rerr != nil {
		return 0, fmt.Errorf("%w: %v", errCheckpoint, rerr)
	}
	if left != 0 {
		return 0, fmt.Errorf("%w: %d bytes after the last shard", errCheckpoint, left)
	}
	var want [8]byte
	if _, err := io.ReadFull(r, want[:]); err != nil {
		return 0, fmt.Errorf("%w: checksum: %v", errCheckpoint, err)
	}
	if sum.Sum64() != binary.LittleEndian.Uint64(want[:]) {
		return 0, fmt.Errorf("%w: checksum mismatch", errCheckpoint)
	}
	for i, err := range errs {
		if err != nil {
			return 0, fmt.Errorf("%w: shard %d: %v", errCheckpoint, i, err)
		}
	}
	return seq, nil
}

// loadShard decodes shard i's section into the table, which is empty. It
// reports whether the table may keep references into b (a large typed
// state, kept as an object); otherwise b may be reused.
func (t *Table) loadShard(i int, b []byte) (kept bool, err error) {
	s := &t.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	// Size the shard first: growing it key by key was a third of loading.
	n := 0
	for rest := b; len(rest) > 0; n++ {
		kl, k := binary.Uvarint(rest)
		if k <= 0 || kl > uint64(len(rest)-k) {
			return false, errors.New("bad key length")
		}
		_, after, err := record.DecodePrefix(rest[k+int(kl):])
		if err != nil {
			return false, fmt.Errorf("entry %d: %w", n, err)
		}
		rest = after
	}
	slots := 16
	for slots*3 < n*4+4 {
		slots *= 2
	}
	s.slots, s.entries = make([]uint64, slots), make([]entry, 0, n)
	for len(b) > 0 {
		kl, n := binary.Uvarint(b)
		if n <= 0 || kl > MaxKeyLen || kl > uint64(len(b)-n) {
			return false, errors.New("bad key length")
		}
		key := b[n : n+int(kl)]
		rec, rest, err := record.DecodePrefix(b[n+int(kl):])
		if err != nil {
			return false, fmt.Errorf("key %q: %w", key, err)
		}
		b = rest
		h := Hash(key)
		if int(h>>(64-shardBits)) != i {
			return false, fmt.Errorf("key %q belongs to shard %d", key, h>>(64-shardBits))
		}
		// A key may be there twice: copied, then removed and written again
		// into an entry the copy had not reached. The later copy is the
		// later state.
		t.set(s, h, key, rec)
		kept = kept || rec.Typed.Large()
	}
	return kept, nil
}

// load fills the table at start-up: from a store of the layout before, its
// keyspace rows, checkpointed at once; otherwise the last checkpoint and
// the log after it.
func (db *DB) load() error {
	start := time.Now()
	first, last := db.log.LogBounds()
	db.seq = last
	db.durable.Store(last)
	if db.log.Legacy() {
		err := db.log.EachLegacyRow(func(key []byte, rec record.Record) error {
			db.table.Set(key, rec)
			return nil
		})
		if err != nil {
			return err
		}
		if err := db.checkpoint(); err != nil {
			return fmt.Errorf("convert the store: %w", err)
		}
		if err := db.log.FinishLegacy(); err != nil {
			return err
		}
		os.Remove(filepath.Join(db.log.Dir(), "index.snapshot")) // the layout before's
		db.lg.Info("store converted: the keyspace now lives in memory, checkpointed", "keys", db.table.KeyCount(), "took", time.Since(start))
		return nil
	}
	seq, ok, err := db.readCheckpoint()
	switch {
	case err != nil && first == 1:
		db.lg.Warn("checkpoint unusable; the log holds every write, replaying it all", "err", err)
		db.table = NewTable()
		db.table.gate = &db.wmu
		seq, ok = 0, false
	case err != nil:
		return fmt.Errorf("%w (and the log starts at %d: move the data directory aside to resync from peers)", err, first)
	}
	switch {
	case seq+1 < first:
		return fmt.Errorf("the checkpoint ends at %d but the log starts at %d: the keyspace cannot be rebuilt (move the data directory aside to resync from peers)", seq, first)
	case seq > last:
		db.lg.Warn("the checkpoint is newer than the log: the log lost entries", "checkpoint", seq, "log", last)
	}
	loaded := time.Since(start)
	replayed := 0
	err = db.log.Replay(seq+1, func(e wal.Entry) error {
		db.replay(e.Key, e.Record)
		replayed++
		return nil
	})
	if err != nil {
		return err
	}
	db.log.SetCheckpoint(seq)
	db.ckpt.seq = seq
	if ok {
		db.ckpt.at = time.Now()
	}
	db.lg.Info("keyspace loaded", "checkpoint", ok, "keys", db.table.KeyCount(), "log-entries-replayed", replayed,
		"checkpoint-took", loaded.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// replay merges a logged record into the table, without logging it again.
func (db *DB) replay(key []byte, rec record.Record) {
	cur := db.table.Peek(key)
	if rec.Typed != nil || cur.Typed != nil {
		cur, _ = db.table.Get(key) // a typed merge needs the whole record
	} else if cur.Exists() && rec.Value.Version.Compare(cur.Value.Version) <= 0 {
		if loses(rec, cur) {
			return
		}
		cur, _ = db.table.Get(key)
	}
	if merged, changed := record.MergeInto(cur, rec); changed {
		db.table.Set(key, merged)
	}
}

// rangeMutable reports whether an entry from lo to hi holds a large typed
// state the writer could still change in place (record.Typed.Mutable).
func (s *shard) rangeMutable(lo, hi int) bool {
	for i := lo; i < hi; i++ {
		if s.entries[i].flags&(flagObj|flagFree) == flagObj && s.objs[uint32(i)].Mutable() {
			return true
		}
	}
	return false
}

// freezeRange freezes the large typed states of the entries from lo to hi;
// the caller holds the writer's lock (Table.gate).
func (s *shard) freezeRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		if s.entries[i].flags&(flagObj|flagFree) == flagObj {
			s.objs[uint32(i)].Freeze()
		}
	}
}
