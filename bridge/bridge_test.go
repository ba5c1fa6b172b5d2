package bridge

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

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
	ms := b.Metrics()
	if up := testutil.ToFloat64(ms[0]); up != 1 {
		t.Fatalf("redmesh_bridge_up = %v", up)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ms...)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != len(ms) {
		t.Fatalf("gathered %d metrics, %v", n, err)
	}
	members := c.SMembers(ctx, "s").Val()
	slices.Sort(members)
	if !slices.Equal(members, []string{"x", "y"}) {
		t.Fatalf("set in backend %v", members)
	}
}

func infoField(b *Bridge, name string) string {
	for _, l := range b.Info() {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return v
		}
	}
	return ""
}

// TestBackendDownAndRestartedEmpty: with the backend gone the node takes
// writes and says the backend is down; the backend back, empty (a crashed
// cache), is refilled from the node, and nothing is deleted in the node.
func TestBackendDownAndRestartedEmpty(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	for i := range 50 {
		c.Set(ctx, "k"+itoa(i), "v", 0)
	}
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { _, ok := nodeString(n, "k49"); return ok && b.takeIn.Done.Load() })

	srv.kill()
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.SetString([]byte("while-down"), []byte("x"), 0) })
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "reported down", func() bool { return infoField(b, "bridge_link_status") == "down" })

	srv.restart(t)
	within(t, 10*time.Second, "refilled", func() bool {
		return c.DBSize(ctx).Val() == 51 && c.Get(ctx, "while-down").Val() == "x"
	})
	if infoField(b, "bridge_link_status") != "up" {
		t.Fatalf("INFO says the backend is %s", infoField(b, "bridge_link_status"))
	}
	for i := range 50 {
		if _, ok := nodeString(n, "k"+itoa(i)); !ok {
			t.Fatalf("k%d was deleted in the node by the empty backend", i)
		}
	}
}

// TestRestartAuditsWhatWasMissed: changes made to the backend while the
// bridge was stopped, a delete included, are found at its next start from
// the shadow it kept; a key the node changed meanwhile is written out.
func TestRestartAuditsWhatWasMissed(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	c.Set(ctx, "stay", "1", 0)
	c.Set(ctx, "gone", "1", 0)
	c.Set(ctx, "edited", "1", 0)
	c.Set(ctx, "nodeside", "1", 0)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	b.Close()

	c.Del(ctx, "gone")
	c.Set(ctx, "edited", "2", 0)
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.SetString([]byte("nodeside"), []byte("2"), 0) })
	if err != nil {
		t.Fatal(err)
	}
	b = startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "audit", func() bool {
		_, gone := nodeString(n, "gone")
		v, _ := nodeString(n, "edited")
		return !gone && v == "2" && c.Get(ctx, "nodeside").Val() == "2"
	})
	if v, ok := nodeString(n, "stay"); !ok || v != "1" {
		t.Fatalf("stay: %q %v", v, ok)
	}
}

// TestNotificationsRefusedNamesTheSetting: a backend that refuses CONFIG
// (renamed away, as managed services do) and has notifications off stops
// the bridge with an error that names the setting.
func TestNotificationsRefusedNamesTheSetting(t *testing.T) {
	srv := startRedis(t, "--rename-command", "CONFIG", "")
	n := openNode(t, t.TempDir())
	b, err := Start(context.Background(), Options{URL: srv.url(), Node: n, Logger: quietLog()})
	if err == nil {
		b.Close()
		t.Fatal("the bridge started without keyspace notifications")
	}
	if !strings.Contains(err.Error(), "notify-keyspace-events") || !strings.Contains(err.Error(), notifyFlags) {
		t.Fatalf("error does not name the setting: %v", err)
	}
}

// TestOwedBeyondTheBoundIsAudited: more keys owed to the backend than the
// queue holds (here in one commit; a long outage does the same) are
// forgotten and found by an audit, which writes them all.
func TestOwedBeyondTheBoundIsAudited(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b, err := Start(ctx, Options{URL: srv.url(), Node: n, Logger: quietLog(), QueueLimit: 5, RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	audits := b.st.audits.Load()
	err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		for i := range 40 {
			if err := l.SetString([]byte("owed:"+itoa(i)), []byte("v"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 10*time.Second, "every owed key in the backend", func() bool { return c.DBSize(ctx).Val() == 40 })
	if infoField(b, "bridge_queue_overflows") == "0" || b.st.audits.Load() == audits {
		t.Fatalf("no overflow (%s) or no audit", infoField(b, "bridge_queue_overflows"))
	}
}

// newIdleBridge is a connected Bridge whose worker does not run, so a test
// drives pullIn and pushOut itself.
func newIdleBridge(t *testing.T, srv *redisServer, n *node.Node) *Bridge {
	t.Helper()
	opts := Options{URL: srv.url(), Node: n, Logger: quietLog()}
	opts.setDefaults()
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		t.Fatal(err)
	}
	b := &Bridge{opts: opts, log: quietLog(), n: n, rdb: redis.NewClient(ro), prefix: "__keyspace@0__:",
		owed: map[string]struct{}{}, notified: map[string]struct{}{}, wake: make(chan struct{}, 1), shadow: map[uint64]uint64{}, stop: make(chan struct{}),
		foreign: map[uint64]struct{}{}, conflicted: map[uint64]int{}}
	t.Cleanup(func() { b.rdb.Close() })
	if err := b.connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChangeMeetsOwedRecord: a field written in the backend while the node
// holds another field the backend has not got yet (a peer's record)
// merges: both stay, in the node and then in the backend. A field the
// backend lacks and the node had written there was removed, and goes.
func TestChangeMeetsOwedRecord(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	fields := func() []string {
		rec, _ := n.Read([]byte("h"))
		var fs []string
		rec.Typed.EachField(func(name, _ []byte) bool { fs = append(fs, string(name)); return true })
		return fs
	}

	// The node has "old", and wrote it to the backend.
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Set: [][]byte{[]byte("old"), []byte("1")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	// A peer's field arrives (owed to the backend); meanwhile the backend's
	// application removes "old" and writes "city".
	err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Set: [][]byte{[]byte("name"), []byte("ada")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	c.HDel(ctx, "h", "old")
	c.HSet(ctx, "h", "city", "london")
	if err := b.pullIn(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	// The node holds what the backend has not got: taken in additively,
	// so the peer's field is not removed (nor, in that window, "old": the
	// README says so).
	if got := fields(); !slices.Equal(got, []string{"city", "name", "old"}) {
		t.Fatalf("node fields %v", got)
	}
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if m := c.HGetAll(ctx, "h").Val(); len(m) != 3 || m["name"] != "ada" || m["city"] != "london" {
		t.Fatalf("backend %v", m)
	}
	// Synced: a field removed in the backend is removed in the node.
	c.HDel(ctx, "h", "old")
	if err := b.pullIn(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if got := fields(); !slices.Equal(got, []string{"city", "name"}) {
		t.Fatalf("node fields after HDEL %v", got)
	}
}

// TestBackendRestartedFromOlderCopy: a backend restarted on an RDB saved
// before the node's last write does not bring the older value back.
func TestBackendRestartedFromOlderCopy(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	c.Set(ctx, "k", "v1", 0)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	if err := c.Save(ctx).Err(); err != nil { // the RDB holds v1
		t.Fatal(err)
	}
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.SetString([]byte("k"), []byte("v2"), 0) })
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "v2 in the backend", func() bool { return c.Get(ctx, "k").Val() == "v2" })
	srv.restart(t) // loads the RDB: v1
	within(t, 10*time.Second, "v2 back in the backend", func() bool { return c.Get(ctx, "k").Val() == "v2" })
	if v, _ := nodeString(n, "k"); v != "v2" {
		t.Fatalf("the node went back to %q", v)
	}
}
