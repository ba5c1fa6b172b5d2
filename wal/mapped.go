package wal

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Badger reads and writes its files through shared memory mappings, so the
// log written since start-up stays in the process's resident set as file
// pages (after loading a million keys, 158 MiB beside a 195 MiB keyspace)
// until the kernel needs the memory. They are page cache, not the node's
// memory: a file Redis appends to with write(2) is not in its RSS either.
// releaseMapped drops the data directory's mapped pages from the resident
// set (madvise MADV_DONTNEED, which for a shared file mapping keeps the data
// in the page cache and in the file); the next access maps them again.
func (s *Store) releaseMapped() {
	dir, err := filepath.Abs(s.opts.Dir)
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return // not Linux: nothing to do
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m, ok := parseMapping(sc.Text())
		if !ok || !strings.HasPrefix(m.path, dir+"/") || !strings.HasSuffix(m.path, ".vlog") && !strings.HasSuffix(m.path, ".sst") {
			continue
		}
		// A private writable mapping may hold changes that exist nowhere
		// else: leave it alone (Badger maps its files shared).
		if m.perms[1] == 'w' && m.perms[3] != 's' {
			continue
		}
		m.release()
	}
}

// mapping is a line of /proc/self/maps.
type mapping struct {
	lo, hi uint64
	perms  string // rwxp or rwxs
	path   string // "" for an anonymous mapping
}

// parseMapping parses "start-end perms offset dev inode [path]".
func parseMapping(line string) (mapping, bool) {
	fields := strings.Fields(line)
	if len(fields) < 5 || len(fields[1]) < 4 {
		return mapping{}, false
	}
	start, end, ok := strings.Cut(fields[0], "-")
	if !ok {
		return mapping{}, false
	}
	lo, err1 := strconv.ParseUint(start, 16, 64)
	hi, err2 := strconv.ParseUint(end, 16, 64)
	if err1 != nil || err2 != nil || hi <= lo {
		return mapping{}, false
	}
	m := mapping{lo: lo, hi: hi, perms: fields[1]}
	if len(fields) >= 6 {
		m.path = fields[5]
	}
	return m, true
}

// release drops the mapping's pages from the resident set.
func (m mapping) release() {
	// A raw address from the kernel's own list: no Go pointer to it.
	unix.Syscall(unix.SYS_MADVISE, uintptr(m.lo), uintptr(m.hi-m.lo), unix.MADV_DONTNEED)
}
