package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKeyspaceCommands(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()

	// RENAME carries the value and the TTL; the source is gone.
	c.Set(ctx, "src", "v", time.Minute)
	if err := c.Rename(ctx, "src", "dst").Err(); err != nil {
		t.Fatal(err)
	}
	if c.Exists(ctx, "src").Val() != 0 || c.Get(ctx, "dst").Val() != "v" {
		t.Fatal("RENAME did not move the key")
	}
	wantTTL(t, c, "dst", 58*time.Second, time.Minute)
	c.Set(ctx, "other", "o", 0)
	if ok := c.RenameNX(ctx, "dst", "other").Val(); ok {
		t.Fatal("RENAMENX onto an existing key succeeded")
	}

	// COPY with REPLACE, and only DB 0.
	if n := c.Copy(ctx, "dst", "cp", 0, false).Val(); n != 1 {
		t.Fatalf("COPY = %d", n)
	}
	wantTTL(t, c, "cp", 58*time.Second, time.Minute)
	if n := c.Copy(ctx, "other", "cp", 0, false).Val(); n != 0 {
		t.Fatalf("COPY onto an existing key = %d", n)
	}
	if n := c.Copy(ctx, "other", "cp", 0, true).Val(); n != 1 || c.Get(ctx, "cp").Val() != "o" || c.TTL(ctx, "cp").Val() != -1 {
		t.Fatal("COPY REPLACE did not replace value and TTL")
	}
	wantErr(t, "COPY DB 1", c.Copy(ctx, "other", "cp", 1, true).Err(), "ERR DB index is out of range")
	wantErr(t, "COPY same", c.Copy(ctx, "cp", "cp", 0, true).Err(), "ERR source and destination objects are the same")

	// EXPIREAT / PEXPIREAT, EXPIRETIME / PEXPIRETIME.
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	if ok := c.ExpireAt(ctx, "other", at).Val(); !ok {
		t.Fatal("EXPIREAT failed")
	}
	if v := c.ExpireTime(ctx, "other").Val(); v != time.Duration(at.Unix())*time.Second {
		t.Fatalf("EXPIRETIME = %v, want %d s", v, at.Unix())
	}
	if v := c.Do(ctx, "PEXPIRETIME", "other").Val(); v != at.UnixMilli() {
		t.Fatalf("PEXPIRETIME = %v, want %d", v, at.UnixMilli())
	}
	if n := c.Do(ctx, "EXPIREAT", "other", at.Add(time.Hour).Unix(), "NX").Val(); n != int64(0) {
		t.Fatal("EXPIREAT NX on a key with a deadline succeeded")
	}
	if n := c.Do(ctx, "EXPIREAT", "other", at.Add(time.Hour).Unix(), "GT").Val(); n != int64(1) {
		t.Fatal("EXPIREAT GT with a later deadline failed")
	}
	if ok := c.PExpireAt(ctx, "other", time.Now().Add(-time.Second)).Val(); !ok {
		t.Fatal("PEXPIREAT in the past answered 0")
	}
	if c.Exists(ctx, "other").Val() != 0 {
		t.Fatal("PEXPIREAT in the past did not delete the key")
	}

	// KEYS, TOUCH, RANDOMKEY, UNLINK.
	c.FlushDB(ctx)
	var want []string
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("user:%02d", i)
		want = append(want, k)
		c.Set(ctx, k, "v", 0)
		c.Set(ctx, fmt.Sprintf("item:%02d", i), "v", 0)
	}
	keys := c.Keys(ctx, "user:*").Val()
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Fatalf("KEYS user:* = %v", keys)
	}
	if n := len(c.Keys(ctx, "*").Val()); n != 100 {
		t.Fatalf("KEYS * found %d keys", n)
	}
	if n := len(c.Keys(ctx, "user:[0-1]?").Val()); n != 20 {
		t.Fatalf("KEYS user:[0-1]? found %d keys", n)
	}
	if n := c.Touch(ctx, "user:01", "item:01", "none").Val(); n != 2 {
		t.Fatalf("TOUCH = %d", n)
	}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		k := c.RandomKey(ctx).Val()
		if c.Exists(ctx, k).Val() != 1 {
			t.Fatalf("RANDOMKEY answered %q, which does not exist", k)
		}
		seen[k] = true
	}
	if len(seen) < 5 {
		t.Fatalf("RANDOMKEY is not random: %v", seen)
	}
	if n := c.Unlink(ctx, "user:01", "user:02", "none").Val(); n != 2 {
		t.Fatalf("UNLINK = %d", n)
	}
	c.Del(ctx, "item:01")
	// Deleted keys are tombstones: RANDOMKEY and KEYS skip them.
	c.FlushAll(ctx)
	if err := c.RandomKey(ctx).Err(); err == nil {
		t.Fatal("RANDOMKEY on an empty keyspace answered a key")
	}
}

// TestFlushDeletesEveryKeyInSteps: FLUSHDB over more keys than one step
// deletes all of them, leaves the node writable, and is refused in MULTI.
func TestFlushDeletesEveryKeyInSteps(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	pipe := c.Pipeline()
	for i := 0; i < 3000; i++ {
		pipe.Set(ctx, fmt.Sprint("k", i), "v", 0)
	}
	pipe.Set(ctx, "ttl", "v", time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "FLUSHDB", "ASYNC").Err(); err != nil {
		t.Fatal(err)
	}
	if n := c.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("DBSIZE after FLUSHDB = %d", n)
	}
	if n := len(c.Keys(ctx, "*").Val()); n != 0 {
		t.Fatalf("KEYS after FLUSHDB found %d", n)
	}
	if strings.Contains(c.Info(ctx, "keyspace").Val(), "db0:") {
		t.Fatal("INFO keyspace still lists db0")
	}
	// A flushed key is a tombstone with a newer version: a new SET wins.
	c.Set(ctx, "k1", "again", 0)
	if v := c.Get(ctx, "k1").Val(); v != "again" {
		t.Fatalf("after FLUSHDB, SET then GET = %q", v)
	}
	wantErr(t, "FLUSHALL x", c.Do(ctx, "FLUSHALL", "x").Err(), "ERR syntax error")

	// Refused inside MULTI, which is then aborted, as Redis does for
	// commands it refuses there.
	conn := c.Conn()
	defer conn.Close()
	conn.Do(ctx, "MULTI")
	wantErr(t, "FLUSHALL in MULTI", conn.Do(ctx, "FLUSHALL").Err(), "ERR Command not allowed inside a transaction")
	wantErr(t, "EXEC", conn.Do(ctx, "EXEC").Err(), "EXECABORT Transaction discarded because of previous errors.")
	if v := c.Get(ctx, "k1").Val(); v != "again" {
		t.Fatalf("the aborted MULTI flushed: %q", v)
	}
}
