package e2e

import (
	"context"
	"github.com/redis/go-redis/v9"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peerField returns field of the first mesh_peer line of INFO replication.
func peerField(in map[string]string, field string) int64 {
	for _, f := range strings.Split(in["mesh_peer0"], ",") {
		if k, v, ok := strings.Cut(f, "="); ok && k == field {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// TestBootstrapJoin: an empty node joining a node that holds many keys
// streams its snapshot, reports the progress in INFO and its log, and ends
// with every key and the same Merkle root, without a Merkle walk.
func TestBootstrapJoin(t *testing.T) {
	const keys = 100_000
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	writeKeys(t, a.c, "k:", keys, 100)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitUntil(t, 120*time.Second, "b to hold every key with a's root", func() bool {
		in := b.info(t)
		return in["mesh_sync_in_progress"] == "0" && in["mesh_merkle_root"] == a.info(t)["mesh_merkle_root"]
	})
	if n := b.c.DBSize(ctx).Val(); n != keys {
		t.Fatalf("b holds %d keys", n)
	}
	in := b.info(t)
	t.Logf("b: bootstraps %s, keys %s/%s, bytes %s/%s, repaired %s", in["mesh_bootstraps"], in["mesh_bootstrap_keys"],
		in["mesh_bootstrap_keys_total"], in["mesh_bootstrap_bytes"], in["mesh_bootstrap_bytes_total"], in["mesh_keys_repaired"])
	if atoi(in["mesh_bootstraps"]) < 1 || atoi(in["mesh_bootstrap_keys"]) != keys || atoi(in["mesh_bootstrap_keys_total"]) != keys ||
		atoi(in["mesh_keys_repaired"]) != 0 || in["mesh_bootstrap_in_progress"] != "0" {
		t.Fatalf("b did not bootstrap from a snapshot: %v", in)
	}
	if peerField(in, "bootstrap_keys") != keys || peerField(in, "bootstrap_bytes") <= 0 {
		t.Fatalf("b's peer line: %s", in["mesh_peer0"])
	}
	if a.info(t)["mesh_snapshots_served"] != "1" {
		t.Fatalf("a: %v", a.info(t))
	}
	if !strings.Contains(b.out.String(), "bootstrap complete") {
		t.Fatalf("b's log does not show the bootstrap:\n%s", b.out)
	}
	if got := b.c.Get(ctx, "k:99999").Val(); len(got) != 100 {
		t.Fatalf("k:99999 = %q", got)
	}
}

// TestBootstrapResumesAfterKill: a joining node killed with kill -9 in the
// middle of its snapshot resumes where it stopped when restarted, rather
// than starting over: what it receives the second time is about what was
// left. With --serve-stale-data no it refuses data commands until its
// first sync is done.
func TestBootstrapResumesAfterKill(t *testing.T) {
	const keys = 300_000
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	writeKeys(t, a.c, "k:", keys, 200)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr(), "--serve-stale-data", "no")
	var total int64
	waitUntil(t, 120*time.Second, "b to be a fifth into the snapshot", func() bool {
		in := b.info(t)
		total = atoi(in["mesh_bootstrap_bytes_total"])
		return total > 0 && atoi(in["mesh_bootstrap_bytes"]) > total/5
	})
	// a pauses (the link stays up) while b is checked and killed, so that
	// the snapshot, which takes seconds, cannot end meanwhile.
	a.cmd.Process.Signal(syscall.SIGSTOP)
	defer a.cmd.Process.Signal(syscall.SIGCONT)
	// During the first sync, data commands are refused; INFO and CONFIG
	// are not.
	err := b.c.Get(ctx, "k:1").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "MASTERDOWN") {
		t.Fatalf("GET during the sync with serve-stale-data no: %v", err)
	}
	if v := b.c.ConfigGet(ctx, "serve-stale-data").Val()["serve-stale-data"]; v != "no" {
		t.Fatalf("CONFIG GET serve-stale-data = %q", v)
	}
	// CONFIG SET takes effect at once, both ways.
	if err := b.c.ConfigSet(ctx, "serve-stale-data", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Get(ctx, "k:1").Err(); err != nil && err != redis.Nil {
		t.Fatalf("GET during the sync after CONFIG SET serve-stale-data yes: %v", err)
	}
	if err := b.c.ConfigSet(ctx, "serve-stale-data", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.c.Get(ctx, "k:1").Err(); err == nil || !strings.HasPrefix(err.Error(), "MASTERDOWN") {
		t.Fatalf("GET during the sync after CONFIG SET serve-stale-data no: %v", err)
	}
	// b saves its progress at its first chunk, then with the first chunk
	// it takes a second or more after the last save. A second after this
	// point, a lets a little more of the stream through, and b is killed
	// once it has taken what came (its count steady), having saved a
	// position past this one.
	keysBefore := atoi(b.info(t)["mesh_bootstrap_keys"])
	time.Sleep(1100 * time.Millisecond)
	a.cmd.Process.Signal(syscall.SIGCONT)
	waitUntil(t, 10*time.Second, "b to take more of the stream", func() bool {
		return atoi(b.info(t)["mesh_bootstrap_keys"]) > keysBefore
	})
	a.cmd.Process.Signal(syscall.SIGSTOP)
	last := int64(-1)
	waitUntil(t, 10*time.Second, "b to have taken what a sent", func() bool {
		k := atoi(b.info(t)["mesh_bootstrap_keys"])
		steady := k == last
		last = k
		if !steady {
			time.Sleep(300 * time.Millisecond)
		}
		return steady
	})
	at := atoi(b.info(t)["mesh_bootstrap_bytes"])
	if b.info(t)["mesh_bootstrap_in_progress"] != "1" {
		t.Fatalf("the snapshot ended before the kill (%d of about %d bytes): make it longer", at, total)
	}
	b.kill()
	a.cmd.Process.Signal(syscall.SIGCONT)

	b.restart(t, b.args...)
	// What b saved before the kill is where it resumes: the log says how
	// many keys that covered.
	saved := savedBootstrapKeys(t, b.out.String())
	if saved <= 0 || saved > keys {
		t.Fatalf("after the restart, no bootstrap to resume (%d keys saved):\n%s", saved, b.out)
	}
	if saved <= keysBefore {
		t.Fatalf("b resumes after %d keys, saved before it held %d: its progress was not saved as it streamed", saved, keysBefore)
	}
	waitUntil(t, 180*time.Second, "b to finish with a's root", func() bool {
		in := b.info(t)
		return in["mesh_sync_in_progress"] == "0" && in["mesh_merkle_root"] == a.info(t)["mesh_merkle_root"]
	})
	if err := b.c.Get(ctx, "k:1").Err(); err != nil {
		t.Fatalf("GET after the sync: %v", err)
	}
	if n := b.c.DBSize(ctx).Val(); n != keys {
		t.Fatalf("b holds %d keys", n)
	}
	// libp2p's traffic meter counts once a second.
	var received int64
	waitUntil(t, 10*time.Second, "b's traffic meter to count the stream", func() bool {
		received = peerField(b.info(t), "bytes_in")
		return received > 0
	})
	receivedKeys := atoi(b.info(t)["mesh_bootstrap_keys_received"])
	t.Logf("snapshot about %d bytes; killed at %d, resumed after %d keys (%d held before the last of the stream a let through); after the restart received %d keys, %d bytes on the link",
		total, at, saved, keysBefore, receivedKeys, received)
	// The second run received the keys after the saved position, not the
	// whole snapshot.
	if left := keys - saved; receivedKeys != left {
		t.Fatalf("b received %d keys after the restart, %d were left of %d: it did not resume", receivedKeys, left, keys)
	}
	if received >= total {
		t.Fatalf("b received %d bytes after the restart, the whole snapshot is about %d", received, total)
	}
	if !strings.Contains(b.out.String(), "bootstrap resumes where it stopped") {
		t.Fatalf("b's log does not show the resumption:\n%s", b.out)
	}
}

// savedBootstrapKeys reads, from a restarted node's log, how many keys the
// bootstrap it resumes had saved; -1 if it resumes none.
func savedBootstrapKeys(t *testing.T, log string) int64 {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "an interrupted bootstrap will resume") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "keys_done="); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("keys_done in %q: %v", l, err)
				}
				return n
			}
		}
	}
	return -1
}
