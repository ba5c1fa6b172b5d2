package wal

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
