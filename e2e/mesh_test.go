package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestMeshThreeNodes: a write at any node is readable at every other, a
// node that knows one peer finds the rest (peer exchange), and WAIT 2
// returns 2.
func TestMeshThreeNodes(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	c := startMeshNode(t, t.TempDir(), 0, "--peer", b.maddr()) // learns a from b
	nodes := []*meshNode{a, b, c}
	waitConnected(t, 2, nodes...)

	for i, n := range nodes {
		key := fmt.Sprintf("from-%d", i)
		if err := n.c.Set(ctx, key, fmt.Sprint("v", i), 0).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		got, err := n.c.Do(ctx, "WAIT", "2", "10000").Int()
		if err != nil || got != 2 {
			t.Fatalf("WAIT 2 10000 at node %d = %d, %v", i, got, err)
		}
		t.Logf("node %d: WAIT 2 returned 2 after %v", i, time.Since(start).Round(time.Millisecond))
		for j, o := range nodes {
			if v, err := o.c.Get(ctx, key).Result(); err != nil || v != fmt.Sprint("v", i) {
				t.Fatalf("node %d reads %s = %q, %v after WAIT 2", j, key, v, err)
			}
		}
	}
	// WAIT 0 answers at once with the peers that have everything.
	if got, err := a.c.Do(ctx, "WAIT", "0", "0").Int(); err != nil || got != 2 {
		t.Fatalf("WAIT 0 0 = %d, %v", got, err)
	}
	// WAIT for more peers than exist gives up after its timeout.
	if got, err := a.c.Do(ctx, "WAIT", "5", "200").Int(); err != nil || got != 2 {
		t.Fatalf("WAIT 5 200 = %d, %v", got, err)
	}
	in := a.info(t)
	for _, f := range []string{"mesh_peer_id", "mesh_merkle_root", "mesh_sessions", "mesh_keys_repaired", "mesh_refused_clock_skew", "mesh_peer0", "mesh_peer1"} {
		if _, ok := in[f]; !ok {
			t.Fatalf("INFO replication lacks %s:\n%v", f, in)
		}
	}
	if !strings.Contains(in["mesh_peer0"], "connected=1") || !strings.Contains(in["mesh_peer0"], "unacked=0") {
		t.Fatalf("mesh_peer0 = %s", in["mesh_peer0"])
	}
	if !strings.Contains(a.out.String(), "mesh listening") || !strings.Contains(a.out.String(), a.maddr()) {
		t.Fatalf("the log does not show the node's multiaddr %s:\n%s", a.maddr(), a.out)
	}
}

// TestMeshWritesMadeAloneReachALaterPeer: a node with no peer pushes
// nothing; a peer that connects later gets those writes from its log, and
// the writes after that by push.
func TestMeshWritesMadeAloneReachALaterPeer(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	writeKeys(t, a.c, "alone:", 1_000, 8)
	if n := a.infoInt(t, "mesh_push_batches_sent"); n != 0 {
		t.Fatalf("a alone published %d push batches", n)
	}
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)
	waitUntil(t, 30*time.Second, "b to hold a's writes", func() bool { return b.c.DBSize(ctx).Val() == 1_000 })
	if err := a.c.Set(ctx, "after", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.Do(ctx, "WAIT", "1", "10000").Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 10000 = %d, %v", got, err)
	}
	if v, err := b.c.Get(ctx, "after").Result(); err != nil || v != "v" {
		t.Fatalf("b reads after = %q, %v", v, err)
	}
}

type writeRec struct {
	key, value string
	del        bool
	ts         int64
	node       string
}

// TestMeshConvergesUnderConcurrentWrites: five nodes, a writer at each on
// overlapping keys; once writes stop every node holds the same keys,
// values and deadlines, and every key holds its highest-versioned write.
func TestMeshConvergesUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	var nodes []*meshNode
	for i := range 5 {
		var extra []string
		if i > 0 {
			extra = []string{"--peer", nodes[i-1].maddr()}
		}
		nodes = append(nodes, startMeshNode(t, t.TempDir(), 0, extra...))
	}
	waitConnected(t, 4, nodes...)

	const keys, ops = 40, 150
	var mu sync.Mutex
	var writes []writeRec
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for j := range ops {
				key := fmt.Sprintf("k%d", rng.IntN(keys))
				w := writeRec{key: key, value: fmt.Sprintf("n%d-%d", i, j)}
				pipe := n.c.TxPipeline()
				switch r := rng.IntN(10); {
				case r < 2:
					w.del = true
					pipe.Del(ctx, key)
				case r < 6:
					pipe.Set(ctx, key, w.value, time.Hour)
				default:
					pipe.Set(ctx, key, w.value, 0)
				}
				ver := pipe.Do(ctx, "MESH", "VERSION", key)
				if _, err := pipe.Exec(ctx); err != nil {
					t.Errorf("node %d: %v", i, err)
					return
				}
				v := ver.Val().([]any)
				w.ts, w.node = v[0].(int64), v[1].(string)
				mu.Lock()
				writes = append(writes, w)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	start := time.Now()
	var dumps []map[string]keyState
	waitUntil(t, 60*time.Second, "all five nodes to hold the same data", func() bool {
		dumps = dumps[:0]
		for _, n := range nodes {
			dumps = append(dumps, n.dump(t))
		}
		for _, d := range dumps[1:] {
			if !equalDumps(dumps[0], d) {
				return false
			}
		}
		return true
	})
	t.Logf("%d writes at 5 nodes on %d keys: identical everywhere %v after the last write", len(writes), keys, time.Since(start).Round(time.Millisecond))

	// Every key holds its highest-versioned write.
	best := map[string]writeRec{}
	for _, w := range writes {
		b, ok := best[w.key]
		if !ok || w.ts > b.ts || w.ts == b.ts && w.node > b.node {
			best[w.key] = w
		}
	}
	for key, w := range best {
		got, ok := dumps[0][key]
		switch {
		case w.del && ok:
			t.Errorf("%s = %q, but its newest write (%d %s) deleted it", key, got.value, w.ts, w.node)
		case !w.del && (!ok || got.value != w.value):
			t.Errorf("%s = %q (present %v), want %q from its newest write (%d %s)", key, got.value, ok, w.value, w.ts, w.node)
		}
	}
	for _, n := range nodes {
		if bad := n.infoInt(t, "mesh_bad_messages"); bad != 0 {
			t.Errorf("node %s counted %d bad messages", n.id, bad)
		}
	}
}

func equalDumps(a, b map[string]keyState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// writeKeys writes n keys prefix0..prefixN-1 with values of size bytes, pipelined.
func writeKeys(t *testing.T, c *redis.Client, prefix string, n, size int) {
	t.Helper()
	ctx := context.Background()
	val := strings.Repeat("x", size)
	for i := 0; i < n; i += 500 {
		pipe := c.Pipeline()
		for j := i; j < min(n, i+500); j++ {
			pipe.Set(ctx, fmt.Sprintf("%s%d", prefix, j), val, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMeshCatchUpAfterKill: a node killed with kill -9 while the others
// take 10,000 writes catches up from their logs when it comes back; when
// the gap is beyond the logs' retention, it converges by Merkle instead.
func TestMeshCatchUpAfterKill(t *testing.T) {
	ctx := context.Background()
	retain := []string{"--wal-retain-bytes", "2MiB"}
	a := startMeshNode(t, t.TempDir(), 0, retain...)
	b := startMeshNode(t, t.TempDir(), 0, append(retain, "--peer", a.maddr())...)
	c := startMeshNode(t, t.TempDir(), 0, append(retain, "--peer", a.maddr())...)
	waitConnected(t, 2, a, b, c)
	// c reconciled with both at connection and holds cursors into their logs.
	waitUntil(t, 10*time.Second, "c's cursors", func() bool {
		in := c.info(t)
		return !strings.Contains(in["mesh_peer0"], "cursor=none") && !strings.Contains(in["mesh_peer1"], "cursor=none")
	})

	// 1. A gap the logs still hold: catch-up from the log.
	c.kill()
	writeKeys(t, a.c, "gap1:", 10_000, 16)
	waitUntil(t, 30*time.Second, "b to hold a's writes", func() bool { return b.c.DBSize(ctx).Val() == 10_000 })
	start := time.Now()
	c.restart(t, c.args...)
	waitUntil(t, 60*time.Second, "c to catch up", func() bool { return c.c.DBSize(ctx).Val() == 10_000 })
	took := time.Since(start)
	waitUntil(t, 30*time.Second, "c's catch-ups from both logs to finish", func() bool {
		return c.infoInt(t, "mesh_catchups_by_log") >= 2
	})
	in := c.info(t)
	t.Logf("caught up %d log entries in %v (catch-ups %s, by log %s, fallbacks %s)", c.infoInt(t, "mesh_catchup_entries"),
		took.Round(time.Millisecond), in["mesh_catchups"], in["mesh_catchups_by_log"], in["mesh_catchup_fallbacks"])
	if c.infoInt(t, "mesh_catchup_entries") < 10_000 || in["mesh_catchup_fallbacks"] != "0" {
		t.Fatalf("c did not catch up from the log: %v", in)
	}
	if !strings.Contains(c.out.String(), "caught up from peer's log") {
		t.Fatalf("c's log does not show the catch-up:\n%s", c.out)
	}

	// 2. A gap beyond the logs' retention: Merkle.
	c.kill()
	headA, headB := a.infoInt(t, "master_repl_offset"), b.infoInt(t, "master_repl_offset")
	// Log entries hold keys and versions, not values: long keys make this
	// gap's log (~3.5 MB) longer than the 2 MiB retained.
	gap2 := "gap2:" + strings.Repeat("k", 300) + ":"
	writeKeys(t, a.c, gap2, 10_000, 64)
	waitUntil(t, 60*time.Second, "b to hold the second gap", func() bool { return b.c.DBSize(ctx).Val() == 20_000 })
	// Retention runs every 10s.
	waitUntil(t, 60*time.Second, "a and b to truncate their logs past c's cursors", func() bool {
		fa, fb := walFirstSeq(t, a), walFirstSeq(t, b)
		return fa > headA+1 && fb > headB+1
	})
	start = time.Now()
	c.restart(t, c.args...)
	waitUntil(t, 120*time.Second, "c to converge by Merkle", func() bool { return c.c.DBSize(ctx).Val() == 20_000 })
	// A session counts the keys it repaired once its last transfer is
	// applied, which makes them visible first: the count may trail the
	// keys by a transfer for a moment.
	for deadline := time.Now().Add(10 * time.Second); c.infoInt(t, "mesh_keys_repaired") < 10_000 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	in = c.info(t)
	t.Logf("converged by Merkle in %v: fallbacks %s, keys repaired %s, log entries read %s", time.Since(start).Round(time.Millisecond),
		in["mesh_catchup_fallbacks"], in["mesh_keys_repaired"], in["mesh_catchup_entries"])
	if c.infoInt(t, "mesh_catchup_fallbacks") < 1 || c.infoInt(t, "mesh_keys_repaired") < 10_000 {
		t.Fatalf("c did not converge by Merkle: %v", in)
	}
	if got, err := c.c.Get(ctx, gap2+"9999").Result(); err != nil || len(got) != 64 {
		t.Fatalf("the last key of the second gap = %d bytes, %v", len(got), err)
	}
}

func walFirstSeq(t *testing.T, n *meshNode) int64 {
	s, err := n.c.Info(context.Background(), "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(s, "\r\n") {
		if v, ok := strings.CutPrefix(l, "wal_first_seq:"); ok {
			var x int64
			fmt.Sscan(v, &x)
			return x
		}
	}
	t.Fatal("INFO persistence has no wal_first_seq")
	return 0
}

// TestMeshPrivate: a node with the wrong pre-shared key and a node that is
// not on the allowlist never connect and never receive a key.
func TestMeshPrivate(t *testing.T) {
	ctx := context.Background()
	key, other := writePSK(t), writePSK(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	idA, idB := peerID(t, dirA), peerID(t, dirB)
	a := startMeshNode(t, dirA, 0, "--psk-file", key, "--allow-peer", idB)
	b := startMeshNode(t, dirB, 0, "--psk-file", key, "--allow-peer", idA, "--peer", a.maddr())
	wrongKey := startMeshNode(t, t.TempDir(), 0, "--psk-file", other, "--peer", a.maddr(), "--peer", b.maddr())
	notAllowed := startMeshNode(t, t.TempDir(), 0, "--psk-file", key, "--peer", a.maddr(), "--peer", b.maddr())
	waitConnected(t, 1, a, b)

	for i := range 20 {
		if err := a.c.Set(ctx, fmt.Sprint("secret", i), "s", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := a.c.Do(ctx, "WAIT", "1", "10000").Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 = %d, %v", got, err)
	}
	if n := b.c.DBSize(ctx).Val(); n != 20 {
		t.Fatalf("b holds %d keys, want 20", n)
	}
	outsiders := []*meshNode{wrongKey, notAllowed}
	for _, o := range outsiders {
		o.c.Set(ctx, "outsider-"+o.id, "x", 0)
	}
	time.Sleep(3 * time.Second) // several sync intervals and redials
	for _, o := range outsiders {
		if n := o.c.DBSize(ctx).Val(); n != 1 {
			t.Errorf("outsider %s holds %d keys, want only its own", o.id, n)
		}
		if n := o.infoInt(t, "mesh_connected_peers"); n != 0 {
			t.Errorf("outsider %s has %d connected peers", o.id, n)
		}
	}
	for _, n := range []*meshNode{a, b} {
		if got := n.c.DBSize(ctx).Val(); got != 20 {
			t.Errorf("mesh node %s holds %d keys, want 20", n.id, got)
		}
		if got := n.infoInt(t, "mesh_connected_peers"); got != 1 {
			t.Errorf("mesh node %s has %d connected peers, want 1", n.id, got)
		}
	}
}

// TestMeshRefusesOpenListen: protected mode.
func TestMeshRefusesOpenListen(t *testing.T) {
	out, err := runRedmesh(t, "serve", "--data", t.TempDir(), "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--p2p-listen", fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", freePort(t)))
	if err == nil || !strings.Contains(out, "--insecure-open-mesh") || !strings.Contains(out, "--psk-file") {
		t.Fatalf("a node listening beyond loopback without a PSK or allowlist started (or said nothing useful): %v\n%s", err, out)
	}
}

// TestMeshRestartFindsPeers: a node restarted without --peer finds its mesh
// from the peers it remembers.
func TestMeshRestartFindsPeers(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)
	b.stop(t)
	b.restart(t) // no --peer
	waitConnected(t, 1, a, b)
	if err := a.c.Set(ctx, "after-restart", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.Do(ctx, "WAIT", "1", "10000").Int(); err != nil || got != 1 {
		t.Fatalf("WAIT 1 = %d, %v", got, err)
	}
	if v, err := b.c.Get(ctx, "after-restart").Result(); err != nil || v != "1" {
		t.Fatalf("b reads %q, %v", v, err)
	}
}

// TestMeshOverMaxMemoryStillConverges: a node over --maxmemory refuses its
// clients' writes but still applies its peers', so the mesh converges.
func TestMeshOverMaxMemoryStillConverges(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr(), "--maxmemory", "1")
	waitConnected(t, 1, a, b)
	if err := b.c.Set(ctx, "local", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "OOM command not allowed") {
		t.Fatalf("SET over maxmemory: %v", err)
	}
	writeKeys(t, a.c, "from-a:", 1000, 100)
	waitUntil(t, 30*time.Second, "b to apply a's writes", func() bool { return b.c.DBSize(ctx).Val() == 1000 })
	if err := b.c.Del(ctx, "from-a:7").Err(); err != nil {
		t.Fatalf("DEL over maxmemory: %v", err)
	}
	waitUntil(t, 30*time.Second, "a to apply b's delete", func() bool { return a.c.Exists(ctx, "from-a:7").Val() == 0 })
}

// TestLargeValueRoundTrips: a 100 MB value is stored, read back, survives a
// kill -9 under fsync always, and reaches a peer that joins later (by its
// log), with the node's memory a small multiple of the value.
//
// Under the race detector, on two cores, moving 100 MB through libp2p
// starves the connection long enough for its write timeout to close it;
// .ci/run runs this test without it.
func TestLargeValueRoundTrips(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("moves 100 MB values; run without -race")
	}
	ctx := context.Background()
	big := strings.Repeat("0123456789abcdef", 100<<20/16)
	a := startMeshNode(t, t.TempDir(), 0, "--fsync", "always")
	// 100 MB take longer than go-redis's default timeouts under -race.
	patient := func(n *meshNode) {
		n.c = redis.NewClient(&redis.Options{Addr: n.addr, Protocol: 2, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
		t.Cleanup(func() { n.c.Close() })
	}
	patient(a)
	if err := a.c.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET big: %d bytes, %v", len(got), err)
	}
	// Private memory, once the node is idle and its memory policy has
	// returned the garbage: the value in the keyspace and little more. (The
	// log's value file is mapped too, as page cache the kernel reclaims.)
	anonOf := func(n *meshNode) int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10
			}
		}
		t.Fatal("no RssAnon")
		return 0
	}
	settled := func(n *meshNode) {
		deadline := time.Now().Add(60 * time.Second)
		for anonOf(n) >= 3*int64(len(big)) {
			if time.Now().After(deadline) {
				t.Fatalf("private memory %d MiB, not within 3 times the value: %v", anonOf(n)>>20, n.infoSection(t, "memory"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	settled(a)
	t.Logf("private memory with a 100 MB value: %d MiB", anonOf(a)>>20)
	start := time.Now()
	a.kill()
	a.restart(t, a.args...)
	patient(a)
	if got, err := a.c.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET big after kill -9: %d bytes, %v", len(got), err)
	}
	t.Logf("restarted after kill -9 in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	patient(b)
	waitConnected(t, 1, a, b)
	waitUntil(t, 120*time.Second, "b to hold the big value", func() bool { return b.c.Exists(ctx, "big").Val() == 1 })
	if got, err := b.c.Get(ctx, "big").Result(); err != nil || got != big {
		t.Fatalf("GET big at the peer: %d bytes, %v", len(got), err)
	}
	t.Logf("a peer got it in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	// And by push, once linked.
	big2 := strings.Repeat("z", 100<<20)
	if err := a.c.Set(ctx, "big2", big2, 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 120*time.Second, "b to hold the second big value", func() bool { return b.c.StrLen(ctx, "big2").Val() == int64(len(big2)) })
	t.Logf("the peer got a second one in %v", time.Since(start).Round(time.Millisecond))
	if err := a.c.Del(ctx, "big").Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "b to drop the first big value", func() bool { return b.c.Exists(ctx, "big").Val() == 0 })
	settled(b)
	t.Logf("the peer's private memory holding one: %d MiB (peak used_memory %s)", anonOf(b)>>20, b.infoSection(t, "memory")["used_memory_peak_human"])
}
