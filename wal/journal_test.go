package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redmesh/redmesh/record"
)

func always(o *Options) { o.Fsync = FsyncAlways }

func journalKey(i int) string { return fmt.Sprintf("key-%06d", i) }

// commitN commits batches batches of n entries each.
func commitN(t *testing.T, s *Store, batches, n int, val string) {
	t.Helper()
	for range batches {
		_, last := s.LogBounds()
		commit(t, s, n, func(i int) string { return journalKey(int(last) + i) }, val)
	}
}

// checkLog fails unless the log holds entries 1..last as commitN wrote them.
func checkLog(t *testing.T, s *Store, last uint64, val string) {
	t.Helper()
	first, end := s.LogBounds()
	if first != 1 || end != last {
		t.Fatalf("log bounds %d..%d, want 1..%d", first, end, last)
	}
	es, err := s.ReadLog(1, int(last)+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != int(last) {
		t.Fatalf("%d entries read, want %d", len(es), last)
	}
	for i, e := range es {
		seq := uint64(i) + 1
		if e.Seq != seq || string(e.Key) != journalKey(i) || !record.Equal(e.Record, setRec(seq, val)) {
			t.Fatalf("entry %d: %d %q %+v", i, e.Seq, e.Key, e.Record)
		}
	}
}

// copyDir copies a closed store's directory.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from+"/.", to).CombinedOutput(); err != nil {
		t.Fatalf("copy %s: %v: %s", from, err, out)
	}
}

// lostTail builds a store whose Badger holds entries 1..10 and a journal
// holding 11..30: Badger's state from before those commits, as a crash that
// lost what Badger had not synced leaves it, with the journal they went to.
// It returns the directory.
func lostTail(t *testing.T, val string) string {
	t.Helper()
	dir, crashed := t.TempDir(), t.TempDir()
	s := open(t, dir, always)
	commitN(t, s, 2, 5, val)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	copyDir(t, dir, crashed)
	s = open(t, dir, always)
	commitN(t, s, 4, 5, val)
	journal, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(crashed, journalName), journal, 0o644); err != nil {
		t.Fatal(err)
	}
	return crashed
}

// Under fsync always a commit is in the journal, synced, before it returns;
// a restart writes what Badger lost back from the journal, and removes it.
func TestJournalRestoresWhatBadgerLost(t *testing.T) {
	dir := lostTail(t, "v")
	s := open(t, dir, nil)
	defer s.Close()
	checkLog(t, s, 30, "v")
	if _, err := os.Stat(filepath.Join(dir, journalName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("journal after the restart: %v, want it removed", err)
	}
}

// A record cut short at the journal's end (a crash during an append none of
// whose writers was answered) is dropped; the whole ones before it are kept.
func TestJournalDropsATornRecord(t *testing.T) {
	dir := lostTail(t, "v")
	path := filepath.Join(dir, journalName)
	journal, _ := os.ReadFile(path)
	// A sixth batch's record, cut in its middle, after the five whole ones.
	var b Batch
	b.Add(31, []byte(journalKey(30)), setRec(31, "v"), [3]record.Version{}, [3]record.Version{})
	blk := b.block(0, b.Entries[0].Time)
	rec := append(appendHeader(nil, 31, blk), blk...)
	torn := append(bytes.Clone(journal), rec[:len(rec)-3]...)
	if err := os.WriteFile(path, torn, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, nil)
	defer s.Close()
	checkLog(t, s, 30, "v")
}

// A journal whose blocks Badger already holds changes nothing.
func TestJournalSkipsWhatBadgerHolds(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, always)
	commitN(t, s, 3, 5, "v")
	journal, _ := os.ReadFile(filepath.Join(dir, journalName))
	if len(journal) == 0 {
		t.Fatal("empty journal after three commits under fsync always")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, journalName), journal, 0o644)
	s = open(t, dir, nil)
	defer s.Close()
	checkLog(t, s, 15, "v")
}

// A journal that starts past the end of Badger's log means acknowledged
// writes are in neither: the store refuses to open rather than leave a hole.
func TestJournalGapRefusesToOpen(t *testing.T) {
	dir := lostTail(t, "v")
	path := filepath.Join(dir, journalName)
	journal, _ := os.ReadFile(path)
	// Skip the first record: the journal now starts at entry 16.
	n := int(journal[0]) | int(journal[1])<<8 | int(journal[2])<<16 | int(journal[3])<<24
	os.WriteFile(path, journal[journalHeader+n:], 0o644)
	if _, err := Open(Options{Dir: dir, Logger: quiet}); !errors.Is(err, errJournalGap) {
		t.Fatalf("Open = %v, want %v", err, errJournalGap)
	}
}

// The journal is emptied once it passes its limit, Badger synced first, so
// it stays bounded; every entry survives a restart.
func TestJournalStaysBounded(t *testing.T) {
	const limit = 64 << 10
	dir := t.TempDir()
	s := open(t, dir, func(o *Options) { always(o); o.journalLimit = limit })
	val := strings.Repeat("x", 1000)
	for range 200 {
		commitN(t, s, 1, 4, val)
		if s.journal.size > limit+8<<10 {
			t.Fatalf("journal at %d bytes, limit %d", s.journal.size, limit)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, nil)
	defer s.Close()
	checkLog(t, s, 800, val)
}

// A commit whose journal write fails is answered with the error and leaves
// the journal as it was: the retried commit follows whole records.
func TestJournalFailedAppendCutsBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, always)
	commitN(t, s, 1, 5, "v")
	before := s.journal.size
	f := s.journal.f
	ro, err := os.Open(f.Name()) // writes to a read-only file fail
	if err != nil {
		t.Fatal(err)
	}
	s.journal.f = ro
	var b Batch
	b.Add(6, []byte(journalKey(5)), setRec(6, "v"), [3]record.Version{}, [3]record.Version{})
	if err := s.Commit(&b); err == nil {
		t.Fatal("commit with the journal unwritable succeeded")
	}
	ro.Close()
	s.journal.f = f
	if s.journal.size != before {
		t.Fatalf("journal at %d after the failed append, was %d", s.journal.size, before)
	}
	if err := s.Commit(&b); err != nil {
		t.Fatal(err)
	}
	s.Advance(&b)
	journal, _ := os.ReadFile(f.Name())
	var seqs []uint64
	if _, err := readJournal(bytes.NewReader(journal), int64(len(journal)), func(r journalRecord) error {
		seqs = append(seqs, r.seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs) != "[1 6]" {
		t.Fatalf("journal records start at %v, want [1 6]", seqs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Any bytes in place of the journal read as whole records up to the first
// that is not, without panicking or allocating past the file's size.
func FuzzReadJournal(f *testing.F) {
	var b Batch
	b.Add(1, []byte("k"), setRec(1, "v"), [3]record.Version{}, [3]record.Version{})
	blk := b.block(0, b.Entries[0].Time)
	whole := append(appendHeader(nil, 1, blk), blk...)
	f.Add(whole)
	f.Add(whole[:len(whole)-1])
	f.Add(append(bytes.Clone(whole), whole...))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		end, err := readJournal(bytes.NewReader(data), int64(len(data)), func(r journalRecord) error {
			if len(r.block) > len(data) {
				t.Fatalf("a block of %d bytes from %d", len(r.block), len(data))
			}
			return nil
		})
		if err != nil || end > int64(len(data)) {
			t.Fatalf("end %d of %d, %v", end, len(data), err)
		}
	})
}
