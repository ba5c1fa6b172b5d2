package bridge

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/record"
)

// TestTakeInCopiesEveryModelledType imports a populated redis-server into
// a fresh node and reads every key back as the server holds it.
func TestTakeInCopiesEveryModelledType(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	c := srv.client(t)
	for i := range 2500 { // more than one SCAN batch
		c.Set(ctx, "s:"+itoa(i), "v"+itoa(i), 0)
	}
	c.Set(ctx, "ttl", "x", time.Hour)
	c.IncrBy(ctx, "counter", 41)
	c.HSet(ctx, "h", "f1", "a", "f2", "b")
	c.PExpire(ctx, "h", 90*time.Minute)
	c.SAdd(ctx, "set", "m1", "m2", "m3")
	c.RPush(ctx, "list", "x", "y", "x")
	c.ZAdd(ctx, "zs", redisZ(1, "a"), redisZ(0.1, "b"), redisZ(math.Inf(-1), "c"))
	c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", Values: []string{"f", "v"}})

	rdb, err := Dial(ctx, srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	n := openNode(t, t.TempDir())
	var stats TakeInStats
	if err := TakeIn(ctx, rdb, n, TakeInOptions{Count: 500}, &stats, quietLog()); err != nil {
		t.Fatal(err)
	}
	if got, want := stats.Scanned.Load(), int64(2500+7); got != want {
		t.Fatalf("scanned %d keys, want %d", got, want)
	}
	if stats.Skipped.Load() != 0 || stats.Whole.Load() != 1 || stats.Streams.Load() != 1 {
		t.Fatalf("skipped %d, carried whole %d (streams %d), want the stream whole", stats.Skipped.Load(), stats.Whole.Load(), stats.Streams.Load())
	}
	r, err := newReader(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"s:0", "s:2499", "ttl", "counter", "h", "set", "list", "zs", "stream"} {
		want, err := r.read(ctx, []string{k})
		if err != nil {
			t.Fatal(err)
		}
		rec, live := n.Read([]byte(k))
		if got := FromRecord(rec, live); got.Digest() != want[0].Digest() {
			t.Errorf("%s: node holds %+v, backend %+v", k, got, want[0])
		}
		if rec.Value.Version.IsZero() && rec.Typed == nil {
			t.Errorf("%s has no version", k)
		}
	}
	if rec, _ := n.Read([]byte("h")); rec.Kind() != record.KindHash || rec.Expiry.At == 0 {
		t.Errorf("h: kind %v deadline %d", rec.Kind(), rec.Expiry.At)
	}

	// Again, after changes: only the changes are written.
	c.HSet(ctx, "h", "f3", "c")
	c.Set(ctx, "s:7", "new", 0)
	var again TakeInStats
	if err := TakeIn(ctx, rdb, n, TakeInOptions{}, &again, quietLog()); err != nil {
		t.Fatal(err)
	}
	if got := again.Written.Load(); got != 2 {
		t.Fatalf("second take-in wrote %d keys, want 2", got)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func redisZ(score float64, m string) redis.Z { return redis.Z{Score: score, Member: m} }
