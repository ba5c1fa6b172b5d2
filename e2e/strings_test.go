package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// wantErr fails unless err is a Redis error reply with exactly this text.
func wantErr(t *testing.T, what string, err error, text string) {
	t.Helper()
	if err == nil || err.Error() != text {
		t.Fatalf("%s: error %v, want %q", what, err, text)
	}
}

// wantTTL fails unless key's TTL is within (lo, hi].
func wantTTL(t *testing.T, c *redis.Client, key string, lo, hi time.Duration) {
	t.Helper()
	d, err := c.TTL(context.Background(), key).Result()
	if err != nil || d <= lo || d > hi {
		t.Fatalf("TTL %s = %v, %v; want in (%v, %v]", key, d, err, lo, hi)
	}
}

func TestStringCommands(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()

	// SETNX, SETEX, PSETEX, GETSET, GETDEL.
	if ok := c.SetNX(ctx, "nx", "1", 0).Val(); !ok {
		t.Fatal("SETNX on a new key failed")
	}
	if ok := c.SetNX(ctx, "nx", "2", 0).Val(); ok {
		t.Fatal("SETNX on an existing key succeeded")
	}
	if err := c.SetEx(ctx, "ex", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	wantTTL(t, c, "ex", 58*time.Second, time.Minute)
	wantErr(t, "SETEX 0", c.Do(ctx, "SETEX", "ex", "0", "v").Err(), "ERR invalid expire time in 'setex' command")
	wantErr(t, "PSETEX -1", c.Do(ctx, "PSETEX", "ex", "-1", "v").Err(), "ERR invalid expire time in 'psetex' command")
	if err := c.Do(ctx, "PSETEX", "pex", "1500", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if d := c.PTTL(ctx, "pex").Val(); d <= time.Second || d > 1500*time.Millisecond {
		t.Fatalf("PTTL after PSETEX 1500 = %v", d)
	}
	if old, err := c.GetSet(ctx, "ex", "new").Result(); err != nil || old != "v" {
		t.Fatalf("GETSET = %q, %v", old, err)
	}
	if d := c.TTL(ctx, "ex").Val(); d != -1 {
		t.Fatalf("GETSET kept the TTL: %v", d)
	}
	if err := c.GetSet(ctx, "fresh", "x").Err(); err != redis.Nil {
		t.Fatalf("GETSET on a new key: %v, want nil", err)
	}
	if v, err := c.GetDel(ctx, "fresh").Result(); err != nil || v != "x" {
		t.Fatalf("GETDEL = %q, %v", v, err)
	}
	if err := c.GetDel(ctx, "fresh").Err(); err != redis.Nil {
		t.Fatalf("GETDEL twice: %v", err)
	}

	// GETEX.
	c.Set(ctx, "gx", "v", 0)
	if v := c.GetEx(ctx, "gx", time.Minute).Val(); v != "v" {
		t.Fatalf("GETEX EX = %q", v)
	}
	wantTTL(t, c, "gx", 58*time.Second, time.Minute)
	if v := c.Do(ctx, "GETEX", "gx", "PERSIST").Val(); v != "v" {
		t.Fatalf("GETEX PERSIST = %v", v)
	}
	if d := c.TTL(ctx, "gx").Val(); d != -1 {
		t.Fatalf("TTL after GETEX PERSIST = %v", d)
	}
	at := time.Now().Add(time.Hour).Unix()
	c.Do(ctx, "GETEX", "gx", "EXAT", at)
	if v := c.Do(ctx, "EXPIRETIME", "gx").Val(); v != at {
		t.Fatalf("EXPIRETIME after GETEX EXAT = %v, want %d", v, at)
	}
	if v := c.Do(ctx, "GETEX", "gx", "PXAT", time.Now().Add(-time.Second).UnixMilli()).Val(); v != "v" {
		t.Fatalf("GETEX PXAT in the past = %v, want the value", v)
	}
	if n := c.Exists(ctx, "gx").Val(); n != 0 {
		t.Fatal("GETEX PXAT in the past did not delete the key")
	}
	wantErr(t, "GETEX bad", c.Do(ctx, "GETEX", "nx", "EX", "0").Err(), "ERR invalid expire time in 'getex' command")
	wantErr(t, "GETEX syntax", c.Do(ctx, "GETEX", "nx", "EX", "1", "PERSIST").Err(), "ERR syntax error")

	// MGET, MSET, MSETNX.
	if err := c.MSet(ctx, "m1", "a", "m2", "b").Err(); err != nil {
		t.Fatal(err)
	}
	if vals := c.MGet(ctx, "m1", "none", "m2").Val(); len(vals) != 3 || vals[0] != "a" || vals[1] != nil || vals[2] != "b" {
		t.Fatalf("MGET = %v", vals)
	}
	if ok := c.MSetNX(ctx, "m2", "x", "m3", "y").Val(); ok {
		t.Fatal("MSETNX with an existing key succeeded")
	}
	if n := c.Exists(ctx, "m3").Val(); n != 0 {
		t.Fatal("MSETNX that failed set a key")
	}
	if ok := c.MSetNX(ctx, "m3", "x", "m4", "y").Val(); !ok {
		t.Fatal("MSETNX with new keys failed")
	}
	wantErr(t, "MSET odd", c.Do(ctx, "MSET", "a", "1", "b").Err(), "ERR wrong number of arguments for 'mset' command")

	// APPEND, STRLEN, GETRANGE, SETRANGE: value-only writes keep the TTL.
	c.Set(ctx, "s", "hello", time.Minute)
	if n := c.Append(ctx, "s", " world").Val(); n != 11 {
		t.Fatalf("APPEND = %d", n)
	}
	wantTTL(t, c, "s", 58*time.Second, time.Minute)
	if n := c.StrLen(ctx, "s").Val(); n != 11 {
		t.Fatalf("STRLEN = %d", n)
	}
	if v := c.GetRange(ctx, "s", -5, -1).Val(); v != "world" {
		t.Fatalf("GETRANGE = %q", v)
	}
	if n := c.SetRange(ctx, "s", 6, "redis").Val(); n != 11 {
		t.Fatalf("SETRANGE = %d", n)
	}
	if v := c.Get(ctx, "s").Val(); v != "hello redis" {
		t.Fatalf("after SETRANGE: %q", v)
	}
	wantTTL(t, c, "s", 58*time.Second, time.Minute)
	if n := c.SetRange(ctx, "pad", 3, "x").Val(); n != 4 {
		t.Fatalf("SETRANGE on a new key = %d", n)
	}
	if v := c.Get(ctx, "pad").Val(); v != "\x00\x00\x00x" {
		t.Fatalf("SETRANGE padding: %q", v)
	}
	wantErr(t, "SETRANGE too far", c.SetRange(ctx, "pad", 512<<20, "x").Err(),
		"ERR string exceeds maximum allowed size (proto-max-bulk-len)")
	wantErr(t, "SETRANGE negative", c.SetRange(ctx, "pad", -1, "x").Err(), "ERR offset is out of range")

	// Counters keep the TTL too.
	c.Set(ctx, "n", "10", time.Minute)
	if v := c.Incr(ctx, "n").Val(); v != 11 {
		t.Fatalf("INCR = %d", v)
	}
	if v := c.DecrBy(ctx, "n", 20).Val(); v != -9 {
		t.Fatalf("DECRBY = %d", v)
	}
	wantTTL(t, c, "n", 58*time.Second, time.Minute)
	wantErr(t, "INCR overflow", c.Do(ctx, "INCRBY", "n", "-9223372036854775800").Err(), "ERR increment or decrement would overflow")
	wantErr(t, "INCR text", c.Incr(ctx, "s").Err(), "ERR value is not an integer or out of range")
	if v := c.IncrByFloat(ctx, "f", 0.1).Val(); v != 0.1 {
		t.Fatalf("INCRBYFLOAT = %v", v)
	}
	if v := c.Do(ctx, "INCRBYFLOAT", "f", "0.2").Val(); v != "0.3" {
		t.Fatalf("INCRBYFLOAT 0.1+0.2 = %v, want 0.3 as Redis prints it", v)
	}
	wantErr(t, "INCRBYFLOAT inf", c.Do(ctx, "INCRBYFLOAT", "f", "inf").Err(), "ERR increment would produce NaN or Infinity")
	wantErr(t, "INCRBYFLOAT text", c.Do(ctx, "INCRBYFLOAT", "s", "1").Err(), "ERR value is not a valid float")
}

// TestCountersAreAtomicOnOneNode: INCR is read-modify-write inside the
// writer, so concurrent clients of one node lose no increment.
func TestCountersAreAtomicOnOneNode(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if err := c.Incr(ctx, "counter").Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// And through batched pipelines, with a failing command among them.
	pipe := c.Pipeline()
	c.Set(ctx, "text", "abc", 0)
	for i := 0; i < 100; i++ {
		pipe.IncrBy(ctx, "counter", 2)
		pipe.Incr(ctx, "text")
	}
	cmds, _ := pipe.Exec(ctx)
	wg.Wait()
	for i, cmd := range cmds {
		if i%2 == 0 && cmd.Err() != nil {
			t.Fatalf("pipelined INCRBY: %v", cmd.Err())
		}
		if i%2 == 1 && (cmd.Err() == nil || cmd.Err().Error() != "ERR value is not an integer or out of range") {
			t.Fatalf("pipelined INCR of text: %v", cmd.Err())
		}
	}
	if v := c.Get(ctx, "counter").Val(); v != "1000" {
		t.Fatalf("counter = %s, want 1000", v)
	}
	if v := c.Get(ctx, "text").Val(); v != "abc" {
		t.Fatalf("text = %q", v)
	}
}

// TestExpiredKeyReadsAsAbsent: a key past its deadline is absent to every
// command, before the sweep has removed it too.
func TestExpiredKeyReadsAsAbsent(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		c.Set(ctx, k, "5", 100*time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	checks := []struct {
		name string
		cmd  *redis.Cmd
		want any
	}{
		{"GET", c.Do(ctx, "GET", "a"), nil},
		{"EXISTS", c.Do(ctx, "EXISTS", "a"), int64(0)},
		{"STRLEN", c.Do(ctx, "STRLEN", "a"), int64(0)},
		{"GETRANGE", c.Do(ctx, "GETRANGE", "a", "0", "-1"), ""},
		{"TYPE", c.Do(ctx, "TYPE", "a"), "none"},
		{"TTL", c.Do(ctx, "TTL", "a"), int64(-2)},
		{"EXPIRETIME", c.Do(ctx, "EXPIRETIME", "a"), int64(-2)},
		{"MGET", c.Do(ctx, "MGET", "a"), []any{nil}},
		{"TOUCH", c.Do(ctx, "TOUCH", "a"), int64(0)},
		{"INCR", c.Do(ctx, "INCR", "b"), int64(1)},
		{"TTL after INCR", c.Do(ctx, "TTL", "b"), int64(-1)},
		{"APPEND", c.Do(ctx, "APPEND", "c", "x"), int64(1)},
		{"TTL after APPEND", c.Do(ctx, "TTL", "c"), int64(-1)},
		{"SETNX", c.Do(ctx, "SETNX", "d", "x"), int64(1)},
		{"COPY", c.Do(ctx, "COPY", "e", "e2"), int64(0)},
		{"GETDEL", c.Do(ctx, "GETDEL", "f"), nil},
		{"EXPIRE", c.Do(ctx, "EXPIRE", "g", "100"), int64(0)},
		{"KEYS", c.Do(ctx, "KEYS", "[efg]*"), []any{}},
	}
	for _, ch := range checks {
		v, err := ch.cmd.Result()
		if err == redis.Nil {
			v, err = nil, nil
		}
		if err != nil || fmt.Sprint(v) != fmt.Sprint(ch.want) {
			t.Errorf("%s on an expired key = %#v, %v; want %#v", ch.name, v, err, ch.want)
		}
	}
	wantErr(t, "RENAME", c.Rename(ctx, "e", "x").Err(), "ERR no such key")
}

func TestWrongNumberOfArguments(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	for _, args := range [][]any{
		{"SETNX", "a"}, {"SETEX", "a", "1"}, {"GETDEL"}, {"GETEX"}, {"MGET"}, {"MSETNX", "a"},
		{"APPEND", "a"}, {"STRLEN"}, {"GETRANGE", "a", "0"}, {"SETRANGE", "a", "0"}, {"INCR"},
		{"DECRBY", "a"}, {"INCRBYFLOAT", "a"}, {"UNLINK"}, {"RENAME", "a"}, {"COPY", "a"},
		{"EXPIREAT", "a"}, {"PEXPIRETIME"}, {"KEYS"}, {"RANDOMKEY", "x"}, {"TOUCH"}, {"TIME", "x"},
		{"WAIT", "0"}, {"CONFIG"},
	} {
		name := fmt.Sprint(args[0])
		err := c.Do(ctx, args...).Err()
		var want = "ERR wrong number of arguments for '" + strings.ToLower(name) + "' command"
		if err == nil || err.Error() != want {
			t.Errorf("%v: %v, want %q", args, err, want)
		}
	}
}
