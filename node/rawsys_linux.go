package node

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's system calls that cannot block (reads and writes of
// non-blocking sockets and of its eventfd, epoll_wait without a timeout,
// epoll_ctl) are made without entering the runtime's system-call state.
// On one thread (GOMAXPROCS 1, node/procs.go) the loop parks in the
// runtime's poller between rounds, the process is idle and the runtime's
// monitor thread (sysmon) sleeps; the first system call entered after
// that wakes it, and it then polls every 20 µs until it finds the process
// idle again: at -P 1, where the loop idles between most rounds, a thread
// woken and put to sleep again for nearly every round (bench/RESULTS.md).
// A call that cannot block gives the runtime nothing to take back.

func rawRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawEpollPoll returns the events ready in ep without waiting.
func rawEpollPoll(ep int, events []unix.EpollEvent) (int, error) {
	var p unsafe.Pointer
	if len(events) > 0 {
		p = unsafe.Pointer(&events[0])
	}
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(p), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawEpollCtl(ep, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(ep), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Pointer(&p[0])
}
