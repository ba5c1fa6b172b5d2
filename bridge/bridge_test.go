package bridge

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
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
	ro.Protocol = 2 // as Start's
	b := &Bridge{opts: opts, log: quietLog(), n: n, rdb: redis.NewClient(ro), prefix: "__keyspace@0__:",
		owed: map[string]struct{}{}, notified: map[string]struct{}{}, notes: map[string]notes{}, removed: map[string]map[string]struct{}{}, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		foreign: map[uint64]struct{}{}, conflicted: map[uint64]int{}}
	t.Cleanup(func() { b.rdb.Close() })
	if err := b.connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChangeMeetsOwedRecord: a field written in the backend while the node
// holds another field the backend has not got yet (a peer's record)
// merges: both stay, in the node and then in the backend. A field removed
// in the backend in that moment is removed, not written back.
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
	hset(t, n, "h", "old", "1")
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	// A peer's field arrives (owed to the backend); meanwhile the backend's
	// application removes "old" and writes "city".
	hset(t, n, "h", "name", "ada")
	c.HDel(ctx, "h", "old")
	c.HSet(ctx, "h", "city", "london")
	if err := b.pullIn(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if got := fields(); !slices.Equal(got, []string{"city", "name"}) {
		t.Fatalf("node fields %v", got)
	}
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if m := c.HGetAll(ctx, "h").Val(); len(m) != 2 || m["name"] != "ada" || m["city"] != "london" {
		t.Fatalf("backend %v", m)
	}
	// Synced: a field removed in the backend is removed in the node.
	c.HDel(ctx, "h", "city")
	if err := b.pullIn(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if got := fields(); !slices.Equal(got, []string{"name"}) {
		t.Fatalf("node fields after HDEL %v", got)
	}
}

func hset(t *testing.T, n *node.Node, key, field, value string) {
	t.Helper()
	err := n.UpdateLocal(context.Background(), func(l *node.LocalTx) error {
		return l.EditTyped([]byte(key), node.TypedEdit{Kind: record.KindHash, Set: [][]byte{[]byte(field), []byte(value)}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func zadd(t *testing.T, n *node.Node, key, member string, score float64) {
	t.Helper()
	err := n.UpdateLocal(context.Background(), func(l *node.LocalTx) error {
		return l.EditTyped([]byte(key), node.TypedEdit{Kind: record.KindZSet, Add: [][]byte{[]byte(member)}, Scores: []float64{score}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStaleElementIsNoChange: while the node holds a peer's newer value of
// a field, a member's score or a string the backend has not got yet, a
// change of something else of the same key in the backend does not write
// the backend's older value back into the node (it would win everywhere,
// versioned later).
func TestStaleElementIsNoChange(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	sync := func(keys ...string) {
		t.Helper()
		if err := b.pushOut(ctx, keys); err != nil {
			t.Fatal(err)
		}
	}
	zadd(t, n, "board", "ada", 10)
	hset(t, n, "h", "f", "1")
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.SetString([]byte("s"), []byte("v1"), 0) }); err != nil {
		t.Fatal(err)
	}
	sync("board", "h", "s")
	// The peers' newer values, owed to the backend.
	zadd(t, n, "board", "ada", 15)
	hset(t, n, "h", "f", "2")
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.SetString([]byte("s"), []byte("v2"), 0) }); err != nil {
		t.Fatal(err)
	}
	// Meanwhile the backend's applications change something else.
	c.ZAdd(ctx, "board", redis.Z{Score: 7, Member: "bob"})
	c.HSet(ctx, "h", "g", "1")
	at := time.Now().Add(time.Hour).UnixMilli()
	c.PExpireAt(ctx, "s", time.UnixMilli(at))
	if err := b.pullIn(ctx, []string{"board", "h", "s"}); err != nil {
		t.Fatal(err)
	}
	sync("board", "h", "s")
	want := map[string]string{
		"board": "zset bob=7 ada=15",
		"h":     "hash f=2 g=1",
		"s":     fmt.Sprintf("string v2 at %d", at),
	}
	checkBoth(t, b, n, want)
}

// show is a key's state in a line, to compare the backend's with the
// node's.
func show(s State) string {
	var parts []string
	switch s.Kind {
	case String:
		parts = append(parts, string(s.Str))
	case Hash:
		for i := 0; i+1 < len(s.Fields); i += 2 {
			parts = append(parts, string(s.Fields[i])+"="+string(s.Fields[i+1]))
		}
	case ZSet: // in score order
		type m struct {
			name  string
			score float64
		}
		var ms []m
		for i := 0; i+1 < len(s.Fields); i += 2 {
			f, _ := strconv.ParseFloat(string(s.Fields[i+1]), 64)
			ms = append(ms, m{string(s.Fields[i]), f})
		}
		slices.SortFunc(ms, func(a, b m) int { return cmp.Or(cmp.Compare(a.score, b.score), strings.Compare(a.name, b.name)) })
		for _, e := range ms {
			parts = append(parts, e.name+"="+strconv.FormatFloat(e.score, 'g', -1, 64))
		}
	case Set, List:
		for _, v := range s.Members {
			parts = append(parts, string(v))
		}
	}
	out := s.Kind.String()
	if len(parts) > 0 {
		out += " " + strings.Join(parts, " ")
	}
	if s.At != 0 {
		out += fmt.Sprintf(" at %d", s.At)
	}
	return out
}

// checkBoth holds the backend's and the node's state of each key to want.
func checkBoth(t *testing.T, b *Bridge, n *node.Node, want map[string]string) {
	t.Helper()
	for k, w := range want {
		states, err := readSettled(context.Background(), b.r, []string{k})
		if err != nil {
			t.Fatal(err)
		}
		if got := show(states[0]); got != w {
			t.Errorf("backend %s: %s, want %s", k, got, w)
		}
		if got := show(FromRecord(n.Read([]byte(k)))); got != w {
			t.Errorf("node %s: %s, want %s", k, got, w)
		}
	}
}

// TestRemovalMeetsOwedRecord: a removal made in the backend while the node
// holds a peer's record of the same key the backend has not got yet is
// taken in (a field, a set member, a popped list element, the key), and is
// not undone by the write-back; a removed field's newer value from a peer,
// older than the removal as seen, goes too. A collection deleted there
// loses what it held there, and keeps the peer's elements it never held;
// a string deleted there is deleted, the peer's older value with it.
func TestRemovalMeetsOwedRecord(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	c.HSet(ctx, "h", "a", "1", "b", "1")
	c.SAdd(ctx, "set", "x", "y")
	c.RPush(ctx, "q", "j1", "j2", "j3")
	c.HSet(ctx, "gone", "a", "1")
	c.Set(ctx, "s", "v1", 0)
	keys := []string{"h", "set", "q", "gone", "s"}
	if err := b.pullIn(ctx, keys); err != nil {
		t.Fatal(err)
	}
	// Peers' records, owed to the backend.
	hset(t, n, "h", "c", "1")
	hset(t, n, "h", "b", "2")
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		if err := l.EditTyped([]byte("set"), node.TypedEdit{Kind: record.KindSet, Add: [][]byte{[]byte("z")}}); err != nil {
			return err
		}
		return l.EditList([]byte("q"), node.ListEdit{Tail: [][]byte{[]byte("p")}})
	}); err != nil {
		t.Fatal(err)
	}
	hset(t, n, "gone", "b", "1")
	if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.SetString([]byte("s"), []byte("v2"), 0) }); err != nil {
		t.Fatal(err)
	}
	// Meanwhile, in the backend:
	c.HDel(ctx, "h", "a", "b")
	c.SRem(ctx, "set", "x")
	c.LPop(ctx, "q")
	c.Del(ctx, "gone", "s")
	if err := b.pullIn(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, keys); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, b, n, map[string]string{
		"h":    "hash c=1",
		"set":  "set y z",
		"q":    "list j2 j3 p",
		"gone": "hash b=1",
		"s":    "none",
	})
}

// TestZIncrByAddsUp: a ZINCRBY made in the backend, told by its
// notification, is taken in as an increment, so that it adds up with an
// increment of the same member made concurrently elsewhere (here the node's
// own, the backend not yet having it); a ZADD is a score set.
func TestZIncrByAddsUp(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	zadd(t, n, "board", "ada", 10)
	zadd(t, n, "board", "bob", 1)
	if err := b.pushOut(ctx, []string{"board"}); err != nil {
		t.Fatal(err)
	}
	// Another site's increment, owed to the backend.
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditTyped([]byte("board"), node.TypedEdit{Kind: record.KindZSet, Incr: [][]byte{[]byte("ada")}, By: []float64{3}})
	})
	if err != nil {
		t.Fatal(err)
	}
	c.ZIncrBy(ctx, "board", 5, "ada")
	b.notes["board"] = notesIncr // as the zincr notification says
	if err := b.pullIn(ctx, []string{"board"}); err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, []string{"board"}); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, b, n, map[string]string{"board": "zset bob=1 ada=18"})

	// A ZADD (or a change whose notification was missed) sets the score.
	err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditTyped([]byte("board"), node.TypedEdit{Kind: record.KindZSet, Incr: [][]byte{[]byte("bob")}, By: []float64{1}})
	})
	if err != nil {
		t.Fatal(err)
	}
	c.ZAdd(ctx, "board", redis.Z{Score: 40, Member: "bob"})
	if err := b.pullIn(ctx, []string{"board"}); err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, []string{"board"}); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, b, n, map[string]string{"board": "zset ada=18 bob=40"})
	// A ZINCRBY of a member, or of a key, the backend did not hold counts
	// from 0, beside another site's increment owed.
	err = n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditTyped([]byte("fresh"), node.TypedEdit{Kind: record.KindZSet, Incr: [][]byte{[]byte("m")}, By: []float64{4}})
	})
	if err != nil {
		t.Fatal(err)
	}
	c.ZIncrBy(ctx, "fresh", 1, "m")
	b.notes["fresh"] = notesIncr
	if err := b.pullIn(ctx, []string{"fresh"}); err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, []string{"fresh"}); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, b, n, map[string]string{"fresh": "zset m=5"})
	// Increments without their amounts, or of a hash, are refused.
	for _, e := range []node.TypedEdit{
		{Kind: record.KindZSet, Incr: [][]byte{[]byte("ada")}},
		{Kind: record.KindHash, Incr: [][]byte{[]byte("ada")}, By: []float64{1}},
	} {
		if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.EditTyped([]byte("board"), e) }); err == nil {
			t.Fatalf("%+v: no error", e)
		}
	}
}

// TestZIncrNotifications: the listener tells a key changed by ZINCRBYs only
// from one a ZADD changed too, and the ZINCRBYs become the node's
// increments.
func TestZIncrNotifications(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	dir := t.TempDir()
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	c.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "m"})
	within(t, 5*time.Second, "z in the node", func() bool { return show(FromRecord(n.Read([]byte("z")))) == "zset m=1" })
	for range 5 {
		c.ZIncrBy(ctx, "z", 2, "m")
	}
	within(t, 5*time.Second, "the increments in the node", func() bool { return show(FromRecord(n.Read([]byte("z")))) == "zset m=11" })
	// Taken in as increments (counts that add up), not as a score set.
	if rec, _ := n.Read([]byte("z")); len(rec.Typed.ScoreCounts) == 0 {
		t.Fatal("the ZINCRBYs were taken in as a score set")
	}
	// A ZADD among them is a score set.
	c.ZIncrBy(ctx, "z", 2, "m")
	c.ZAdd(ctx, "z", redis.Z{Score: 100, Member: "m"})
	within(t, 5*time.Second, "the ZADD in the node", func() bool { return show(FromRecord(n.Read([]byte("z")))) == "zset m=100" })
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

// TestWritesOnlyWhatChanged: a key the backend holds as the bridge last
// wrote it gets only the node's changes (HSET/HDEL, SADD/SREM, ZADD/ZREM,
// pops and pushes at a list's ends, PEXPIREAT), not a rewrite of the whole
// key; a change of the same element made in the backend meanwhile stops
// the write, and an element removed whose name the bridge does not know
// makes it a whole write.
func TestWritesOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	n.OnCommit(b.committed)
	t.Cleanup(func() { n.OnCommit(nil) })
	keys := []string{"h", "set", "z", "q"}
	edit := func(fn func(l *node.LocalTx) error) {
		t.Helper()
		if err := n.UpdateLocal(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	var fields, members [][]byte
	var scores []float64
	for i := range 500 {
		fields = append(fields, []byte(fmt.Sprint("f", i)), []byte("v"))
		members = append(members, []byte(fmt.Sprint("m", i)))
		scores = append(scores, float64(i))
	}
	edit(func(l *node.LocalTx) error {
		if err := l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Set: fields}); err != nil {
			return err
		}
		if err := l.EditTyped([]byte("set"), node.TypedEdit{Kind: record.KindSet, Add: members}); err != nil {
			return err
		}
		if err := l.EditTyped([]byte("z"), node.TypedEdit{Kind: record.KindZSet, Add: members, Scores: scores}); err != nil {
			return err
		}
		return l.EditList([]byte("q"), node.ListEdit{Tail: members})
	})
	if err := b.pushOut(ctx, keys); err != nil {
		t.Fatal(err)
	}
	unlinks := func() string {
		for _, l := range strings.Split(c.Info(ctx, "commandstats").Val(), "\r\n") {
			if v, ok := strings.CutPrefix(l, "cmdstat_unlink:"); ok {
				return v
			}
		}
		return ""
	}
	before, deltas := unlinks(), b.st.deltas.Load()
	// The node's changes, as peers' records would bring them.
	at := time.Now().Add(time.Hour).UnixMilli()
	edit(func(l *node.LocalTx) error {
		if err := l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Set: [][]byte{[]byte("f1"), []byte("new"), []byte("g"), []byte("1")}, Del: [][]byte{[]byte("f2")}, At: at, WithExpiry: true}); err != nil {
			return err
		}
		if err := l.EditTyped([]byte("set"), node.TypedEdit{Kind: record.KindSet, Add: [][]byte{[]byte("x")}, Rem: [][]byte{[]byte("m3")}}); err != nil {
			return err
		}
		if err := l.EditTyped([]byte("z"), node.TypedEdit{Kind: record.KindZSet, Add: [][]byte{[]byte("m1"), []byte("y")}, Scores: []float64{0.1, math.Inf(1)}, Rem: [][]byte{[]byte("m4")}}); err != nil {
			return err
		}
		return l.EditList([]byte("q"), node.ListEdit{DropHead: 2, Head: [][]byte{[]byte("a"), []byte("b")}, Tail: [][]byte{[]byte("c")}})
	})
	if err := b.pushOut(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if got := b.st.deltas.Load() - deltas; got != 4 {
		t.Fatalf("%d keys written in part, want 4", got)
	}
	if after := unlinks(); after != before {
		t.Fatalf("keys written whole: UNLINK %s, was %s", after, before)
	}
	for _, k := range keys {
		states, err := readSettled(ctx, b.r, []string{k})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := show(states[0]), show(FromRecord(n.Read([]byte(k)))); got != want {
			t.Errorf("backend %s:\n%s\nnode:\n%s", k, got, want)
		}
	}
	if got := c.PExpireTime(ctx, "h").Val(); got != time.Duration(at)*time.Millisecond {
		t.Errorf("h's deadline %v, want %d", got, at)
	}

	// The backend's application changes f1 in the moment: the write stops,
	// and the change is taken in first; then the node's other changes are
	// written, in part still.
	hset(t, n, "h", "f1", "node")
	edit(func(l *node.LocalTx) error {
		return l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Del: [][]byte{[]byte("f7")}})
	})
	c.HSet(ctx, "h", "f1", "app")
	conflicts := b.st.conflicts.Load()
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if b.st.conflicts.Load() != conflicts+1 || c.HGet(ctx, "h", "f1").Val() != "app" {
		t.Fatalf("the write went over the backend's change: %q", c.HGet(ctx, "h", "f1").Val())
	}
	if err := b.pullIn(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if c.HGet(ctx, "h", "f1").Val() != "app" || c.HExists(ctx, "h", "f7").Val() {
		t.Fatalf("f1 = %q, want the backend's later write; f7 there: %v", c.HGet(ctx, "h", "f1").Val(), c.HExists(ctx, "h", "f7").Val())
	}
	if after := unlinks(); after != before {
		t.Fatalf("written whole after the conflict: UNLINK %s, was %s", after, before)
	}

	// A removal whose name the bridge did not keep: written whole.
	edit(func(l *node.LocalTx) error {
		return l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Del: [][]byte{[]byte("f5")}})
	})
	b.takeRemoved("h")
	deltas = b.st.deltas.Load()
	if err := b.pushOut(ctx, []string{"h"}); err != nil {
		t.Fatal(err)
	}
	if b.st.deltas.Load() != deltas || c.HExists(ctx, "h", "f5").Val() {
		t.Fatal("not written whole, or f5 still there")
	}
}

// commandCalls is cmdstat_NAME's calls in the backend's INFO commandstats
// (scripts' commands included).
func commandCalls(t *testing.T, c *redis.Client, name string) int64 {
	t.Helper()
	for _, l := range strings.Split(c.Info(context.Background(), "commandstats").Val(), "\r\n") {
		if v, ok := strings.CutPrefix(l, "cmdstat_"+name+":calls="); ok {
			n, _ := strconv.ParseInt(v[:strings.IndexByte(v, ',')], 10, 64)
			return n
		}
	}
	return 0
}

// TestOwnWritesNotReadBack: the notifications of the bridge's own writes
// are known by its scripts' markers, so a change of a large hash written
// to the backend is not read back whole (no HGETALL), while an
// application's change right after it is still taken in.
func TestOwnWritesNotReadBack(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	var fields [][]byte
	for i := range 500 {
		fields = append(fields, []byte(fmt.Sprint("f", i)), []byte("v"))
	}
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		return l.EditTyped([]byte("h"), node.TypedEdit{Kind: record.KindHash, Set: fields})
	})
	if err != nil {
		t.Fatal(err)
	}
	within(t, 5*time.Second, "hash in the backend", func() bool { return c.HLen(ctx, "h").Val() == 500 })
	reads, echoes, audits := commandCalls(t, c, "hgetall"), b.st.echoes.Load(), b.st.audits.Load()
	for i := range 20 {
		hset(t, n, "h", "f1", fmt.Sprint("node", i))
	}
	within(t, 5*time.Second, "the node's change in the backend", func() bool { return c.HGet(ctx, "h", "f1").Val() == "node19" })
	within(t, 5*time.Second, "echoes", func() bool { return b.st.echoes.Load() > echoes })
	c.HSet(ctx, "h", "f2", "app")
	c.Set(ctx, "probe", "1", 0)
	within(t, 5*time.Second, "the application's changes in the node", func() bool {
		rec, live := n.Read([]byte("h"))
		v, ok := rec.Typed.FieldValue([]byte("f2"))
		_, probe := nodeString(n, "probe")
		return live && ok && string(v) == "app" && probe
	})
	// One HGETALL: the read of the application's change (and one for each
	// audit that ran meanwhile, whose digest script reads the hash: the
	// subscription's confirmation may start one late).
	want := 1 + b.st.audits.Load() - audits
	if got := commandCalls(t, c, "hgetall") - reads; got < 1 || got > want {
		t.Fatalf("%d reads of the hash, want %d (the application's change, and audits)", got, want)
	}
}

// TestIncrByAddsUp: an INCRBY or a HINCRBY made in the backend, told by its
// notification, is taken in as an increment by the difference from the
// integer the backend held, so that it adds up with another site's
// increment owed to the backend; a SET among the changes, or a field that
// held no integer, is a value set.
func TestIncrByAddsUp(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	incr := func(key, field string, by int64) {
		t.Helper()
		var f []byte
		if field != "" {
			f = []byte(field)
		}
		if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error { return l.IncrBy([]byte(key), f, by) }); err != nil {
			t.Fatal(err)
		}
	}
	round := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			b.notes[k] = notesIncr // as the incrby or hincrby notifications say
		}
		if err := b.pullIn(ctx, keys); err != nil {
			t.Fatal(err)
		}
		if err := b.pushOut(ctx, keys); err != nil {
			t.Fatal(err)
		}
	}
	incr("hits", "", 10)
	incr("h", "n", 10)
	hset(t, n, "h", "s", "x")
	if err := b.pushOut(ctx, []string{"hits", "h"}); err != nil {
		t.Fatal(err)
	}
	// Another site's increments, owed to the backend, and the backend's.
	incr("hits", "", 3)
	incr("h", "n", 3)
	c.IncrBy(ctx, "hits", 5)
	c.Decr(ctx, "hits")
	c.HIncrBy(ctx, "h", "n", 5)
	c.HIncrBy(ctx, "h", "new", 2)
	round("hits", "h")
	checkBoth(t, b, n, map[string]string{"hits": "string 17", "h": "hash n=18 new=2 s=x"})
	if rec, _ := n.Read([]byte("hits")); len(rec.Typed.Counts) == 0 {
		t.Fatal("the INCRBYs were taken in as a value set")
	}
	// The backend's increment makes it what the node holds by another
	// site's: both count.
	incr("hits", "", 1)
	incr("h", "n", 1)
	c.Incr(ctx, "hits")
	c.HIncrBy(ctx, "h", "n", 1)
	round("hits", "h")
	checkBoth(t, b, n, map[string]string{"hits": "string 19", "h": "hash n=20 new=2 s=x"})
	// A key that did not exist in the backend counts from 0.
	incr("fresh", "", 4)
	incr("freshhash", "n", 4)
	c.Incr(ctx, "fresh")
	c.HIncrBy(ctx, "freshhash", "n", 1)
	round("fresh", "freshhash")
	checkBoth(t, b, n, map[string]string{"fresh": "string 5", "freshhash": "hash n=5"})
	// Of a key neither held: a counter in the node too.
	c.Incr(ctx, "new")
	c.HIncrBy(ctx, "newhash", "n", 3)
	round("new", "newhash")
	checkBoth(t, b, n, map[string]string{"new": "string 1", "newhash": "hash n=3"})
	for _, k := range []string{"new", "newhash"} {
		if rec, _ := n.Read([]byte(k)); len(rec.Typed.Counts) == 0 {
			t.Fatalf("%s: taken in as a value set", k)
		}
	}

	// A SET is a value set: the other site's increment owed goes.
	incr("hits", "", 1)
	c.Set(ctx, "hits", "100", 0)
	b.notes["hits"] = notesString // a set notification among them
	if err := b.pullIn(ctx, []string{"hits"}); err != nil {
		t.Fatal(err)
	}
	if err := b.pushOut(ctx, []string{"hits"}); err != nil {
		t.Fatal(err)
	}
	checkBoth(t, b, n, map[string]string{"hits": "string 100"})
	// Another site's HSET of the field, owed, and a HINCRBY in the
	// backend: the increment adds to the value set, as a HINCRBY
	// concurrent with an HSET does between nodes.
	hset(t, n, "h", "n", "50")
	c.HIncrBy(ctx, "h", "n", 1)
	round("h")
	checkBoth(t, b, n, map[string]string{"h": "hash n=51 new=2 s=x"})
	// A field that held no integer in the backend is set.
	c.HSet(ctx, "h", "s", "7")
	round("h")
	checkBoth(t, b, n, map[string]string{"h": "hash n=51 new=2 s=7"})
}

// TestIncrNotifications: INCRs and HINCRBYs made in the backend reach the
// node, by their notifications, as increments (counts that add up).
func TestIncrNotifications(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	for range 5 {
		c.Incr(ctx, "hits")
		c.HIncrBy(ctx, "h", "n", 2)
	}
	within(t, 5*time.Second, "the increments in the node", func() bool {
		return show(FromRecord(n.Read([]byte("hits")))) == "string 5" && show(FromRecord(n.Read([]byte("h")))) == "hash n=10"
	})
	for _, k := range []string{"hits", "h"} {
		if rec, _ := n.Read([]byte(k)); len(rec.Typed.Counts) == 0 {
			t.Fatalf("%s: the increments were taken in as a value set", k)
		}
	}
}

// TestIncrByFloatAddsUp: an INCRBYFLOAT or a HINCRBYFLOAT made in the
// backend, told by its notification, is taken in as a float increment from
// the number the backend held, so that it adds up with another site's
// increment owed to the backend; where the node holds what the backend
// held, it comes to hold the backend's result as Redis wrote it.
func TestIncrByFloatAddsUp(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	incr := func(key, field, was, now string) {
		t.Helper()
		var f []byte
		if field != "" {
			f = []byte(field)
		}
		if err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
			return l.IncrByFloat([]byte(key), f, []byte(was), []byte(now))
		}); err != nil {
			t.Fatal(err)
		}
	}
	round := func(keys ...string) {
		t.Helper()
		for _, k := range keys {
			b.notes[k] = notesIncr // as the incrbyfloat or hincrbyfloat notifications say
		}
		if err := b.pullIn(ctx, keys); err != nil {
			t.Fatal(err)
		}
		if err := b.pushOut(ctx, keys); err != nil {
			t.Fatal(err)
		}
	}
	incr("price", "", "0", "10.5")
	incr("h", "f", "0", "1.25")
	if err := b.pushOut(ctx, []string{"price", "h"}); err != nil {
		t.Fatal(err)
	}
	// Alone: the node holds the backend's result as written.
	c.IncrByFloat(ctx, "price", 0.1)
	c.HIncrByFloat(ctx, "h", "f", 0.1)
	round("price", "h")
	checkBoth(t, b, n, map[string]string{"price": "string 10.6", "h": "hash f=1.35"})
	// Another site's increments, owed to the backend, and the backend's.
	incr("price", "", "10.6", "12.6")
	incr("h", "f", "1.35", "2.35")
	c.IncrByFloat(ctx, "price", 0.5)
	c.IncrByFloat(ctx, "price", -0.25)
	c.HIncrByFloat(ctx, "h", "f", 3.5)
	c.HIncrByFloat(ctx, "h", "g", 0.5)
	round("price", "h")
	checkBoth(t, b, n, map[string]string{"price": "string 12.85", "h": "hash f=5.85 g=0.5"})
	for _, k := range []string{"price", "h"} {
		if rec, _ := n.Read([]byte(k)); len(rec.Typed.Counts) == 0 {
			t.Fatalf("%s: the INCRBYFLOATs were taken in as a value set", k)
		}
	}
	// An integer the backend held, incremented by a float; a key and a
	// field the backend did not hold count from 0.
	c.Set(ctx, "n", "10", 0)
	b.notes["n"] = notesString
	if err := b.pullIn(ctx, []string{"n"}); err != nil {
		t.Fatal(err)
	}
	incr("n", "", "10", "11")
	c.IncrByFloat(ctx, "n", 1.5)
	incr("fresh", "", "0", "2")
	c.IncrByFloat(ctx, "fresh", 0.5)
	c.HIncrByFloat(ctx, "freshhash", "f", 0.75)
	round("n", "fresh", "freshhash")
	checkBoth(t, b, n, map[string]string{"n": "string 12.5", "fresh": "string 2.5", "freshhash": "hash f=0.75"})
}

// TestFloatIncrNotifications: INCRBYFLOATs and HINCRBYFLOATs made in the
// backend reach the node, by their notifications, as float increments.
func TestFloatIncrNotifications(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	for range 5 {
		c.IncrByFloat(ctx, "price", 0.5)
		c.HIncrByFloat(ctx, "h", "f", 0.25)
	}
	within(t, 5*time.Second, "the increments in the node", func() bool {
		return show(FromRecord(n.Read([]byte("price")))) == "string 2.5" && show(FromRecord(n.Read([]byte("h")))) == "hash f=1.25"
	})
	for _, k := range []string{"price", "h"} {
		if rec, _ := n.Read([]byte(k)); len(rec.Typed.Counts) == 0 {
			t.Fatalf("%s: the increments were taken in as a value set", k)
		}
	}
}

// TestNotifiedStringsReadByMGet: strings an application SETs in the
// backend are read with one MGET a batch, not by the read script; a key
// whose base had a deadline, or that a notification says is no longer a
// plain string write, is read whole.
func TestNotifiedStringsReadByMGet(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	dir := t.TempDir()
	n := openNode(t, dir)
	b := startBridge(t, srv, n, dir)
	within(t, 5*time.Second, "take-in", func() bool { return b.takeIn.Done.Load() })
	c.Set(ctx, "timed", "t", time.Hour)
	within(t, 5*time.Second, "timed in the node", func() bool { _, ok := nodeString(n, "timed"); return ok })
	mgets, scripts := commandCalls(t, c, "mget"), commandCalls(t, c, "evalsha")
	for i := range 50 {
		c.Set(ctx, "k"+itoa(i), "v"+itoa(i), 0)
	}
	within(t, 5*time.Second, "the SETs in the node", func() bool { v, _ := nodeString(n, "k49"); return v == "v49" })
	if got := commandCalls(t, c, "mget") - mgets; got < 1 || got > 50 {
		t.Fatalf("%d MGETs for 50 SETs", got)
	}
	if got := commandCalls(t, c, "evalsha") - scripts; got != 0 {
		t.Fatalf("%d scripts run for the SETs, want none", got)
	}
	// SET KEEPTTL of a key with a deadline: read whole, the deadline kept.
	c.Do(ctx, "SET", "timed", "u", "KEEPTTL")
	within(t, 5*time.Second, "the SET KEEPTTL in the node", func() bool {
		rec, live := n.Read([]byte("timed"))
		s := FromRecord(rec, live)
		return string(s.Str) == "u" && s.At != 0
	})
	// A string replaced by a hash, and a SET of a key that then goes.
	c.Set(ctx, "k1", "x", 0)
	c.Del(ctx, "k1")
	c.HSet(ctx, "k1", "f", "v")
	c.Set(ctx, "k2", "y", 0)
	c.Del(ctx, "k2")
	within(t, 5*time.Second, "the hash and the delete in the node", func() bool {
		_, had := nodeString(n, "k2")
		return show(FromRecord(n.Read([]byte("k1")))) == "hash f=v" && !had
	})
}

func TestNotesOfEvents(t *testing.T) {
	for _, tc := range []struct {
		events []string
		want   notes
		kind   Kind
	}{
		{[]string{"set"}, notesString, String},
		{[]string{"set", "set", "append"}, notesString, String},
		{[]string{"incrby", "incrby"}, notesIncr | notesString, String},
		{[]string{"incrbyfloat", "set"}, notesString, String},
		{[]string{"set", "expire"}, 0, None},
		{[]string{"hincrby", "hincrbyfloat"}, notesIncr, Hash},
		{[]string{"zincr", "zadd"}, 0, ZSet},
		{[]string{"set", "del"}, 0, None},
		{[]string{"del", "hset"}, 0, Hash},
		{[]string{"rpush", "lpop"}, notesListEnds, List},
		{[]string{"rpush", "linsert"}, 0, List},
		{[]string{"srem", "del"}, 0, None},
		{[]string{"sadd"}, 0, Set},
	} {
		var got notes
		for i, e := range tc.events {
			got = got.with(e, i == 0)
		}
		if got&notesFlags != tc.want || got.kind() != tc.kind {
			t.Errorf("%v: notes %b kind %v, want %b %v", tc.events, got&notesFlags, got.kind(), tc.want, tc.kind)
		}
	}
}

// TestNotifiedKeysReadByType: a key whose last notification tells its type
// is read with that type's commands in one MULTI, not by the read script;
// one of another type by then is read by the script, rightly.
func TestNotifiedKeysReadByType(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	n := openNode(t, t.TempDir())
	b := newIdleBridge(t, srv, n)
	c.HSet(ctx, "h", "a", "1", "b", "2")
	c.SAdd(ctx, "s", "x", "y")
	c.ZAdd(ctx, "z", redisZ(1, "m"))
	c.RPush(ctx, "l", "p", "q")
	c.Set(ctx, "timed", "t", time.Hour)
	c.SAdd(ctx, "changed", "now a set")
	keys := []string{"h", "s", "z", "l", "timed", "changed", "gone"}
	ns := []notes{notes(Hash) << 4, notes(Set) << 4, notes(ZSet) << 4, notes(List) << 4, notesString | notes(String)<<4, notes(Hash) << 4, notes(List) << 4}
	b.shadow.Put(keyHash("timed"), base{Kind: uint8(String), Digest: 1, At: 1}) // a deadline in the base: not MGET
	scripts, execs := commandCalls(t, c, "evalsha"), commandCalls(t, c, "exec")
	states, _, err := b.readNotified(ctx, keys, ns)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hash a=1 b=2", "set x y", "zset m=1", "list p q", "string t", "set now a set", "none"}
	for i, s := range states {
		s.At = 0
		if got := show(s); got != want[i] {
			t.Errorf("%s: read %q, want %q", keys[i], got, want[i])
		}
	}
	if states[4].At == 0 {
		t.Error("timed: no deadline read")
	}
	if got := commandCalls(t, c, "exec") - execs; got != 1 {
		t.Errorf("%d MULTIs, want 1", got)
	}
	if got := commandCalls(t, c, "evalsha") - scripts; got != 1 {
		t.Errorf("%d scripts, want 1 (for the key whose type changed)", got)
	}
}
