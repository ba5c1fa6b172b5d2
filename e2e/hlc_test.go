package e2e

import (
	"context"
	"testing"
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
