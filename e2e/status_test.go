package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStatusAndDiff: `redmesh status` shows a 3-node mesh with one node
// stopped, and `redmesh diff` finds exactly the keys that node missed.
func TestStatusAndDiff(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	c := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 2, a, b, c)
	writeKeys(t, a.c, "before:", 100, 4)
	for _, n := range []*meshNode{b, c} {
		waitUntil(t, 20*time.Second, "the first writes everywhere", func() bool { return n.c.DBSize(ctx).Val() == 100 })
	}
	// Every node has held the others' roots once they agree.
	waitUntil(t, 20*time.Second, "a to see both roots equal", func() bool {
		out, _ := runRedmesh(t, "status", "-a", a.addr)
		return strings.Count(out, " same ") == 2
	})

	c.stop(t)
	waitConnected(t, 1, a, b)
	writeKeys(t, a.c, "while-c-down:", 10, 2)
	if err := a.c.Del(ctx, "before:0").Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "b to get the writes", func() bool { return b.c.DBSize(ctx).Val() == 109 })

	out, err := runRedmesh(t, "status", "-a", a.addr)
	if err != nil {
		t.Fatalf("redmesh status: %v\n%s", err, out)
	}
	t.Logf("redmesh status -a A:\n%s", out)
	row := func(id string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, id) {
				return l
			}
		}
		t.Fatalf("status has no row for %s:\n%s", id, out)
		return ""
	}
	if !strings.Contains(out, "peers: 2 known, 1 connected") || !strings.Contains(out, "node "+a.id) {
		t.Fatalf("status header:\n%s", out)
	}
	if f := strings.Fields(row(b.id)); f[1] != "up" || f[2] != "0" {
		t.Fatalf("b's row: %v", f)
	}
	cRow := strings.Fields(row(c.id))
	if cRow[1] != "down" {
		t.Fatalf("c's row: %v", cRow)
	}
	// c has not acknowledged what a wrote since it stopped: 10 SETs and 1 DEL
	// in a's log, at most (some may share an entry).
	if unacked := cRow[4]; unacked == "0" || unacked == "-" {
		t.Fatalf("c's row shows nothing unacknowledged: %v", cRow)
	}
	if !regexp.MustCompile(`(?m)^PEER +LINK +BEHIND +BEHIND FOR +UNACKED +ACK LAG +LAST SYNC +ROOT +ADDR$`).MatchString(out) {
		t.Fatalf("status table header:\n%s", out)
	}

	// --watch redraws until interrupted.
	var watchOut syncBuffer
	watch := exec.Command(binary, "status", "--watch", "--interval", "100ms", "-a", a.addr)
	watch.Stdout, watch.Stderr = &watchOut, &watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "status --watch to redraw", func() bool {
		return strings.Count(watchOut.String(), "node "+a.id) >= 3
	})
	watch.Process.Signal(os.Interrupt)
	if err := watch.Wait(); err != nil {
		t.Fatalf("status --watch after SIGINT: %v\n%s", err, watchOut.String())
	}

	// Start c alone (no mesh) on its data: diff shows what it missed.
	c.proc = startNode(t, c.dir, "--no-mesh")
	out, err = runRedmesh(t, "diff", a.addr, c.addr)
	t.Logf("redmesh diff A C:\n%s", out)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Contains(out, "redmesh:") {
		t.Fatalf("diff of nodes that differ: %v, want exit status 1 and no error:\n%s", err, out)
	}
	if !strings.Contains(out, "11 of 110 keys differ: 10 only on "+a.addr+", 1 only on "+c.addr+", 0 at other versions") {
		t.Fatalf("diff summary:\n%s", out)
	}
	if !regexp.MustCompile(`"before:0" +deleted or expired: \d+\.\d+@[0-9a-f]{16} +\d+\.\d+@[0-9a-f]{16}\n`).MatchString(out) {
		t.Fatalf("diff does not show before:0 deleted on A:\n%s", out)
	}
	if !regexp.MustCompile(`"while-c-down:3" +\d+\.\d+@[0-9a-f]{16} +absent\n`).MatchString(out) {
		t.Fatalf("diff does not show while-c-down:3 absent on C:\n%s", out)
	}
	out, err = runRedmesh(t, "diff", a.addr, b.addr)
	if err != nil || !strings.Contains(out, "109 keys, the same on both nodes") {
		t.Fatalf("diff A B: %v\n%s", err, out)
	}

	// Back in the mesh, c converges and diff finds nothing.
	c.proc.stop(t)
	c.restart(t, "--peer", a.maddr())
	waitUntil(t, 30*time.Second, "c to converge", func() bool {
		out, err := runRedmesh(t, "diff", a.addr, c.addr)
		return err == nil && strings.Contains(out, "the same on both nodes")
	})
	if out, err := runRedmesh(t, "status", "-a", "127.0.0.1:1"); err == nil {
		t.Fatalf("status of nothing succeeded:\n%s", out)
	}
}
