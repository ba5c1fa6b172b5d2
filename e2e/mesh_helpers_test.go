package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// meshNode is a redmesh process in a mesh on 127.0.0.1.
type meshNode struct {
	*proc
	id   string // peer ID
	port int    // mesh TCP port
	args []string
	c    *redis.Client
}

// peerID runs `redmesh id` on dir.
func peerID(t testing.TB, dir string) string {
	t.Helper()
	out, err := exec.Command(binary, "id", "--data", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("redmesh id: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// startMeshNode starts a node listening for peers on a fresh loopback port
// (or port, if not 0) with a short sync interval.
func startMeshNode(t testing.TB, dir string, port int, extra ...string) *meshNode {
	t.Helper()
	id := peerID(t, dir)
	picked := port == 0 // a port picked here that was taken before the node bound it is picked again
	for attempt := 1; ; attempt++ {
		if picked {
			port = freePort(t)
		}
		args := []string{}
		if os.Getenv("REDMESH_E2E_DEBUG") != "" {
			args = append(args, "--log-level", "debug")
		}
		args = append(args, []string{"--p2p-listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port), "--sync-interval", "200ms"}...)
		args = append(args, extra...)
		p, err := startBinaryErr(t, binary, dir, args...)
		if err != nil && picked && attempt < 5 && portTaken(err, port) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		m := &meshNode{id: id, port: port, args: extra, proc: p}
		m.c = m.client(t)
		out := m.out
		t.Cleanup(func() {
			if !t.Failed() {
				return
			}
			log := out.String()
			if cut := len(log) - 16<<10; cut > 0 && !testing.Verbose() {
				log = "..." + log[cut:] // the end tells why; -v shows it whole
			}
			t.Logf("log of %s (%s):\n%s", m.id, dir, log)
		})
		return m
	}
}

// restart starts the node again on its directory and mesh port.
func (m *meshNode) restart(t testing.TB, extra ...string) {
	t.Helper()
	n := startMeshNode(t, m.dir, m.port, extra...)
	*m = *n
}

// maddr is the node's mesh multiaddr.
func (m *meshNode) maddr() string {
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", m.port, m.id)
}

// info returns INFO replication as a map.
func (m *meshNode) info(t testing.TB) map[string]string {
	t.Helper()
	return m.infoSection(t, "replication")
}

// infoSection returns a section of INFO as a map.
func (m *meshNode) infoSection(t testing.TB, section string) map[string]string {
	t.Helper()
	s, err := m.c.Info(context.Background(), section).Result()
	if err != nil {
		t.Fatalf("INFO: %v", err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(s, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out
}

func (m *meshNode) infoInt(t testing.TB, field string) int64 {
	t.Helper()
	v, _ := strconv.ParseInt(m.info(t)[field], 10, 64)
	return v
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitConnected waits until every node has want connected peers. On a
// timeout it says how many each node has: a node short of a link tells
// which discovery step failed (its log, printed on failure, says whom it
// dialled).
func waitConnected(t testing.TB, want int64, nodes ...*meshNode) {
	t.Helper()
	const timeout = 20 * time.Second
	for _, n := range nodes {
		deadline := time.Now().Add(timeout)
		for n.infoInt(t, "mesh_connected_peers") != want {
			if time.Now().After(deadline) {
				have := make([]string, len(nodes))
				for i, m := range nodes {
					have[i] = fmt.Sprintf("%s: %d", m.id, m.infoInt(t, "mesh_connected_peers"))
				}
				t.Fatalf("timed out after %v waiting for %s to have %d peers; connected peers: %s",
					timeout, n.id, want, strings.Join(have, ", "))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// keyState is one key as a node holds it.
type keyState struct {
	value    string
	expireAt int64 // PEXPIRETIME
}

// dump reads every key's value and deadline; a hash or set as its sorted
// fields or members.
func (m *meshNode) dump(t testing.TB) map[string]keyState {
	t.Helper()
	ctx := context.Background()
	out := map[string]keyState{}
	iter := m.c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		v, err := readValue(ctx, m.c, k)
		if err == redis.Nil {
			continue
		}
		if err != nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		at, err := m.c.Do(ctx, "PEXPIRETIME", k).Int64()
		if err != nil {
			t.Fatalf("PEXPIRETIME %s: %v", k, err)
		}
		out[k] = keyState{v, at}
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	return out
}

// readValue reads key as whatever type it holds, as one string: a hash's
// fields and a set's members sorted, a sorted set's members in score order
// with their scores, a list in order. redis.Nil if it is not there.
func readValue(ctx context.Context, c *redis.Client, key string) (string, error) {
	typ, err := c.Type(ctx, key).Result()
	if err != nil {
		return "", err
	}
	switch typ {
	case "none":
		return "", redis.Nil
	case "hash":
		h, err := c.HGetAll(ctx, key).Result()
		if err != nil {
			return "", err
		}
		fields := make([]string, 0, len(h))
		for f, v := range h {
			fields = append(fields, f+"="+v)
		}
		sort.Strings(fields)
		return "hash:" + strings.Join(fields, ","), nil
	case "set":
		ms, err := c.SMembers(ctx, key).Result()
		if err != nil {
			return "", err
		}
		sort.Strings(ms)
		return "set:" + strings.Join(ms, ","), nil
	case "zset":
		zs, err := c.Do(ctx, "ZRANGE", key, 0, -1, "WITHSCORES").StringSlice()
		if err != nil {
			return "", err
		}
		var b strings.Builder
		b.WriteString("zset:")
		for i := 0; i+1 < len(zs); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(zs[i] + "=" + zs[i+1])
		}
		return b.String(), nil
	case "list":
		l, err := c.LRange(ctx, key, 0, -1).Result()
		if err != nil {
			return "", err
		}
		return "list:" + strings.Join(l, ","), nil
	}
	return c.Get(ctx, key).Result()
}

// writePSK writes a new pre-shared key with `redmesh keygen`.
func writePSK(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swarm.key")
	if out, err := exec.Command(binary, "keygen", path).CombinedOutput(); err != nil {
		t.Fatalf("redmesh keygen: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "/key/swarm/psk/1.0.0/\n/base16/\n") {
		t.Fatalf("keygen wrote %q", b)
	}
	return path
}

// runRedmesh runs the binary to completion (with a timeout) and returns its output.
func runRedmesh(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	return string(out), err
}
