package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The journal makes a commit durable under --fsync always with one
// fdatasync. Badger's Sync flushes two files, its memtable's write-ahead
// file and its value log, each a flush of the device's cache; a commit
// then waited for two. Under always each batch is written to Badger
// unsynced and its blocks appended to the journal, a file of its own,
// which one fdatasync makes durable. Once the journal passes journalLimit,
// Badger is synced and the journal emptied. At start-up the blocks the
// journal holds past the end of Badger's log are written to Badger again:
// Badger may have lost its unsynced tail, the journal has not.
//
// A record: the block's length (4 bytes), a CRC-32C of the rest (4 bytes),
// the block's first sequence number (8 bytes), then the block as the log
// stores it (log.go), little-endian. Only the last record can be cut short
// (a crash during an append none of whose writers was answered); reading
// stops there.
const (
	journalName   = "always.journal"
	journalHeader = 16
	journalLimit  = 32 << 20
	// journalGather is how much of a batch is copied into one buffer and
	// written with one call; a larger batch is written a block at a time.
	journalGather = 256 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journal is the open journal file; the committer alone writes it.
type journal struct {
	f    *os.File
	size int64 // where the next record goes
	buf  []byte
}

// openJournal opens the journal in dir, creating it; the directory is
// synced, so that a record synced into the file is not lost with the
// file's name.
func openJournal(dir string) (*journal, error) {
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the journal: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = SyncDir(dir)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open the journal: %w", err)
	}
	return &journal{f: f, size: fi.Size()}, nil
}

// SyncDir makes the names of the files created in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// appendHeader appends a record's header for blk, which starts at seq.
func appendHeader(dst []byte, seq uint64, blk []byte) []byte {
	var h [journalHeader]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(blk)))
	binary.LittleEndian.PutUint64(h[8:], seq)
	crc := crc32.Update(crc32.Checksum(h[8:], castagnoli), castagnoli, blk)
	binary.LittleEndian.PutUint32(h[4:], crc)
	return append(dst, h[:]...)
}

// append writes a committed batch's blocks and syncs them. On failure the
// journal is cut back to where it was, so that a retried commit's records
// follow whole ones.
func (j *journal) append(b *Batch) error {
	at := j.size
	err := j.write(b)
	if err == nil {
		err = unix.Fdatasync(int(j.f.Fd()))
	}
	if err != nil {
		if terr := j.f.Truncate(at); terr != nil {
			return fmt.Errorf("append to the journal: %w (and cutting it back: %v)", err, terr)
		}
		j.size = at
		return fmt.Errorf("append to the journal: %w", err)
	}
	return nil
}

func (j *journal) write(b *Batch) error {
	if len(b.buf)+journalHeader*len(b.blocks) <= journalGather {
		j.buf = j.buf[:0]
		for i := range b.blocks {
			blk := b.storedBlock(i)
			j.buf = appendHeader(j.buf, b.Entries[b.first[i]].Seq, blk)
			j.buf = append(j.buf, blk...)
		}
		return j.writeAt(j.buf)
	}
	for i := range b.blocks {
		blk := b.storedBlock(i)
		if err := j.writeAt(appendHeader(nil, b.Entries[b.first[i]].Seq, blk)); err != nil {
			return err
		}
		if err := j.writeAt(blk); err != nil {
			return err
		}
	}
	return nil
}

func (j *journal) writeAt(p []byte) error {
	n, err := j.f.WriteAt(p, j.size)
	j.size += int64(n)
	return err
}

// empty drops every record: Badger holds them, synced.
func (j *journal) empty() error {
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("empty the journal: %w", err)
	}
	j.size = 0
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// journalRecord is one block read back from the journal.
type journalRecord struct {
	seq   uint64
	block []byte
}

// readJournal calls fn for each whole record of r, a journal of size bytes,
// in order, and returns where the whole records end. A record's block is
// valid only during the call. Its length is checked against what is left of
// the file before anything is allocated.
func readJournal(r io.ReaderAt, size int64, fn func(journalRecord) error) (int64, error) {
	var (
		at  int64
		h   [journalHeader]byte
		buf []byte
	)
	for at+journalHeader <= size {
		if _, err := r.ReadAt(h[:], at); err != nil {
			return at, fmt.Errorf("read the journal at %d: %w", at, err)
		}
		n := int64(binary.LittleEndian.Uint32(h[:]))
		if n < blockHeader || n > size-at-journalHeader {
			break
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		blk := buf[:n]
		if _, err := r.ReadAt(blk, at+journalHeader); err != nil {
			return at, fmt.Errorf("read the journal at %d: %w", at, err)
		}
		crc := crc32.Update(crc32.Checksum(h[8:], castagnoli), castagnoli, blk)
		if crc != binary.LittleEndian.Uint32(h[4:]) {
			break
		}
		if err := fn(journalRecord{seq: binary.LittleEndian.Uint64(h[8:]), block: blk}); err != nil {
			return at, err
		}
		at += journalHeader + n
	}
	return at, nil
}

// errJournalGap: the journal starts past the end of Badger's log, so writes
// were acknowledged that neither holds.
var errJournalGap = errors.New("the journal starts past the end of the log")

// replayJournal writes the journal's blocks past the end of the log to
// Badger, syncs it and removes the journal. It runs in Open, before
// anything else writes.
func (s *Store) replayJournal() error {
	path := filepath.Join(s.opts.Dir, journalName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open the journal: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open the journal: %w", err)
	}
	replayed := 0
	next := s.lastSeq + 1
	end, err := readJournal(f, fi.Size(), func(r journalRecord) error {
		count, _, parts, err := blockMeta(r.block)
		if err != nil {
			return fmt.Errorf("journal block %d: %w", r.seq, err)
		}
		if parts != (len(r.block)+maxRow-1)/maxRow {
			return fmt.Errorf("journal block %d: %d rows claimed for %d bytes", r.seq, parts, len(r.block))
		}
		if r.seq+uint64(count) <= next {
			return nil // Badger has it
		}
		if r.seq != next {
			return fmt.Errorf("journal block %d, log ends at %d: %w", r.seq, next-1, errJournalGap)
		}
		txn := s.writeTxn()
		defer txn.Discard()
		if err := setBlock(txn.Set, r.seq, r.block); err != nil {
			return fmt.Errorf("journal block %d: %w", r.seq, err)
		}
		if err := s.commitTxn(txn); err != nil {
			return fmt.Errorf("journal block %d: %w", r.seq, err)
		}
		next = r.seq + uint64(count)
		replayed++
		return nil
	})
	if err != nil {
		return err
	}
	if end < fi.Size() {
		s.log.Warn("dropping the end of the journal: a record cut short by a crash", "bytes", fi.Size()-end)
	}
	if replayed > 0 {
		s.log.Info("wrote the journal's blocks to the log", "blocks", replayed, "through", next-1)
		s.logBytes = 0
		if err := s.loadBounds(); err != nil {
			return err
		}
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync the journal's blocks: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the journal: %w", err)
	}
	return nil
}
