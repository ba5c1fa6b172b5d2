package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/redmesh/redmesh/record"
	"golang.org/x/sys/unix"
)

// A flush that fails inside Badger's DropPrefix (the file system has no
// room for the table) leaves Badger's memtables inconsistent: a second
// DropPrefix panicked. The store stops reclaiming, fails its commits with
// ErrNeedsRestart, and closes without a crash; started again, it holds
// every entry committed. The file system runs out of
// inodes rather than bytes, so that the free-space check passes and the
// flush itself fails. It mounts a small tmpfs, so it needs root, as CI has.
func TestFailedReclaimFlushFailsTheStore(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256m,nr_inodes=64"); err != nil {
		t.Skipf("cannot mount a tmpfs (not root?): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	s := open(t, filepath.Join(dir, "d"), func(o *Options) {
		o.RetentionInterval = 1 << 62
		o.valueLogFileSize = 1 << 20
	})
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	commit(t, s, 100, func(i int) string { return fmt.Sprint("k", i) }, "v")
	// Every inode taken: Badger cannot create the table a flush writes.
	for i := 0; ; i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint("filler", i)))
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if err := s.checkSpace(0); err != nil {
		t.Fatalf("the free-space check fails (%v): the flush would not be tried", err)
	}
	reclaim := func() {
		s.logMu.Lock()
		s.truncated = s.db.Opts().ValueLogFileSize // as if retention had dropped a file's worth
		s.logMu.Unlock()
		s.reclaimTruncated()
	}
	reclaim() // its flush fails
	for i := 0; ; i++ {
		if os.Remove(filepath.Join(dir, fmt.Sprint("filler", i))) != nil {
			break
		}
	}
	reclaim() // with room again: Badger's second DropPrefix panicked
	_, last := s.LogBounds()
	var b Batch
	b.Add(last+1, []byte("k"), setRec(last+1, "v"), [3]record.Version{}, [3]record.Version{})
	if err := s.Commit(&b); !errors.Is(err, ErrNeedsRestart) {
		t.Fatalf("commit after the reclaim's flush failed: %v, want ErrNeedsRestart", err)
	}
	if err := s.PutMetaSync("m", []byte("x")); !errors.Is(err, ErrNeedsRestart) {
		t.Fatalf("meta after the reclaim's flush failed: %v, want ErrNeedsRestart", err)
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Fatalf("close after the reclaim's flush failed: %v", err)
	}

	// Restarted, the store holds every entry committed, and takes more.
	s = open(t, filepath.Join(dir, "d"), nil)
	defer s.Close()
	if first, last := s.LogBounds(); first != 1 || last != 100 {
		t.Fatalf("log bounds after a restart: %d to %d, want 1 to 100", first, last)
	}
	commit(t, s, 1, func(int) string { return "k" }, "v")
}
