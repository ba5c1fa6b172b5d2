package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
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

	// maxmemory: over it, a write that adds data is refused; the refusal
	// itself is compared with Redis's in TestMaxMemoryMatchesRedis.
	set("maxmemory", "1")
	if err := admin.Set(ctx, "big", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM ") {
		t.Fatalf("SET under maxmemory 1: %v", err)
	}
	set("maxmemory", "1gb")
	if err := admin.Set(ctx, "big", "v", 0).Err(); err != nil {
		t.Fatalf("SET under maxmemory 1gb: %v", err)
	}
	if got := get(admin, "maxmemory"); got != "1073741824" {
		t.Fatalf("maxmemory = %q", got)
	}

	// shutdown-timeout: its effect on a shutdown is in
	// TestShutdownTimeoutAndNow.
	set("shutdown-timeout", "7")
	if got := get(admin, "shutdown-timeout"); got != "7" {
		t.Fatalf("shutdown-timeout = %q", got)
	}

	// protected-mode: its effect on clients beyond loopback is in
	// TestProtectedModeTakesEffect.
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

	// sync-interval: its effect on the mesh is in TestSyncIntervalTakesEffect.
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
	for _, want := range []string{"# a test node", "timeout: 300 # never", "requirepass: s3cret", "protected-mode: no", "log-level: debug", "sync-interval: 300ms", "maxmemory: 1gb", "shutdown-timeout: 7"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the rewritten config lacks %q:\n%s", want, b)
		}
	}

	p.stop(t)
	p = startNode(t, filepath.Join(dir, "data"), args...)
	c := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, Password: "s3cret"})
	defer c.Close()
	for name, want := range map[string]string{"timeout": "300", "requirepass": "s3cret", "protected-mode": "no", "loglevel": "debug", "sync-interval": "300ms", "maxclients": "10000",
		"maxmemory": "1073741824", "shutdown-timeout": "7"} {
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

// settableTested are the parameters CONFIG SET changes, each with the
// test that shows it takes effect.
var settableTested = map[string]string{
	"requirepass":            "TestConfigSetTakesEffect",
	"maxclients":             "TestConfigSetTakesEffect",
	"maxmemory":              "TestConfigSetTakesEffect, TestMaxMemoryMatchesRedis",
	"loglevel":               "TestConfigSetTakesEffect",
	"timeout":                "TestConfigSetTakesEffect",
	"shutdown-timeout":       "TestShutdownTimeoutAndNow",
	"protected-mode":         "TestProtectedModeTakesEffect",
	"sync-interval":          "TestSyncIntervalTakesEffect",
	"serve-stale-data":       "TestBootstrapResumesAfterKill",
	"appendfsync":            "TestConfig",
	"appendonly":             "TestConfig",
	"save":                   "TestConfigSetCoversEverySetting",
	"maxmemory-policy":       "TestConfigSetCoversEverySetting",
	"latency-tracking":       "TestConfigSetCoversEverySetting",
	"notify-keyspace-events": "TestConfigSetCoversEverySetting",
}

// TestConfigSetCoversEverySetting: every parameter CONFIG SET accepts has
// a test of its effect (settableTested), so a new one cannot go untested;
// those redmesh runs with one value of accept it and refuse any other.
func TestConfigSetCoversEverySetting(t *testing.T) {
	ctx := context.Background()
	p := startNode(t, t.TempDir(), "--p2p-listen", fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)))
	c := p.client(t)
	all, err := c.ConfigGet(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	settable := map[string]bool{}
	for name, value := range all {
		// Setting a parameter to the value it has changes nothing.
		err := c.ConfigSet(ctx, name, value).Err()
		switch {
		case err == nil:
			settable[name] = true
			if settableTested[name] == "" {
				t.Errorf("CONFIG SET %s works, but no test shows it takes effect (settableTested)", name)
			}
		case strings.HasSuffix(err.Error(), "- can't set immutable config"):
		default:
			t.Errorf("CONFIG SET %s to its value %q: %v", name, value, err)
		}
	}
	for name := range settableTested {
		if !settable[name] {
			t.Errorf("%s is listed as settable but CONFIG SET refuses it", name)
		}
	}
	for _, tc := range []struct{ name, value, why string }{
		{"save", "3600 1", "redmesh takes no snapshots; its write-ahead log is always on"},
		{"maxmemory-policy", "allkeys-lru", "redmesh evicts nothing: keys are shared with peers"},
		{"latency-tracking", "no", "latency is always tracked"},
		{"notify-keyspace-events", "KEA", "keyspace notifications are not supported"},
	} {
		wantErr(t, "CONFIG SET "+tc.name, c.ConfigSet(ctx, tc.name, tc.value).Err(),
			"ERR CONFIG SET failed (possibly related to argument '"+tc.name+"') - "+tc.why)
	}
}

// TestSyncIntervalTakesEffect: CONFIG SET sync-interval changes how often
// Merkle sessions run, at once (not after the old period's next round).
func TestSyncIntervalTakesEffect(t *testing.T) {
	b := startMeshNode(t, t.TempDir(), 0, "--sync-interval", "1h")
	a := startMeshNode(t, t.TempDir(), 0, "--sync-interval", "1h", "--peer", b.maddr())
	waitConnected(t, 1, a, b)
	sessions := func() int64 { return a.infoInt(t, "mesh_sessions") + b.infoInt(t, "mesh_sessions") }
	before := sessions()
	start := time.Now()
	for _, n := range []*meshNode{a, b} {
		if err := n.c.ConfigSet(context.Background(), "sync-interval", "100ms").Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, "sessions every 100ms", func() bool { return sessions() >= before+10 })
	t.Logf("10 sessions %v after CONFIG SET sync-interval 100ms (before: %d in all)", time.Since(start), before)
}

// TestProtectedModeTakesEffect: a node listening beyond loopback without a
// password refuses clients from beyond loopback until CONFIG SET
// protected-mode no, as Redis does.
func TestProtectedModeTakesEffect(t *testing.T) {
	var ext net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			ext = ipn.IP
			break
		}
	}
	if ext == nil {
		t.Skip("no IPv4 address beyond loopback to connect from")
	}
	port := freePort(t)
	p := startNode(t, t.TempDir(), "--no-mesh", "--listen", fmt.Sprintf("0.0.0.0:%d", port))
	extAddr := net.JoinHostPort(ext.String(), fmt.Sprint(port))
	got, _ := dialRaw(t, extAddr).do("PING")
	if !strings.HasPrefix(got, "-DENIED Redis is running in protected mode") {
		t.Fatalf("PING from %s in protected mode: %q", ext, got)
	}
	if err := p.client(t).ConfigSet(context.Background(), "protected-mode", "no").Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := dialRaw(t, extAddr).do("PING"); got != "+PONG" {
		t.Fatalf("PING from %s after CONFIG SET protected-mode no: %q", ext, got)
	}
}
