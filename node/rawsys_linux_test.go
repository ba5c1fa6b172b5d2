package node

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLoopLeavesTheRuntimesMonitorAsleep: on one thread, a node answering
// another process's requests one at a time, idle between them, does not
// wake the runtime's monitor thread (sysmon) for each: the loop's system
// calls that cannot block do not enter the runtime's system-call state.
// Entered, a request's first call woke the monitor from its sleep, and it
// slept 20 µs at least once more before it found the process idle again:
// two voluntary switches of that thread a request or more.
func TestLoopLeavesTheRuntimesMonitorAsleep(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	_, c := openNode(t, t.TempDir())
	const requests = 1000
	// The client is another process: this one's own system calls would
	// wake the monitor.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOneRequestAtATime$")
	cmd.Env = append(os.Environ(), "REDMESH_TEST_CLIENT_OF="+c.Options().Addr, fmt.Sprint("REDMESH_TEST_REQUESTS=", requests))
	cmd.Stderr = os.Stderr
	monitor := monitorThread(t)
	before := voluntarySwitches(t, monitor)
	if err := cmd.Run(); err != nil {
		t.Fatalf("the client: %v", err)
	}
	switches := voluntarySwitches(t, monitor) - before
	if per := float64(switches) / requests; per >= 0.5 {
		t.Fatalf("%d voluntary thread switches over %d requests, %.2f a request", switches, requests, per)
	}
}

// TestHelperOneRequestAtATime is the client of
// TestLoopLeavesTheRuntimesMonitorAsleep, run in a process of its own.
func TestHelperOneRequestAtATime(t *testing.T) {
	addr := os.Getenv("REDMESH_TEST_CLIENT_OF")
	if addr == "" {
		t.Skip("the client of another test")
	}
	var requests int
	fmt.Sscan(os.Getenv("REDMESH_TEST_REQUESTS"), &requests)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rd := bufio.NewReader(nc)
	for range requests {
		if _, err := nc.Write([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")); err != nil {
			t.Fatal(err)
		}
		if line, err := rd.ReadString('\n'); err != nil || line != "$-1\r\n" {
			t.Fatalf("GET k: %q, %v", line, err)
		}
		// Long enough for the node to go idle, the monitor with it.
		time.Sleep(200 * time.Microsecond)
	}
}

// monitorThread is the runtime's monitor thread: the first the runtime
// starts, before any other, so the one after the main thread in order of
// creation.
func monitorThread(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	tids := make([]int, 0, len(entries))
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err == nil && tid != os.Getpid() {
			tids = append(tids, tid)
		}
	}
	if len(tids) == 0 {
		t.Fatal("no thread but the main one")
	}
	return slices.Min(tids)
}

// voluntarySwitches is how often thread tid has given up the CPU.
func voluntarySwitches(t *testing.T, tid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/status", tid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no voluntary_ctxt_switches in thread %d's status", tid)
	return 0
}
