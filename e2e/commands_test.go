package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStringAndKeyCommands(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "a", "1", 0).Err())
	must(c.Set(ctx, "b", "2", time.Minute).Err())
	if v := c.Get(ctx, "a").Val(); v != "1" {
		t.Fatalf("GET a = %q", v)
	}
	if err := c.Get(ctx, "nope").Err(); err != redis.Nil {
		t.Fatalf("GET nope: %v, want nil reply", err)
	}
	if d := c.TTL(ctx, "b").Val(); d < 59*time.Second || d > time.Minute {
		t.Fatalf("TTL b = %v", d)
	}
	if n := c.DBSize(ctx).Val(); n != 2 {
		t.Fatalf("DBSIZE = %d", n)
	}
	if ok := c.SetNX(ctx, "a", "x", 0).Val(); ok {
		t.Fatal("SETNX on an existing key succeeded")
	}
	if old := c.SetArgs(ctx, "a", "new", redis.SetArgs{Get: true}).Val(); old != "1" {
		t.Fatalf("SET GET returned %q", old)
	}
	if n := c.Del(ctx, "a", "b", "zzz").Val(); n != 2 {
		t.Fatalf("DEL = %d", n)
	}
	if n := c.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("DBSIZE after DEL = %d", n)
	}
	if err := c.Do(ctx, "SET", "k", "v", "EX", "notanumber").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
		t.Fatalf("SET EX notanumber: %v", err)
	}
	if err := c.Do(ctx, "GET").Err(); err == nil || err.Error() != "ERR wrong number of arguments for 'get' command" {
		t.Fatalf("GET without a key: %v", err)
	}
}

func TestExpiryIsSweptAndCounted(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	// One pipeline, so that the keys are all written well within their
	// 200 ms however slow the machine's round trips are.
	pipe := c.Pipeline()
	for i := 0; i < 100; i++ {
		pipe.Set(ctx, fmt.Sprint("tmp", i), "v", 200*time.Millisecond)
	}
	pipe.Set(ctx, "keep", "v", 0)
	size := pipe.DBSize(ctx)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n := size.Val(); n != 101 {
		t.Fatalf("DBSIZE = %d, want 101", n)
	}
	// The active sweep removes keys nobody reads.
	deadline := time.Now().Add(10 * time.Second)
	for c.DBSize(ctx).Val() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("expired keys not swept: DBSIZE = %d", c.DBSize(ctx).Val())
		}
		time.Sleep(50 * time.Millisecond)
	}
	info := c.Info(ctx, "stats", "keyspace").Val()
	if !strings.Contains(info, "expired_keys:100") || !strings.Contains(info, "db0:keys=1,expires=0") {
		t.Fatalf("INFO after sweep:\n%s", info)
	}
}

func TestScanReturnsEveryKey(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	var want []string
	for i := 0; i < 1000; i++ {
		k := fmt.Sprintf("user:%d", i)
		want = append(want, k)
		c.Set(ctx, k, "v", 0)
		c.Set(ctx, fmt.Sprintf("other:%d", i), "v", 0)
	}
	c.Del(ctx, "user:7")
	want = slices.DeleteFunc(want, func(s string) bool { return s == "user:7" })

	var got []string
	var cursor uint64
	for i := 0; ; i++ {
		keys, next, err := c.Scan(ctx, cursor, "user:*", 50).Result()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, keys...)
		if next == 0 {
			break
		}
		if i > 10000 {
			t.Fatal("SCAN never ends")
		}
		cursor = next
	}
	slices.Sort(got)
	got = slices.Compact(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("SCAN MATCH user:* found %d keys, want %d", len(got), len(want))
	}
	if err := c.Do(ctx, "SCAN", "0", "COUNT", "0").Err(); err == nil || err.Error() != "ERR syntax error" {
		t.Fatalf("SCAN COUNT 0: %v", err)
	}
	if err := c.Do(ctx, "SCAN", "x").Err(); err == nil || err.Error() != "ERR invalid cursor" {
		t.Fatalf("SCAN x: %v", err)
	}
}

func TestConnectionCommands(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	if err := c.Do(ctx, "CLIENT", "SETNAME", "worker-1").Err(); err != nil {
		t.Fatal(err)
	}
	conn := c.Conn()
	defer conn.Close()
	conn.ClientSetName(ctx, "me")
	if name := conn.ClientGetName(ctx).Val(); name != "me" {
		t.Fatalf("CLIENT GETNAME = %q", name)
	}
	if id := conn.ClientID(ctx).Val(); id <= 0 {
		t.Fatalf("CLIENT ID = %d", id)
	}
	if err := conn.Do(ctx, "CLIENT", "SETNAME", "has space").Err(); err == nil {
		t.Fatal("a client name with a space was accepted")
	}
	if err := c.Do(ctx, "HELLO", "3").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPROTO") {
		t.Fatalf("HELLO 3: %v", err)
	}
	hello, err := c.Do(ctx, "HELLO", "2").Slice()
	if err != nil || hello[0] != "server" || hello[5] != int64(2) {
		t.Fatalf("HELLO 2 = %v, %v", hello, err)
	}
	if n := c.Do(ctx, "COMMAND", "COUNT").Val(); n.(int64) < 20 {
		t.Fatalf("COMMAND COUNT = %v", n)
	}
	info, err := c.Do(ctx, "COMMAND", "INFO", "get", "nosuch").Slice()
	if err != nil || len(info) != 2 || info[1] != nil || info[0].([]any)[0] != "get" {
		t.Fatalf("COMMAND INFO = %v, %v", info, err)
	}
	all := c.Info(ctx).Val()
	for _, section := range []string{"# Server", "# Persistence", "# Keyspace", "appendfsync:everysec", "redis_version:"} {
		if !strings.Contains(all, section) {
			t.Fatalf("INFO lacks %q:\n%s", section, all)
		}
	}
}

func TestSecondProcessOnSameDataFails(t *testing.T) {
	dir := t.TempDir()
	p := startNode(t, dir)
	p.client(t).Set(context.Background(), "k", "v", 0)
	out, err := exec.Command(binary, "serve", "--data", dir, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))).CombinedOutput()
	if err == nil {
		t.Fatalf("a second node on the same data directory started:\n%s", out)
	}
	if !strings.Contains(string(out), "data directory is in use by another process") {
		t.Fatalf("unclear error for a second process:\n%s", out)
	}
	if v := p.client(t).Get(context.Background(), "k").Val(); v != "v" {
		t.Fatalf("the first node lost its data: %q", v)
	}
}

func TestConfigFileAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(t.TempDir(), "redmesh.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data: %s\nlisten: %s\nfsync: always\nmax-clock-skew: 30s\n", dir, addr)), 0o600)

	p := &proc{t: t, addr: addr, dir: dir, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, "serve", "--config", cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	ctx := context.Background()
	var err error
	for i := 0; i < 500; i++ {
		if err = c.Set(ctx, "k", "v", 0).Err(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("node from config file not serving: %v\n%s", err, p.out)
	}
	if info := c.Info(ctx, "persistence").Val(); !strings.Contains(info, "appendfsync:always") {
		t.Fatalf("config file's fsync not applied:\n%s", info)
	}
	p.stop(t)
	if !strings.Contains(p.out.String(), "stopped") {
		t.Fatalf("no clean shutdown in the log:\n%s", p.out)
	}

	// An unknown setting is an error, not silently ignored.
	os.WriteFile(cfg, []byte("data: x\nlisten-typo: y\n"), 0o600)
	out, err := exec.Command(binary, "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown setting "listen-typo"`) {
		t.Fatalf("unknown config key: %v\n%s", err, out)
	}
}

// TestPipelinedCommandsAnswerInOrder sends long pipelines mixing writes,
// reads and errors, which the node runs in batched write-path steps, and
// checks every reply against the command it answers.
func TestPipelinedCommandsAnswerInOrder(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	pipe := c.Pipeline()
	var sets []*redis.StatusCmd
	var gets []*redis.StringCmd
	var bad []*redis.Cmd
	for i := 0; i < 500; i++ {
		sets = append(sets, pipe.Set(ctx, fmt.Sprint("p", i), fmt.Sprint("v", i), 0))
		gets = append(gets, pipe.Get(ctx, fmt.Sprint("p", i)))
		if i%50 == 0 {
			bad = append(bad, pipe.Do(ctx, "SET", "p", "x", "EX", "nope"))
		}
	}
	dels := pipe.Del(ctx, "p0", "p1", "nothere")
	pipe.Exec(ctx)
	for i := range sets {
		if sets[i].Err() != nil || gets[i].Val() != fmt.Sprint("v", i) {
			t.Fatalf("reply %d: SET %v, GET %q", i, sets[i].Err(), gets[i].Val())
		}
	}
	for _, b := range bad {
		if b.Err() == nil || b.Err().Error() != "ERR value is not an integer or out of range" {
			t.Fatalf("bad SET in a pipeline: %v", b.Err())
		}
	}
	if dels.Val() != 2 {
		t.Fatalf("DEL in a pipeline = %d", dels.Val())
	}
	if n := c.DBSize(ctx).Val(); n != 498 {
		t.Fatalf("DBSIZE = %d, want 498", n)
	}
	if v, err := c.Get(ctx, "p").Result(); err != redis.Nil {
		t.Fatalf("a refused SET wrote %q", v)
	}
}
