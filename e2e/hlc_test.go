package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// meshVersion reads the HLC timestamp of a key's value register.
func meshVersion(t *testing.T, p *proc, key string) int64 {
	t.Helper()
	res, err := p.client(t).Do(context.Background(), "MESH", "VERSION", key).Slice()
	if err != nil {
		t.Fatal(err)
	}
	return res[0].(int64)
}

// TestHLCAfterRestart restarts a node, once cleanly and once with kill -9 and
// its wall clock set back ten minutes, and checks that every new write gets a
// version above every version issued before, so that it wins.
func TestHLCAfterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	// A clock ten minutes fast, later corrected.
	p := startNode(t, dir, "--clock-offset", "10m")
	if err := p.client(t).Set(ctx, "k", "before", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := meshVersion(t, p, "k")
	p.kill()

	p = startNode(t, dir)
	if err := p.client(t).Set(ctx, "k", "after-kill", 0).Err(); err != nil {
		t.Fatal(err)
	}
	afterKill := meshVersion(t, p, "k")
	if afterKill <= before {
		t.Fatalf("after kill -9 with the clock set back, version %d is not above %d", afterKill, before)
	}
	if got := p.client(t).Get(ctx, "k").Val(); got != "after-kill" {
		t.Fatalf("the write after restart lost to an older one: GET = %q", got)
	}
	p.stop(t)

	p = startNode(t, dir)
	if err := p.client(t).Set(ctx, "other", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v := meshVersion(t, p, "other"); v <= afterKill {
		t.Fatalf("after a clean restart, version %d is not above %d", v, afterKill)
	}
}

// TestHLCClockJump jumps a running node's wall clock (MESH CLOCKOFFSET,
// behind a testing switch) forward and back: versions follow it forward and
// never go back with it.
func TestHLCClockJump(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, t.TempDir(), "--clock-offset-settable")
	c := p.client(t)
	write := func() int64 {
		t.Helper()
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		return meshVersion(t, p, "k")
	}
	jump := func(offset string) {
		t.Helper()
		if err := c.Do(ctx, "MESH", "CLOCKOFFSET", offset).Err(); err != nil {
			t.Fatalf("MESH CLOCKOFFSET %s: %v", offset, err)
		}
	}
	start := write()
	jump("10m")
	ahead := write()
	if got := (ahead - start) >> 16; got < (10 * time.Minute).Milliseconds() {
		t.Fatalf("10 minutes ahead, the version moved only %d ms", got)
	}
	jump("-10m")
	if back := write(); back <= ahead {
		t.Fatalf("with the clock set back, version %d is not above %d", back, ahead)
	}
	if err := c.Do(ctx, "MESH", "CLOCKOFFSET", "soon").Err(); err == nil {
		t.Fatal("MESH CLOCKOFFSET soon: no error")
	}

	// Off unless switched on: the subcommand does not exist.
	q := startNode(t, t.TempDir())
	if err := q.client(t).Do(ctx, "MESH", "CLOCKOFFSET", "1m").Err(); err == nil || !strings.Contains(err.Error(), "unknown subcommand") {
		t.Fatalf("MESH CLOCKOFFSET without the switch: %v, want unknown subcommand", err)
	}
}
