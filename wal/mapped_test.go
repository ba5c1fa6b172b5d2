package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rssFile reads the process's resident file pages, in KiB.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	t.Skip("no RssFile")
	return 0
}

// The log's mapped pages leave the resident set, and the log still reads
// back whole.
func TestReleaseMappedKeepsTheLog(t *testing.T) {
	s := open(t, t.TempDir(), func(o *Options) { o.keepMapped, o.RetentionInterval = true, time.Hour })
	defer s.Close()
	val := strings.Repeat("v", 1000)
	for range 40 { // about 40 MiB of log
		commit(t, s, 1000, func(i int) string { return fmt.Sprint("k", i) }, val)
	}
	before := rssFile(t)
	s.releaseMapped()
	after := rssFile(t)
	t.Logf("resident file pages: %d MiB before, %d MiB after", before>>10, after>>10)
	if before-after < 30<<10 {
		t.Fatalf("released %d KiB of about 40 MiB of mapped log", before-after)
	}
	_, last := s.LogBounds()
	es, err := s.ReadLog(1, int(last), 1<<30)
	if err != nil || uint64(len(es)) != last || string(es[len(es)-1].Record.Value.Data) != val {
		t.Fatalf("reading the log back: %d entries, %v", len(es), err)
	}
	commit(t, s, 10, func(i int) string { return fmt.Sprint("after", i) }, val)
}

// A private read-only mapping of a file leaves the resident set and reads
// back the same; a private page the process wrote, though its mapping is
// read-only now, keeps what was written.
func TestReleaseFilePages(t *testing.T) {
	const size = 16 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ro, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(ro)
	written, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(written)
	written[0] = data[0] + 1
	if err := unix.Mprotect(written, unix.PROT_READ); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ro, data) {
		t.Fatal("the mapping reads other bytes than the file's")
	}
	before := rssFile(t)
	ReleaseFilePages()
	after := rssFile(t)
	t.Logf("resident file pages: %d MiB before, %d MiB after", before>>10, after>>10)
	if before-after < (size>>10)*3/4 {
		t.Fatalf("released %d KiB of a %d KiB mapping read whole", before-after, size>>10)
	}
	if !bytes.Equal(ro, data) {
		t.Fatal("the mapping reads other bytes after the release")
	}
	if written[0] != data[0]+1 {
		t.Fatalf("a written private page read %d after the release, was written %d", written[0], data[0]+1)
	}
}
