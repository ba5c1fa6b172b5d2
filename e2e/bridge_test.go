package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// backendRedis is a redis-server a bridge keeps in sync, restartable empty
// on its port.
type backendRedis struct {
	addr string
	args []string
	bin  string
	cmd  *exec.Cmd
	c    *redis.Client
}

func startBackend(t *testing.T) *backendRedis {
	t.Helper()
	r := &backendRedis{bin: lookPath(t, "redis-server")}
	port := freePort(t)
	r.addr = fmt.Sprintf("127.0.0.1:%d", port)
	r.args = []string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}
	r.start(t)
	r.c = redis.NewClient(&redis.Options{Addr: r.addr, Protocol: 2})
	t.Cleanup(func() { r.c.Close(); r.kill() })
	return r
}

func (r *backendRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, r.args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "redis-server "+r.addr, func() bool {
		c := redis.NewClient(&redis.Options{Addr: r.addr, Protocol: 2, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err() == nil
	})
}

func (r *backendRedis) kill() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// contents reads every key of the backend: strings as their value, hashes
// and sets as their sorted fields or members, sorted sets as their members
// and scores in order, lists and streams as their elements.
func (r *backendRedis) contents(t *testing.T) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	keys, err := r.c.Keys(ctx, "*").Result()
	if err != nil {
		return nil
	}
	for _, k := range keys {
		switch r.c.Type(ctx, k).Val() {
		case "string":
			out[k] = r.c.Get(ctx, k).Val()
		case "hash":
			m := r.c.HGetAll(ctx, k).Val()
			var fs []string
			for f, v := range m {
				fs = append(fs, f+"="+v)
			}
			slices.Sort(fs)
			out[k] = "hash:" + strings.Join(fs, ",")
		case "set":
			ms := r.c.SMembers(ctx, k).Val()
			slices.Sort(ms)
			out[k] = "set:" + strings.Join(ms, ",")
		case "zset":
			var ms []string
			for _, z := range r.c.ZRangeWithScores(ctx, k, 0, -1).Val() {
				ms = append(ms, fmt.Sprint(z.Member, "=", z.Score))
			}
			out[k] = "zset:" + strings.Join(ms, ",")
		case "list":
			out[k] = "list:" + strings.Join(r.c.LRange(ctx, k, 0, -1).Val(), ",")
		case "stream":
			var es []string
			for _, m := range r.c.XRange(ctx, k, "-", "+").Val() {
				es = append(es, fmt.Sprint(m.ID, m.Values))
			}
			out[k] = "stream:" + strings.Join(es, ",")
		}
	}
	return out
}

func sameContents(a, b map[string]string) bool {
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

// TestBridgeThreeSites: three redis-servers, each beside its own node
// (redmesh serve --backend), the nodes in one mesh. Applications write only
// to their Redis.
func TestBridgeThreeSites(t *testing.T) {
	ctx := context.Background()
	r := []*backendRedis{startBackend(t), startBackend(t), startBackend(t)}
	r[0].c.Set(ctx, "seeded", "at-1", 0) // a populated Redis at the first start
	backend := func(i int) []string { return []string{"--backend", "redis://" + r[i].addr} }
	n0 := startMeshNode(t, t.TempDir(), 0, backend(0)...)
	n1 := startMeshNode(t, t.TempDir(), 0, append(backend(1), "--peer", n0.maddr())...)
	n2 := startMeshNode(t, t.TempDir(), 0, append(backend(2), "--peer", n0.maddr())...)
	nodes := []*meshNode{n0, n1, n2}
	waitConnected(t, 2, nodes...)
	readAt := func(i int, key string) string { return r[i].c.Get(ctx, key).Val() }
	top := t

	t.Run("INFO bridge", func(t *testing.T) {
		waitUntil(t, 10*time.Second, "take-in done", func() bool {
			in := n1.infoSection(t, "bridge")
			return in["bridge_link_status"] == "up" && in["bridge_sync_in_progress"] == "0" && in["bridge_audits"] != "0"
		})
		if in := n1.infoSection(t, "bridge"); in["bridge_backend"] != "redis://"+r[1].addr {
			t.Fatalf("INFO bridge: %v", in)
		}
	})
	t.Run("seeded dataset reaches every site", func(t *testing.T) {
		waitUntil(t, 20*time.Second, "seeded at #3", func() bool { return readAt(2, "seeded") == "at-1" })
	})
	t.Run("write at #1 readable at #3", func(t *testing.T) {
		start := time.Now()
		r[0].c.Set(ctx, "greeting", "hello", 0)
		waitUntil(t, 10*time.Second, "greeting at #3", func() bool { return readAt(2, "greeting") == "hello" })
		t.Logf("readable at #3 after %v", time.Since(start).Round(time.Millisecond))
	})
	t.Run("delete at #2 deletes everywhere", func(t *testing.T) {
		r[1].c.Set(ctx, "doomed", "x", 0)
		waitUntil(t, 10*time.Second, "doomed everywhere", func() bool { return readAt(0, "doomed") == "x" && readAt(2, "doomed") == "x" })
		r[1].c.Del(ctx, "doomed")
		waitUntil(t, 10*time.Second, "doomed gone everywhere", func() bool {
			return r[0].c.Exists(ctx, "doomed").Val() == 0 && r[2].c.Exists(ctx, "doomed").Val() == 0 &&
				n2.c.Exists(ctx, "doomed").Val() == 0
		})
	})
	t.Run("writes while bridge #3 is down reach #3 after restart", func(t *testing.T) {
		n2.stop(t)
		for i := range 20 {
			r[0].c.Set(ctx, fmt.Sprint("while-down:", i), i, 0)
		}
		r[0].c.Set(ctx, "greeting", "changed while #3 was down", 0)
		r[1].c.HSet(ctx, "while-down-hash", "f", "v")
		waitUntil(t, 10*time.Second, "the writes at #2", func() bool { return readAt(1, "while-down:19") == "19" })
		n2.restart(top, n2.args...) // the node outlives this subtest
		waitUntil(t, 20*time.Second, "the writes at #3", func() bool {
			return readAt(2, "while-down:19") == "19" && readAt(2, "greeting") == "changed while #3 was down" &&
				r[2].c.HGet(ctx, "while-down-hash", "f").Val() == "v"
		})
	})
	t.Run("concurrent HSETs of different fields both survive", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Go(func() { r[0].c.HSet(ctx, "profile", "name", "ada") })
		wg.Go(func() { r[1].c.HSet(ctx, "profile", "city", "london") })
		wg.Wait()
		for i := range r {
			waitUntil(t, 10*time.Second, fmt.Sprintf("both fields at #%d", i+1), func() bool {
				m := r[i].c.HGetAll(ctx, "profile").Val()
				return m["name"] == "ada" && m["city"] == "london"
			})
		}
		// Many at once: while one site's field travels, the other site's
		// Redis takes a new field of the same hash.
		for j := range 30 {
			wg.Go(func() { r[0].c.HSet(ctx, "busy", fmt.Sprint("a", j), j) })
			wg.Go(func() { r[1].c.HSet(ctx, "busy", fmt.Sprint("b", j), j) })
		}
		wg.Wait()
		for i := range r {
			waitUntil(t, 10*time.Second, fmt.Sprintf("60 fields at #%d", i+1), func() bool { return r[i].c.HLen(ctx, "busy").Val() == 60 })
		}
	})
	t.Run("sorted sets and lists", func(t *testing.T) {
		r[0].c.ZAdd(ctx, "board", redis.Z{Score: 10, Member: "ada"})
		r[0].c.RPush(ctx, "jobs", "j1", "j2")
		waitUntil(t, 10*time.Second, "board and jobs at #3", func() bool {
			return r[2].c.ZScore(ctx, "board", "ada").Val() == 10 &&
				slices.Equal(r[2].c.LRange(ctx, "jobs", 0, -1).Val(), []string{"j1", "j2"})
		})
		// Concurrent edits of different members, and pushes at two sites.
		var wg sync.WaitGroup
		wg.Go(func() {
			r[0].c.ZIncrBy(ctx, "board", 5, "ada")
			r[0].c.RPush(ctx, "jobs", "from1")
		})
		wg.Go(func() {
			r[1].c.ZAdd(ctx, "board", redis.Z{Score: 7, Member: "bob"})
			r[1].c.RPush(ctx, "jobs", "from2")
		})
		wg.Wait()
		for i := range r {
			waitUntil(t, 10*time.Second, fmt.Sprintf("both edits at #%d", i+1), func() bool {
				z := r[i].c.ZRangeWithScores(ctx, "board", 0, -1).Val()
				q := r[i].c.LRange(ctx, "jobs", 0, -1).Val()
				return len(z) == 2 && z[0].Member == "bob" && z[0].Score == 7 && z[1].Member == "ada" && z[1].Score == 15 &&
					len(q) == 4 && slices.Contains(q, "from1") && slices.Contains(q, "from2")
			})
		}
		waitUntil(t, 10*time.Second, "one order of jobs everywhere", func() bool {
			q := r[0].c.LRange(ctx, "jobs", 0, -1).Val()
			return slices.Equal(r[1].c.LRange(ctx, "jobs", 0, -1).Val(), q) && slices.Equal(r[2].c.LRange(ctx, "jobs", 0, -1).Val(), q)
		})
		// A pop at #3 pops everywhere; a member removed at #2 goes everywhere.
		head := r[2].c.LPop(ctx, "jobs").Val()
		r[1].c.ZRem(ctx, "board", "bob")
		for i := range r {
			waitUntil(t, 10*time.Second, fmt.Sprintf("pop and ZREM at #%d", i+1), func() bool {
				q := r[i].c.LRange(ctx, "jobs", 0, -1).Val()
				return len(q) == 3 && !slices.Contains(q, head) && r[i].c.ZCard(ctx, "board").Val() == 1
			})
		}
		// ZINCRBYs of one member at two sites at once add up.
		wg.Go(func() { r[0].c.ZIncrBy(ctx, "board", 2, "ada") })
		wg.Go(func() { r[2].c.ZIncrBy(ctx, "board", 3, "ada") })
		wg.Wait()
		for i := range r {
			waitUntil(t, 10*time.Second, fmt.Sprintf("both increments at #%d", i+1), func() bool {
				return r[i].c.ZScore(ctx, "board", "ada").Val() == 20
			})
		}
	})
	t.Run("increments at two sites add up", func(t *testing.T) { // INCRBYFLOAT's too
		r[0].c.Set(ctx, "hits", "100", 0)
		waitUntil(t, 10*time.Second, "hits at #2", func() bool { return r[1].c.Get(ctx, "hits").Val() == "100" })
		var wg sync.WaitGroup
		for _, i := range []int{0, 1} {
			wg.Go(func() {
				for range 20 {
					r[i].c.Incr(ctx, "hits")
					r[i].c.HIncrBy(ctx, "stats", "views", 2)
					r[i].c.IncrByFloat(ctx, "price", 0.5)
					r[i].c.HIncrByFloat(ctx, "stats", "load", 0.25)
				}
			})
		}
		wg.Wait()
		var hits, views, price, load string
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("hits %s, views %s, price %s, load %s (want 140, 80, 20, 10)", hits, views, price, load)
			}
		})
		for i := range r {
			waitUntil(t, 20*time.Second, fmt.Sprintf("every increment at #%d", i+1), func() bool {
				hits, views = r[i].c.Get(ctx, "hits").Val(), r[i].c.HGet(ctx, "stats", "views").Val()
				price, load = r[i].c.Get(ctx, "price").Val(), r[i].c.HGet(ctx, "stats", "load").Val()
				return hits == "140" && views == "80" && price == "20" && load == "10"
			})
		}
	})
	t.Run("streams carried whole, last writer wins", func(t *testing.T) {
		r[0].c.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: "1-1", Values: []string{"e", "one"}})
		waitUntil(t, 10*time.Second, "the stream at #3", func() bool {
			xs := r[2].c.XRange(ctx, "events", "-", "+").Val()
			return len(xs) == 1 && xs[0].Values["e"] == "one"
		})
		var wg sync.WaitGroup
		wg.Go(func() { r[0].c.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: "2-1", Values: []string{"e", "at1"}}) })
		wg.Go(func() { r[1].c.XAdd(ctx, &redis.XAddArgs{Stream: "events", ID: "2-2", Values: []string{"e", "at2"}}) })
		wg.Wait()
		waitUntil(t, 10*time.Second, "one stream everywhere", func() bool {
			a := r[0].c.XRange(ctx, "events", "-", "+").Val()
			same := func(i int) bool {
				b := r[i].c.XRange(ctx, "events", "-", "+").Val()
				return len(b) == len(a) && b[len(b)-1].ID == a[len(a)-1].ID
			}
			return len(a) == 2 && same(1) && same(2)
		})
	})
	t.Run("concurrent writes of one string end identical everywhere", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range r {
			wg.Go(func() {
				for j := range 20 {
					r[i].c.Set(ctx, "contended", fmt.Sprintf("site%d-%d", i+1, j), 0)
				}
			})
		}
		wg.Wait()
		waitUntil(t, 20*time.Second, "one value everywhere", func() bool {
			v := readAt(0, "contended")
			return v != "" && readAt(1, "contended") == v && readAt(2, "contended") == v &&
				n0.c.Get(ctx, "contended").Val() == v && n1.c.Get(ctx, "contended").Val() == v && n2.c.Get(ctx, "contended").Val() == v
		})
	})
	t.Run("redis #2 restarted empty is refilled", func(t *testing.T) {
		r[1].kill()
		r[1].start(t)
		waitUntil(t, 20*time.Second, "#2 refilled", func() bool {
			want := r[0].contents(t)
			return len(want) > 20 && sameContents(r[1].contents(t), want)
		})
		if n0.c.Exists(ctx, "greeting").Val() != 1 {
			t.Fatal("the empty Redis deleted keys in the mesh")
		}
	})
	t.Run("all sites identical", func(t *testing.T) {
		waitUntil(t, 20*time.Second, "identical backends", func() bool {
			a := r[0].contents(t)
			return sameContents(a, r[1].contents(t)) && sameContents(a, r[2].contents(t))
		})
	})
}

// TestImport: `redmesh import` copies a Redis dataset into a data
// directory; a node started on it serves the same data, versioned.
func TestImport(t *testing.T) {
	ctx := context.Background()
	r := startBackend(t)
	for i := range 300 {
		r.c.Set(ctx, fmt.Sprint("s:", i), i, 0)
	}
	r.c.Set(ctx, "ttl", "x", time.Hour)
	r.c.HSet(ctx, "h", "a", "1", "b", "2")
	r.c.SAdd(ctx, "set", "x", "y")
	r.c.RPush(ctx, "list", "a", "b", "a")
	r.c.ZAdd(ctx, "zs", redis.Z{Score: 1.5, Member: "m"}, redis.Z{Score: -2, Member: "n"})
	r.c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", Values: []string{"f", "v"}})
	dir := t.TempDir()
	out, err := runRedmesh(t, "import", "--data", dir, "redis://"+r.addr)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "imported 306 keys (306 written, 1 of unmodelled types carried whole, 0 unreadable skipped)") {
		t.Fatalf("import says:\n%s", out)
	}
	n := startNode(t, dir, "--no-mesh")
	c := n.client(t)
	want := r.contents(t)
	got := map[string]string{}
	for k, v := range want {
		switch {
		case strings.HasPrefix(v, "hash:"), strings.HasPrefix(v, "set:"), strings.HasPrefix(v, "zset:"), strings.HasPrefix(v, "list:"), strings.HasPrefix(v, "stream:"):
			got[k] = v // compared below
		default:
			got[k] = c.Get(ctx, k).Val()
		}
	}
	if !sameContents(got, want) {
		t.Fatal("the node does not serve what Redis holds")
	}
	if h := c.HGetAll(ctx, "h").Val(); h["a"] != "1" || h["b"] != "2" || len(h) != 2 {
		t.Fatalf("h = %v", h)
	}
	if m := c.SMembers(ctx, "set").Val(); len(m) != 2 {
		t.Fatalf("set = %v", m)
	}
	if l := c.LRange(ctx, "list", 0, -1).Val(); !slices.Equal(l, []string{"a", "b", "a"}) {
		t.Fatalf("list = %v", l)
	}
	if z := c.ZRangeWithScores(ctx, "zs", 0, -1).Val(); len(z) != 2 || z[0].Member != "n" || z[0].Score != -2 || z[1].Score != 1.5 {
		t.Fatalf("zs = %v", z)
	}
	// The node holds the stream whole, as a string its own clients see.
	if typ := c.Type(ctx, "stream").Val(); typ != "string" {
		t.Fatalf("stream is a %s in the node", typ)
	}
	if ttl := c.TTL(ctx, "ttl").Val(); ttl < 59*time.Minute {
		t.Fatalf("ttl's TTL = %v", ttl)
	}
	if v, err := c.Do(ctx, "MESH", "VERSION", "s:7").Slice(); err != nil || len(v) == 0 {
		t.Fatalf("MESH VERSION s:7 = %v, %v", v, err)
	}
}
