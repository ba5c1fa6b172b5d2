package node

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

func newTestBlocked(t *testing.T, id uint64, keys ...string) *blockedClient {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &blockedClient{id: id, keys: keys, conn: a, signal: make(chan struct{}, 1)}
}

// A write pokes only the first client blocked on the key; the one after it
// is poked when the first leaves, whatever it leaves for.
func TestBlockedClientsFirstComeFirstServed(t *testing.T) {
	var r blockedClients
	one := newTestBlocked(t, 1, "k", "j")
	two := newTestBlocked(t, 2, "k")
	three := newTestBlocked(t, 3, "j", "k", "k")
	r.add(one)
	r.add(two)
	r.add(three)
	if len(r.keys["k"]) != 3 {
		t.Fatalf("queue of k holds %d clients, want 3 (a key named twice queues once)", len(r.keys["k"]))
	}
	r.written([]wal.Entry{{Key: []byte("k")}})
	if !one.poked.Load() || two.poked.Load() || three.poked.Load() {
		t.Fatalf("pokes after a write: %v %v %v, want only the first", one.poked.Load(), two.poked.Load(), three.poked.Load())
	}
	r.remove(one)
	if !two.poked.Load() || !three.poked.Load() {
		t.Fatalf("the new first of k (2) and of j (3) must be poked when 1 leaves")
	}
	r.remove(two)
	r.remove(three)
	if r.count() != 0 || len(r.keys) != 0 || len(r.ids) != 0 {
		t.Fatalf("register not empty: %d, %v, %v", r.count(), r.keys, r.ids)
	}
	r.written([]wal.Entry{{Key: []byte("k")}}) // nobody blocked: nothing to do
}

func TestUnblockIDOnce(t *testing.T) {
	var r blockedClients
	b := newTestBlocked(t, 7)
	r.add(b)
	if r.unblockID(8, unblockTimeout) {
		t.Fatal("unblocked a client that is not blocked")
	}
	if !r.unblockID(7, unblockError) || r.unblockID(7, unblockTimeout) {
		t.Fatal("CLIENT UNBLOCK must succeed once")
	}
	if b.unblock.Load() != unblockError || !b.poked.Load() {
		t.Fatal("the reason is kept and the client poked")
	}
}

func TestParseBlockTimeout(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []struct {
		in   string
		want time.Duration // -1: forever
		err  string
	}{
		{"0", -1, ""}, {"1", time.Second, ""}, {"0.0001", time.Millisecond, ""}, {"1.5", 1500 * time.Millisecond, ""},
		{"-0.0001", -1, ""}, {"0x10", 16 * time.Second, ""}, {"1e-400", time.Millisecond, ""},
		{"-1", 0, errTimeoutNegative}, {"inf", 0, errTimeoutNegative}, {"1e20", 0, errTimeoutNegative}, {"1e400", 0, errTimeoutNegative},
		{"abc", 0, errTimeoutNotFloat}, {"", 0, errTimeoutNotFloat}, {" 1", 0, errTimeoutNotFloat}, {"nan", 0, errTimeoutNotFloat},
	} {
		until, err := parseBlockTimeout([]byte(c.in), now)
		switch {
		case c.err != "":
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %s", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.want == -1 && !until.IsZero(), c.want >= 0 && until.Sub(now) != c.want:
			t.Errorf("%q: until %v after now", c.in, until.Sub(now))
		}
	}
}

// Clients blocked at B are served by records merged from A (ApplyRemote),
// and many clients blocked on one key each get one element of many pushed
// at once, none twice: run with -race, this is the blocking path's
// concurrency (commit hook, pokes, retries, disconnects) in one process.
func TestBlockedClientsServedInProcess(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	b, cb := openPeer(t, t.TempDir())

	got := make(chan []string, 1)
	go func() {
		c := redis.NewClient(&redis.Options{Addr: b.Addr().String(), Protocol: 2})
		defer c.Close()
		r, _ := c.BZPopMin(ctx, 0, "q").Result()
		got <- []string{r.Key, fmt.Sprint(r.Member), fmt.Sprint(r.Score)}
	}()
	waitFor(t, 10*time.Second, "a blocked client at B", func() bool { return b.blocked.count() == 1 })
	if err := ca.ZAdd(ctx, "q", redis.Z{Score: 2, Member: "job"}).Err(); err != nil {
		t.Fatal(err)
	}
	reconcile(t, a, b)
	if r := <-got; fmt.Sprint(r) != "[q job 2]" {
		t.Fatalf("BZPOPMIN at B = %v", r)
	}

	// A client that goes away stops waiting and pops nothing.
	gone, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	gone.Write([]byte("*3\r\n$5\r\nBLPOP\r\n$1\r\nl\r\n$1\r\n0\r\n"))
	waitFor(t, 10*time.Second, "the BLPOP to block", func() bool { return b.blocked.count() == 1 })
	gone.Close()
	waitFor(t, 10*time.Second, "the closed client to stop waiting", func() bool { return b.blocked.count() == 0 })

	const clients = 8
	popped := make(chan string, clients)
	for range clients {
		go func() {
			c := redis.NewClient(&redis.Options{Addr: b.Addr().String(), Protocol: 2})
			defer c.Close()
			r, err := c.BLPop(ctx, 0, "l").Result()
			if err != nil {
				popped <- "error: " + err.Error()
				return
			}
			popped <- r[1]
		}()
	}
	waitFor(t, 10*time.Second, "every client blocked", func() bool { return b.blocked.count() == clients })
	for i := range clients {
		if err := cb.RPush(ctx, "l", fmt.Sprint(i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range clients {
		v := <-popped
		if seen[v] || strings.HasPrefix(v, "error") {
			t.Fatalf("popped %q twice or failed", v)
		}
		seen[v] = true
	}
	if n, _ := cb.LLen(ctx, "l").Result(); n != 0 || b.blocked.count() != 0 {
		t.Fatalf("LLEN %d, %d still blocked", n, b.blocked.count())
	}
}

// A peer's push merged at B serves the client blocked there inside the
// merge's own step, so a pop that B's other client sends right after the
// merge finds nothing: as a local push serves the blocked first.
func TestMergedPushServesBlockedBeforeNextPop(t *testing.T) {
	ctx := context.Background()
	a, ca := openPeer(t, t.TempDir())
	b, cb := openPeer(t, t.TempDir())
	for i := range 20 {
		key := fmt.Sprint("l", i)
		got := make(chan string, 1)
		go func() {
			c := redis.NewClient(&redis.Options{Addr: b.Addr().String(), Protocol: 2})
			defer c.Close()
			r, err := c.BLPop(ctx, 0, key).Result()
			if err != nil {
				got <- err.Error()
				return
			}
			got <- r[1]
		}()
		waitFor(t, 10*time.Second, "a blocked client at B", func() bool { return b.blocked.count() == 1 })
		if err := ca.RPush(ctx, key, "v").Err(); err != nil {
			t.Fatal(err)
		}
		rec := record.Encode(a.db.Peek([]byte(key)))
		if _, err := b.ApplyRemote(ctx, []merkle.Record{{Key: []byte(key), Payload: rec}}, 0); err != nil {
			t.Fatal(err)
		}
		if v, err := cb.LPop(ctx, key).Result(); err != redis.Nil {
			t.Fatalf("round %d: LPOP right after the merge took %q (%v); the blocked client waited first", i, v, err)
		}
		if v := <-got; v != "v" {
			t.Fatalf("round %d: BLPOP at B = %q", i, v)
		}
	}
}
