package e2e

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestMeshFormsWhenStartedTogether: nodes started all at once, as
// bench/propagation.sh and an operator starting several sites start them
// (a pre-shared key, every node after the first given the first with
// --peer), become a full mesh within seconds, again and again: every node
// lists every other as connected. Each node learns of the others only
// through the first, so how their links to it come up, and in what order
// each asks it for its peers, decides whether two of them ever link. Run
// it with -count=N (and -v for the times) to start more meshes.
func TestMeshFormsWhenStartedTogether(t *testing.T) {
	key := writePSK(t)
	for round, n := range []int{3, 3, 3, 5, 5} {
		t.Run(fmt.Sprintf("%d-nodes-%d", n, round), func(t *testing.T) {
			took := startTogether(t, key, n)
			t.Logf("%d nodes: every link up %v after every node answered", n, took.Round(time.Millisecond))
		})
	}
}

// startTogether starts n nodes at once, waits until every one lists n-1
// connected peers, stops them and says how long that took from the moment
// the last of them answered PING.
func startTogether(t *testing.T, key string, n int) time.Duration {
	t.Helper()
	dirs := make([]string, n)
	ports := make([]int, n)
	for i := range dirs {
		dirs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("node-%d", i+1))
		ports[i] = freePort(t)
	}
	first := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", ports[0], peerID(t, dirs[0]))
	procs := make([]*proc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		args := []string{"--psk-file", key, "--p2p-listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[i]), "--fsync", "everysec"}
		if i > 0 {
			args = append(args, "--peer", first)
		}
		wg.Go(func() { procs[i], errs[i] = startBinaryErr(t, binary, dirs[i], args...) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	nodes := make([]*meshNode, n)
	for i, p := range procs {
		nodes[i] = &meshNode{proc: p, port: ports[i], c: p.client(t)}
		nodes[i].id = fmt.Sprintf("node %d", i+1)
		out := p.out
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("log of node %d:\n%s", i+1, out)
			}
		})
	}
	start := time.Now()
	waitConnected(t, int64(n-1), nodes...)
	took := time.Since(start)
	for _, p := range procs {
		p.kill()
	}
	return took
}
