package bridge

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/record"
)

func startBridge(t *testing.T, srv *redisServer, n *node.Node, dir string) *Bridge {
	t.Helper()
	b, err := Start(context.Background(), Options{URL: srv.url(), Node: n, ShadowFile: filepath.Join(dir, "bridge.shadow"), Logger: quietLog(), RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func nodeString(n *node.Node, key string) (string, bool) {
	rec, live := n.Read([]byte(key))
	if !live || rec.Kind() != record.KindString {
		return "", false
	}
	return string(rec.StringData()), true
}

// TestBridgeBothWays: the backend's dataset is taken in at start; changes
// made straight to the backend reach the node as local writes; the node's
// writes reach the backend, and their notifications are not taken in again.
func TestBridgeBothWays(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	c.Set(ctx, "before", "1", 0)
	c.HSet(ctx, "h", "a", "1")
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)

	within(t, 5*time.Second, "take-in", func() bool { v, ok := nodeString(n, "before"); return ok && v == "1" })
	if c.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"] == "" {
		t.Fatal("notifications not enabled on the backend")
	}

	// Straight to the backend.
	c.Set(ctx, "k", "v", time.Hour)
	c.HSet(ctx, "h", "b", "2")
	c.SAdd(ctx, "s", "x", "y")
	c.Del(ctx, "before")
	within(t, 5*time.Second, "backend changes in the node", func() bool {
		v, ok := nodeString(n, "k")
		_, beforeLive := n.Read([]byte("before"))
		h, _ := n.Read([]byte("h"))
		s, _ := n.Read([]byte("s"))
		return ok && v == "v" && !beforeLive && h.Typed.Len() == 2 && s.Typed.Len() == 2
	})
	if rec, _ := n.Read([]byte("k")); rec.Expiry.At == 0 {
		t.Fatal("the deadline was not taken in")
	}
	takenIn := b.st.takenIn.Load()

	// The node's own writes (a peer's records go the same way).
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		if err := l.SetString([]byte("fromnode"), []byte("n1"), 0); err != nil {
			return err
		}
		if err := l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Set: [][]byte{[]byte("c"), []byte("3")}, Del: [][]byte{[]byte("a")}}); err != nil {
			return err
		}
		return l.Delete([]byte("k"))
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "node writes in the backend", func() bool {
		fields := c.HGetAll(ctx, "h").Val()
		return c.Get(ctx, "fromnode").Val() == "n1" && c.Exists(ctx, "k").Val() == 0 &&
			len(fields) == 2 && fields["b"] == "2" && fields["c"] == "3"
	})
	// Notifications of the bridge's own writes come back: none is taken in.
	within(t, 5*time.Second, "echoes read", func() bool { return b.st.echoes.Load() >= 3 })
	if got := b.st.takenIn.Load(); got != takenIn {
		t.Fatalf("the bridge's own writes were taken in again: %d changes, %d before", got, takenIn)
	}
	members := c.SMembers(ctx, "s").Val()
	slices.Sort(members)
	if !slices.Equal(members, []string{"x", "y"}) {
		t.Fatalf("set in backend %v", members)
	}
}
