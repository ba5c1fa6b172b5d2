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
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], dir+"/") || !strings.HasSuffix(fields[5], ".vlog") && !strings.HasSuffix(fields[5], ".sst") {
			continue
		}
		// A private writable mapping may hold changes that exist nowhere
		// else: leave it alone (Badger maps its files shared).
		if perms := fields[1]; len(perms) < 4 || perms[1] == 'w' && perms[3] != 's' {
			continue
		}
		start, end, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || hi <= lo {
			continue
		}
		// A raw address from the kernel's own list: no Go pointer to it.
		unix.Syscall(unix.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), unix.MADV_DONTNEED)
	}
}
