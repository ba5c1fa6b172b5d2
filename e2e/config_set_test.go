package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestConfigSetTakesEffect: every setting CONFIG SET changes takes effect
// at once, CONFIG REWRITE writes them to the config file (keeping its
// comments), and a restart on that file keeps them.
func TestConfigSetTakesEffect(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conf := filepath.Join(dir, "redmesh.yaml")
	if err := os.WriteFile(conf, []byte("# a test node\ntimeout: 0 # never\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", conf, "--p2p-listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))}
	p := startNode(t, filepath.Join(dir, "data"), args...)
	admin := p.client(t)
	set := func(name, value string) {
		t.Helper()
		if err := admin.ConfigSet(ctx, name, value).Err(); err != nil {
			t.Fatalf("CONFIG SET %s %s: %v", name, value, err)
		}
	}
	get := func(c *redis.Client, name string) string {
		t.Helper()
		v, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", name, err)
		}
		return v[name]
	}

	// requirepass: new connections must AUTH; the admin's stays in.
	set("requirepass", "s3cret")
	admin = redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, Password: "s3cret"}) // its redials must AUTH
	defer admin.Close()
	raw := dialRaw(t, p.addr)
	if got, _ := raw.do("PING"); got != "-NOAUTH Authentication required." {
		t.Fatalf("PING after CONFIG SET requirepass = %q", got)
	}
	if got, _ := raw.do("AUTH s3cret"); got != "+OK" {
		t.Fatalf("AUTH = %q", got)
	}

	// maxclients: one more connection fits, the next is refused.
	clients := infoOf(t, admin, "clients")["connected_clients"]
	var n int
	fmt.Sscan(clients, &n)
	set("maxclients", fmt.Sprint(n+1))
	if got, _ := dialRaw(t, p.addr).do("AUTH s3cret"); got != "+OK" {
		t.Fatalf("connection %d of %d: %q", n+1, n+1, got)
	}
	if got, _ := dialRaw(t, p.addr).do("PING"); got != "-ERR max number of clients reached" {
		t.Fatalf("connection %d of %d: %q", n+2, n+1, got)
	}
	set("maxclients", "10000")

	// protected-mode (only clients beyond loopback would see it).
	set("protected-mode", "no")
	if got := get(admin, "protected-mode"); got != "no" {
		t.Fatalf("protected-mode = %q", got)
	}

	// loglevel: a protocol error is logged at debug level only.
	brokeProtocol := func() {
		t.Helper()
		c := dialRaw(t, p.addr)
		if got, _ := c.do("*abc"); !strings.HasPrefix(got, "-ERR Protocol error") {
			t.Fatalf("a bad request: %q", got)
		}
	}
	brokeProtocol()
	set("loglevel", "debug")
	if got := get(admin, "loglevel"); got != "debug" {
		t.Fatalf("loglevel = %q", got)
	}
	if strings.Contains(p.out.String(), "client broke the protocol") {
		t.Fatal("a debug line was logged at level info")
	}
	brokeProtocol()
	waitUntil(t, 5*time.Second, "the debug line", func() bool { return strings.Contains(p.out.String(), "client broke the protocol") })

	// sync-interval: the mesh runs its sessions at the new period.
	set("sync-interval", "300ms")
	if got := get(admin, "sync-interval"); got != "300ms" {
		t.Fatalf("sync-interval = %q", got)
	}

	// timeout: an idle connection is closed.
	set("timeout", "1")
	idle := dialRaw(t, p.addr)
	start := time.Now()
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.r.ReadByte(); err != io.EOF {
		t.Fatalf("an idle connection under timeout 1: %v after %v", err, time.Since(start))
	}
	set("timeout", "300")

	// Values are checked before any is applied, with Redis's reasons.
	err := admin.ConfigSet(ctx, "timeout", "5").Err()
	if err != nil {
		t.Fatal(err)
	}
	err = admin.Do(ctx, "CONFIG", "SET", "timeout", "7", "maxclients", "abc").Err()
	if err == nil || err.Error() != "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer" {
		t.Fatalf("CONFIG SET timeout 7 maxclients abc: %v", err)
	}
	if got := get(admin, "timeout"); got != "5" {
		t.Fatalf("a refused CONFIG SET changed timeout to %s", got)
	}
	set("timeout", "300")

	if err := admin.Do(ctx, "CONFIG", "REWRITE").Err(); err != nil {
		t.Fatalf("CONFIG REWRITE: %v", err)
	}
	b, _ := os.ReadFile(conf)
	for _, want := range []string{"# a test node", "timeout: 300 # never", "requirepass: s3cret", "protected-mode: no", "log-level: debug", "sync-interval: 300ms"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the rewritten config lacks %q:\n%s", want, b)
		}
	}

	p.stop(t)
	p = startNode(t, filepath.Join(dir, "data"), args...)
	c := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, Password: "s3cret"})
	defer c.Close()
	for name, want := range map[string]string{"timeout": "300", "requirepass": "s3cret", "protected-mode": "no", "loglevel": "debug", "sync-interval": "300ms", "maxclients": "10000"} {
		if got := get(c, name); got != want {
			t.Errorf("after a restart: %s = %q, want %q", name, got, want)
		}
	}
	if got, _ := dialRaw(t, p.addr).do("PING"); got != "-NOAUTH Authentication required." {
		t.Fatalf("PING without AUTH after a restart = %q", got)
	}
}

// TestHelpSubcommands: CONFIG HELP is Redis's, byte for byte; CLIENT and
// COMMAND HELP list what redmesh has, in Redis's form.
func TestHelpSubcommands(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir(), "--no-mesh")
	want := redisCLI(t, redisAddr, "CONFIG HELP\n")
	if got := redisCLI(t, p.addr, "CONFIG HELP\n"); got != want {
		t.Errorf("CONFIG HELP differs from Redis:\n%s\nRedis:\n%s", got, want)
	}
	for _, cmd := range []string{"CLIENT", "COMMAND"} {
		got := redisCLI(t, p.addr, cmd+" HELP\n")
		if !strings.HasPrefix(got, cmd+" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\n") || !strings.HasSuffix(got, "HELP\n    Prints this help.\n") {
			t.Errorf("%s HELP:\n%s", cmd, got)
		}
		// Every line is one of Redis's own.
		ref := redisCLI(t, redisAddr, cmd+" HELP\n")
		for _, l := range strings.Split(strings.TrimSpace(got), "\n") {
			if !strings.Contains(ref, l) && !strings.Contains(l, "SETINFO") && !strings.Contains(l, "LIB-") && !strings.Contains(l, "meta attr") {
				t.Errorf("%s HELP line %q is not Redis's", cmd, l)
			}
		}
	}
}
