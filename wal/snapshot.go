package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// Index snapshots make start-up fast, after a crash too. Rebuilding the
// version index means reading every keyspace row (3 s for 1M keys); loading
// a snapshot is one sequential read, after which only the log entries newer
// than the snapshot are replayed: each carries its key's whole record minus
// the value's data, which is exactly what the index holds.
//
// A snapshot is taken while the writer goes on, shard by shard, so it may
// already hold some changes newer than its sequence number S (read before
// the first shard is copied). That is harmless: replaying from S+1 sets every
// key changed since to its logged state, in log order, and a key not changed
// since was copied as it is. What must never happen is a snapshot holding a
// change the store then loses in a crash (fsync everysec or no): so the store
// is synced after the copy and before the snapshot replaces the previous one.
//
// The snapshot also records the log's size at S, and the bytes truncation
// had freed by then (meta log-freed, which each truncation moves in its own
// transaction): the log's size at start-up is then that size, less what was
// truncated since, plus the entries replayed, with no pass over the whole log.
//
// The file: magic, the log mark (sequence number, the log's size or -1 when
// it was not known yet, the bytes freed), shard count; per shard the entry count,
// the arena length, the expiry count, the entries, the arena and the expiry
// registers; an xxhash of everything before it. Little-endian. A snapshot
// that is missing, damaged, from an unknown format or older than the log's
// oldest entry is ignored, and the index is rebuilt from the keyspace.

const (
	snapshotName  = "index.snapshot"
	snapshotMagic = "redmesh-index-2\n"
	ixEntryBytes  = 24
	ixExpiryBytes = 28
	// A snapshot is taken when this many log entries, or this fraction of
	// the key count if larger, were added since the last one...
	snapshotMinEntries = 10_000
	snapshotKeyDivisor = 8
	// ...or, if anything at all changed, after this long...
	snapshotMaxAge = 5 * time.Minute
	// ...or as soon as writes pause (the check, every second, finds no
	// entry added since the previous one) after at least this fraction of
	// the key count changed, so that a node that crashes after a burst
	// replays little of it, while a trickle of writes with pauses does not
	// copy a large index again and again.
	snapshotIdleKeyDivisor = 64
)

var errSnapshot = errors.New("bad index snapshot")

func (s *Store) snapshotPath() string { return filepath.Join(s.opts.Dir, snapshotName) }

// snapshotDue reports whether the index changed enough since the last
// snapshot to write a new one.
func (s *Store) snapshotDue(now time.Time) bool {
	s.logMu.Lock()
	last := s.lastSeq
	s.logMu.Unlock()
	idle := last == s.snapCheckSeq
	s.snapCheckSeq = last
	since := last - s.snapSeq
	if since == 0 {
		return false
	}
	keys := uint64(s.keys.Load())
	return since >= max(snapshotMinEntries, keys/snapshotKeyDivisor) ||
		idle && since >= keys/snapshotIdleKeyDivisor ||
		now.Sub(s.snapTime) >= snapshotMaxAge
}

// writeSnapshot writes the index to its file, replacing the previous one once
// the new one and every change it holds are durable.
func (s *Store) writeSnapshot() error {
	start := time.Now()
	s.logMu.Lock()
	mark := logMark{seq: s.lastSeq, bytes: s.logBytes, freed: s.logFreed}
	s.logMu.Unlock()
	if !isClosed(s.logSized) {
		mark.bytes = -1 // still being counted
	}
	seq := mark.seq
	buf := encodeSnapshot(s.index, mark)
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync before index snapshot: %w", err)
	}
	tmp := s.snapshotPath() + ".tmp"
	if err := writeFileSync(tmp, buf); err != nil {
		return fmt.Errorf("write index snapshot: %w", err)
	}
	if err := os.Rename(tmp, s.snapshotPath()); err != nil {
		return fmt.Errorf("install index snapshot: %w", err)
	}
	if err := syncDir(s.opts.Dir); err != nil {
		return fmt.Errorf("install index snapshot: %w", err)
	}
	s.snapSeq, s.snapTime = seq, time.Now()
	s.log.Debug("index snapshot written", "seq", seq, "bytes", len(buf), "took", time.Since(start))
	return nil
}

// logMark is where the log stood when a snapshot was taken.
type logMark struct {
	seq   uint64 // the last entry
	bytes int64  // the size of the retained entries up to seq; -1: unknown
	freed uint64 // bytes of entries truncated before then, ever
}

func encodeSnapshot(ix *index, mark logMark) []byte {
	buf := make([]byte, 0, 1<<20)
	buf = append(buf, snapshotMagic...)
	buf = binary.LittleEndian.AppendUint64(buf, mark.seq)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(mark.bytes))
	buf = binary.LittleEndian.AppendUint64(buf, mark.freed)
	buf = binary.LittleEndian.AppendUint32(buf, indexShards)
	for i := range ix.shards {
		buf = ix.shards[i].appendTo(buf)
	}
	return binary.LittleEndian.AppendUint64(buf, xxhash.Sum64(buf))
}

// appendTo encodes the shard, holding its read lock: the writer waits for
// one shard at a time, never for the whole index.
func (sh *indexShard) appendTo(b []byte) []byte {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sh.entries)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sh.keys)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sh.expiry)))
	for _, e := range sh.entries {
		b = appendVersion(b, e.value)
		b = binary.LittleEndian.AppendUint32(b, e.off)
		b = binary.LittleEndian.AppendUint16(b, e.klen)
		b = append(b, e.flags, byte(e.kind))
	}
	b = append(b, sh.keys...)
	for n, x := range sh.expiry {
		b = binary.LittleEndian.AppendUint32(b, n)
		b = appendVersion(b, x.version)
		b = binary.LittleEndian.AppendUint64(b, uint64(x.at))
	}
	return b
}

func appendVersion(b []byte, v record.Version) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(v.TS))
	return binary.LittleEndian.AppendUint64(b, uint64(v.Node))
}

func readVersion(b []byte) record.Version {
	return record.Version{
		TS:   hlc.Timestamp(binary.LittleEndian.Uint64(b)),
		Node: record.NodeID(binary.LittleEndian.Uint64(b[8:])),
	}
}

// decodeSnapshot checks and decodes a snapshot file's bytes.
func decodeSnapshot(b []byte) (*index, logMark, error) {
	if len(b) < len(snapshotMagic)+3*8+4+8 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, logMark{}, fmt.Errorf("%w: unknown format", errSnapshot)
	}
	body, sum := b[:len(b)-8], binary.LittleEndian.Uint64(b[len(b)-8:])
	if xxhash.Sum64(body) != sum {
		return nil, logMark{}, fmt.Errorf("%w: checksum mismatch", errSnapshot)
	}
	b = body[len(snapshotMagic):]
	mark := logMark{
		seq:   binary.LittleEndian.Uint64(b),
		bytes: int64(binary.LittleEndian.Uint64(b[8:])),
		freed: binary.LittleEndian.Uint64(b[16:]),
	}
	if mark.bytes < -1 {
		return nil, logMark{}, fmt.Errorf("%w: log size %d", errSnapshot, mark.bytes)
	}
	if shards := binary.LittleEndian.Uint32(b[24:]); shards != indexShards {
		return nil, logMark{}, fmt.Errorf("%w: %d shards, want %d", errSnapshot, shards, indexShards)
	}
	b = b[28:]
	// Find each shard's bytes, then decode the shards on every core: most
	// of the work is hashing keys to place them again.
	var parts [indexShards][]byte
	for i := range parts {
		n, err := shardLen(b)
		if err != nil {
			return nil, logMark{}, fmt.Errorf("%w: shard %d: %v", errSnapshot, i, err)
		}
		parts[i], b = b[:n], b[n:]
	}
	if len(b) != 0 {
		return nil, logMark{}, fmt.Errorf("%w: %d trailing bytes", errSnapshot, len(b))
	}
	ix := &index{}
	var errs [indexShards]error
	var wg sync.WaitGroup
	next := make(chan int, indexShards)
	for i := range indexShards {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				errs[i] = ix.shards[i].readFrom(parts[i], i)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, logMark{}, fmt.Errorf("%w: shard %d: %v", errSnapshot, i, err)
		}
	}
	return ix, mark, nil
}

// shardLen is the length of the encoded shard at the start of b.
func shardLen(b []byte) (int, error) {
	if len(b) < 12 {
		return 0, errors.New("truncated header")
	}
	n := 12 + uint64(binary.LittleEndian.Uint32(b))*ixEntryBytes +
		uint64(binary.LittleEndian.Uint32(b[4:])) +
		uint64(binary.LittleEndian.Uint32(b[8:]))*ixExpiryBytes
	if n > uint64(len(b)) {
		return 0, errors.New("counts exceed the file")
	}
	return int(n), nil
}

// readFrom decodes shard number i from exactly its bytes, as shardLen
// measured them.
func (sh *indexShard) readFrom(b []byte, i int) error {
	n := uint64(binary.LittleEndian.Uint32(b))
	nkeys := uint64(binary.LittleEndian.Uint32(b[4:]))
	nexp := uint64(binary.LittleEndian.Uint32(b[8:]))
	b = b[12:]
	slots := 16
	for slots*3 < int(n)*4+4 {
		slots *= 2
	}
	sh.slots = make([]uint64, slots)
	sh.entries = make([]ixEntry, n)
	sh.keys = append([]byte(nil), b[n*ixEntryBytes:n*ixEntryBytes+nkeys]...)
	sh.expiry = make(map[uint32]ixExpiry, nexp)
	for j := range sh.entries {
		p := b[j*ixEntryBytes:]
		e := ixEntry{
			value: readVersion(p),
			off:   binary.LittleEndian.Uint32(p[16:]),
			klen:  binary.LittleEndian.Uint16(p[20:]),
			flags: p[22],
			kind:  record.Kind(p[23]),
		}
		if uint64(e.off)+uint64(e.klen) > nkeys {
			return fmt.Errorf("entry %d: key past the arena", j)
		}
		sh.entries[j] = e
		h := xxhash.Sum64(sh.key(&e))
		if int(h>>58) != i {
			return fmt.Errorf("entry %d: key belongs to shard %d", j, h>>58)
		}
		dup, k := sh.find(string(sh.key(&e)), uint32(h))
		if dup >= 0 {
			return fmt.Errorf("entries %d and %d hold the same key", dup, j)
		}
		sh.slots[k] = uint64(uint32(h))<<32 | uint64(j+1)
		g := groupOf(h)
		sh.entries[j].next, sh.groups[g] = sh.groups[g], uint32(j+1)
	}
	x := b[n*ixEntryBytes+nkeys:]
	for range nexp {
		j := binary.LittleEndian.Uint32(x)
		if uint64(j) >= n || sh.entries[j].flags&(flagExpiry|flagExpiryAsValue) != flagExpiry {
			return fmt.Errorf("expiry register for entry %d", j)
		}
		sh.expiry[j] = ixExpiry{version: readVersion(x[4:]), at: int64(binary.LittleEndian.Uint64(x[20:]))}
		x = x[ixExpiryBytes:]
	}
	if uint64(len(sh.expiry)) != nexp {
		return errors.New("repeated expiry register")
	}
	for j := range sh.entries {
		if sh.entries[j].flags&flagExpiry != 0 {
			if _, ok := sh.expiry[uint32(j)]; !ok {
				return fmt.Errorf("entry %d: expiry register missing", j)
			}
		}
	}
	return nil
}

// loadIndex fills the index: from the snapshot and the log entries after it
// if it can, else from every keyspace row. It then counts keys and deadlines.
func (s *Store) loadIndex() error {
	start := time.Now()
	how := "keyspace"
	replayed := 0
	var ix *index
	var mark logMark
	b, err := os.ReadFile(s.snapshotPath())
	if err == nil {
		ix, mark, err = decodeSnapshot(b)
	}
	seq := mark.seq
	switch {
	case err == nil && seq > s.lastSeq:
		s.log.Warn("index snapshot is newer than the log; rebuilding the index", "snapshot", seq, "log", s.lastSeq)
	case err == nil && seq+1 < s.firstSeq:
		s.log.Info("index snapshot is older than the log; rebuilding the index", "snapshot", seq, "log-start", s.firstSeq)
	case err == nil:
		s.index = ix
		var bytes int64
		if replayed, bytes, err = s.replayLog(seq); err != nil {
			return err
		}
		how = "snapshot"
		s.snapSeq = seq
		// Truncation only ever freed entries up to seq here (else the
		// snapshot would be older than the log).
		if size := mark.bytes - int64(s.logFreed-mark.freed) + bytes; mark.bytes >= 0 && s.logFreed >= mark.freed && size >= 0 {
			s.logBytes = size
			close(s.logSized)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		s.log.Warn("index snapshot unusable; rebuilding the index", "err", err)
	}
	if how == "keyspace" {
		if err := s.scanKeyspace(); err != nil {
			return err
		}
	}
	s.snapTime = time.Now()
	var n, x int64
	s.index.each(func(_ []byte, m meta) {
		r := m.record()
		if r.Exists() {
			n++
		}
		if deadlineOf(r) != 0 {
			x++
		}
	})
	s.keys.Store(n)
	s.expires.Store(x)
	s.log.Info("version index loaded", "from", how, "keys", n, "log-entries-replayed", replayed, "took", time.Since(start))
	return nil
}

// replayLog sets the index from every log entry after seq, and returns how
// many there were and the size of the blocks that hold only such entries
// (seq is the end of a batch, so of a block: the snapshot's log size counts
// the blocks up to it).
func (s *Store) replayLog(seq uint64) (n int, size int64, err error) {
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixLog}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		var block []Entry
		for seekBlock(txn, it, seq+1); it.Valid(); it.Next() {
			item := it.Item()
			first := blockSeq(item.Key())
			err := item.Value(func(b []byte) (err error) {
				// The entries alias b, which is Badger's only until
				// this function returns.
				if block, err = decodeBlock(first, b, block[:0]); err != nil {
					return err
				}
				for _, e := range block {
					if e.Seq > seq {
						s.index.set(string(e.Key), metaOf(e.Record))
						n++
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if first > seq {
				size += blockSize(item)
			}
		}
		return nil
	})
	if err != nil {
		return n, size, fmt.Errorf("replay the log into the index: %w", err)
	}
	return n, size, nil
}

// scanKeyspace sets the index from every keyspace row.
func (s *Store) scanKeyspace() error {
	return s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixKey}, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			rec, err := itemRecord(it.Item()) // only metadata is kept
			if err != nil {
				return fmt.Errorf("row %q: %w", it.Item().Key(), err)
			}
			s.index.set(string(it.Item().Key()[5:]), metaOf(rec))
		}
		return nil
	})
}

func writeFileSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
