package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestServerCommandsMatchRedis compares with a Redis configured as redmesh
// runs: one database, append-only on, no snapshots.
func TestServerCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t, "--databases", "1", "--appendonly", "yes")
	p := startNode(t, t.TempDir())
	script := `SELECT 0
SELECT 1
SELECT -1
SELECT x
SET a 1
COPY a b DB 0
COPY a c DB 1
COPY a c DB 99999999999
CONFIG GET databases
CONFIG GET appendonly
CONFIG GET save
CONFIG GET APPENDONLY
CONFIG SET appendonly yes
CONFIG SET save ""
CONFIG SET appendonly yes save ""
CONFIG SET maxmemory 0
CONFIG SET appendonly yes nosuch 1
CONFIG SET nosuch 1 appendonly yes
CONFIG SET databases 1
CONFIG SET save "" databases 1
`
	want := redisCLI(t, redisAddr, script)
	got := redisCLI(t, p.addr, script)
	if got != want {
		t.Errorf("differs from Redis\n%s", diffLines(script, want, got))
	}
}

func TestInfo(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	c.Set(ctx, "a", "1", time.Hour)
	c.Set(ctx, "b", "1", 0)

	def := c.Info(ctx).Val()
	for _, want := range []string{
		"# Server\r\n", "redis_version:", "redis_mode:standalone", "run_id:", "tcp_port:",
		"# Clients\r\n", "connected_clients:1",
		"# Memory\r\n", "used_memory:", "used_memory_rss:", "maxmemory:0\r\n", "maxmemory_policy:noeviction",
		"# Persistence\r\n", "aof_enabled:1", "appendfsync:everysec",
		"# Stats\r\n", "total_commands_processed:", "keyspace_hits:",
		"# Replication\r\n", "role:master\r\n", "connected_slaves:0\r\n",
		"# CPU\r\n", "used_cpu_sys:",
		"# Keyspace\r\n", "db0:keys=2,expires=1,avg_ttl=",
	} {
		if !strings.Contains(def, want) {
			t.Errorf("INFO lacks %q", want)
		}
	}
	// avg_ttl is the mean time left: the one key's hour, less the moment since.
	if m := regexp.MustCompile(`avg_ttl=(\d+)\r\n`).FindStringSubmatch(def); m == nil {
		t.Error("INFO keyspace lacks avg_ttl")
	} else if ttl, _ := strconv.Atoi(m[1]); ttl > 3_600_000 || ttl < 3_590_000 {
		t.Errorf("avg_ttl=%d, want the hour left to the one key with a deadline", ttl)
	}
	if strings.Contains(def, "# Modules") {
		t.Error("default INFO has the Modules section")
	}
	if m := regexp.MustCompile(`used_memory:(\d+)`).FindStringSubmatch(def); m == nil || m[1] == "0" {
		t.Errorf("used_memory is not a positive number: %v", m)
	}
	if !strings.Contains(c.Info(ctx, "everything").Val(), "# Modules") {
		t.Error("INFO everything lacks Modules")
	}
	if all := c.Info(ctx, "all").Val(); strings.Contains(all, "# Modules") || !strings.Contains(all, "# Keyspace") {
		t.Error("INFO all is wrong")
	}
	one := c.Info(ctx, "REPLICATION").Val()
	if !strings.HasPrefix(one, "# Replication\r\n") || strings.Count(one, "# ") != 1 {
		t.Errorf("INFO replication:\n%s", one)
	}
	two := c.Info(ctx, "clients", "memory").Val()
	if strings.Count(two, "# ") != 2 || !strings.Contains(two, "# Clients") || !strings.Contains(two, "# Memory") {
		t.Errorf("INFO clients memory:\n%s", two)
	}
	if v := c.Info(ctx, "nosuch").Val(); v != "" {
		t.Errorf("INFO nosuch = %q", v)
	}

	// CONFIG RESETSTAT zeroes the counters.
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	stats := c.Info(ctx, "stats").Val()
	m := regexp.MustCompile(`total_commands_processed:(\d+)`).FindStringSubmatch(stats)
	if m == nil {
		t.Fatalf("no total_commands_processed:\n%s", stats)
	}
	if n, _ := strconv.Atoi(m[1]); n > 2 {
		t.Errorf("total_commands_processed after RESETSTAT = %d", n)
	}
}

// TestInfoCountsEveryConnection checks that INFO's command and keyspace
// counters, kept per connection, add up across connections and keep what a
// closed connection counted.
func TestInfoCountsEveryConnection(t *testing.T) {
	p := startNode(t, t.TempDir())
	ctx := context.Background()
	// stats reads INFO's counters in one INFO command.
	stats := func(c *redis.Client) map[string]int {
		t.Helper()
		info := c.Info(ctx, "stats").Val()
		out := map[string]int{}
		for _, name := range []string{"total_commands_processed", "keyspace_hits", "keyspace_misses"} {
			m := regexp.MustCompile(name + `:(\d+)`).FindStringSubmatch(info)
			if m == nil {
				t.Fatalf("INFO stats has no %s", name)
			}
			out[name], _ = strconv.Atoi(m[1])
		}
		return out
	}
	b := p.client(t)
	b.Set(ctx, "k", "v", 0)
	b.Get(ctx, "k")
	a := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, PoolSize: 1})
	aID := a.ClientID(ctx).Val()
	for range 3 {
		a.Get(ctx, "k")
		a.Get(ctx, "nosuch")
	}
	a.MGet(ctx, "k", "nosuch")
	before := stats(b)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// The node notices the close in its own time: poll until the
	// connection has left CLIENT LIST, counting the polls, which are
	// commands too.
	polls := 0
	waitUntil(t, 10*time.Second, "the closed connection to leave CLIENT LIST", func() bool {
		polls++
		return !strings.Contains(b.ClientList(ctx).Val(), fmt.Sprintf("id=%d ", aID))
	})
	after := stats(b)
	if after["keyspace_hits"] != 5 || after["keyspace_misses"] != 4 {
		t.Errorf("keyspace_hits %d, keyspace_misses %d; want 5 and 4", after["keyspace_hits"], after["keyspace_misses"])
	}
	// One more INFO, and the CLIENT LISTs.
	if want := before["total_commands_processed"] + 1 + polls; after["total_commands_processed"] != want {
		t.Errorf("total_commands_processed %d after a connection closed, %d before and %d CLIENT LISTs; want %d",
			after["total_commands_processed"], before["total_commands_processed"], polls, want)
	}
}

func TestConfig(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	_, port := hostPort(p.addr)
	got := c.ConfigGet(ctx, "port").Val()
	if got["port"] != port {
		t.Fatalf("CONFIG GET port = %v, want %s", got, port)
	}
	got = c.ConfigGet(ctx, "*").Val()
	for name, want := range map[string]string{
		"bind": "127.0.0.1", "appendonly": "yes", "appendfsync": "everysec", "save": "", "databases": "1",
		"maxmemory": "0", "maxclients": "10000", "timeout": "0", "proto-max-bulk-len": "536870912",
		"requirepass": "",
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("CONFIG GET * has %s = %q (present %v), want %q", name, v, ok, want)
		}
	}
	if got := c.ConfigGet(ctx, "max*").Val(); len(got) != 3 {
		t.Errorf("CONFIG GET max* = %v", got)
	}
	// A flat array of pairs, as RESP2 clients expect.
	if v := c.Do(ctx, "CONFIG", "GET", "timeout").Val(); fmt.Sprint(v) != "[timeout 0]" {
		t.Errorf("CONFIG GET timeout = %v", v)
	}
	if err := c.ConfigSet(ctx, "appendfsync", "everysec").Err(); err != nil {
		t.Errorf("CONFIG SET appendfsync to its value: %v", err)
	}
	wantErr(t, "CONFIG SET appendfsync always", c.ConfigSet(ctx, "appendfsync", "always").Err(),
		"ERR CONFIG SET failed (possibly related to argument 'appendfsync') - the durability mode is set at start (--fsync)")
	wantErr(t, "CONFIG SET appendonly no", c.ConfigSet(ctx, "appendonly", "no").Err(),
		"ERR CONFIG SET failed (possibly related to argument 'appendonly') - redmesh always keeps its write-ahead log")
	wantErr(t, "CONFIG SET port", c.ConfigSet(ctx, "port", "1").Err(),
		"ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config")
	wantErr(t, "CONFIG SET nosuch", c.ConfigSet(ctx, "nosuch", "1").Err(),
		"ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'")
}

// clientLineRE is Redis 7.2's CLIENT LIST line, field by field.
var clientLineRE = regexp.MustCompile(`^id=(\d+) addr=(\S+) laddr=\S+ fd=-?\d+ name=(\S*) age=\d+ idle=\d+ flags=[Nx] db=0 ` +
	`sub=0 psub=0 ssub=0 multi=-?\d+ qbuf=\d+ qbuf-free=\d+ argv-mem=\d+ multi-mem=\d+ rbs=\d+ rbp=\d+ obl=\d+ oll=\d+ ` +
	`omem=\d+ tot-mem=\d+ events=r cmd=(\S+) user=default redir=-1 resp=2 lib-name=(\S*) lib-ver=(\S*)$`)

// rawConn is a bare RESP connection, so that a test sees exactly what the
// server does to it (go-redis's pool would redial a killed connection).
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{Conn: conn, r: bufio.NewReader(conn)}
}

// do sends an inline command and returns the first line of its reply.
func (c *rawConn) do(cmd string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	line, err := c.r.ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func TestClientListAndKill(t *testing.T) {
	p := startNode(t, t.TempDir())
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, PoolSize: 1, ClientName: "admin"})
	defer admin.Close()
	victim := dialRaw(t, p.addr)
	if r, err := victim.do("CLIENT SETNAME victim"); r != "+OK" {
		t.Fatalf("CLIENT SETNAME: %q, %v", r, err)
	}
	victim.do("SET k v")

	list := admin.ClientList(ctx).Val()
	lines := strings.Split(strings.TrimSuffix(list, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("CLIENT LIST has %d lines:\n%s", len(lines), list)
	}
	var victimID, victimAddr string
	for _, l := range lines {
		m := clientLineRE.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("CLIENT LIST line not in Redis's format:\n%s", l)
		}
		switch m[3] {
		case "admin":
			if m[4] != "client|list" {
				t.Errorf("admin's cmd = %s", m[4])
			}
			if !strings.HasPrefix(m[5], "go-redis") {
				t.Errorf("admin's lib-name = %q", m[5])
			}
		case "victim":
			victimID, victimAddr = m[1], m[2]
			if m[4] != "set" {
				t.Errorf("victim's cmd = %s", m[4])
			}
		default:
			t.Errorf("unexpected client name %q", m[3])
		}
	}
	info := admin.ClientInfo(ctx)
	if info.Err() != nil || info.Val().Name != "admin" {
		t.Fatalf("CLIENT INFO = %+v, %v", info.Val(), info.Err())
	}
	if l := admin.Do(ctx, "CLIENT", "LIST", "ID", victimID).Val(); !strings.Contains(fmt.Sprint(l), "name=victim") || strings.Contains(fmt.Sprint(l), "name=admin") {
		t.Fatalf("CLIENT LIST ID %s = %v", victimID, l)
	}

	// Kill by ID: the victim's connection is closed.
	if n := admin.ClientKillByFilter(ctx, "ID", victimID).Val(); n != 1 {
		t.Fatalf("CLIENT KILL ID = %d", n)
	}
	if r, err := victim.do("PING"); err == nil {
		t.Fatalf("the killed connection still answers: %q", r)
	}
	// The old form, by address.
	victim2 := dialRaw(t, p.addr)
	victim2.do("PING")
	if err := admin.ClientKill(ctx, victim2.LocalAddr().String()).Err(); err != nil {
		t.Fatalf("CLIENT KILL addr: %v", err)
	}
	if r, err := victim2.do("PING"); err == nil {
		t.Fatalf("the connection killed by address still answers: %q", r)
	}
	wantErr(t, "CLIENT KILL unknown", admin.ClientKill(ctx, victimAddr).Err(), "ERR No such client")
	// SKIPME yes (the default) spares the caller; SKIPME no does not.
	if n := admin.ClientKillByFilter(ctx, "TYPE", "normal").Val(); n != 0 {
		t.Fatalf("CLIENT KILL TYPE normal killed %d (only the caller is left)", n)
	}
	self := dialRaw(t, p.addr)
	if r, _ := self.do("CLIENT KILL SKIPME no USER default MAXAGE 0 LADDR " + self.RemoteAddr().String()); r != ":2" {
		t.Fatalf("CLIENT KILL SKIPME no = %q, want :2 (admin and the caller)", r)
	}
	if r, err := self.do("PING"); err == nil {
		t.Fatalf("the caller that killed itself still answers: %q", r)
	}
}

func TestTimeWaitCommand(t *testing.T) {
	p := startNode(t, t.TempDir())
	c := p.client(t)
	ctx := context.Background()
	now, err := c.Time(ctx).Result()
	if err != nil || now.Sub(time.Now()).Abs() > 5*time.Second {
		t.Fatalf("TIME = %v, %v", now, err)
	}
	// A node without peers: WAIT 0 answers at once, WAIT 1 after its
	// timeout, both 0 (as Redis without replicas; WAIT 1 0 would block).
	start := time.Now()
	if n, err := c.Do(ctx, "WAIT", "0", "0").Int(); err != nil || n != 0 {
		t.Fatalf("WAIT 0 0 = %d, %v", n, err)
	}
	if n, err := c.Do(ctx, "WAIT", "1", "100").Int(); err != nil || n != 0 {
		t.Fatalf("WAIT 1 100 = %d, %v", n, err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("WAIT blocked past its timeout")
	}
	// COMMAND COUNT agrees with COMMAND, and COMMAND INFO with the table.
	all, err := c.Do(ctx, "COMMAND").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Do(ctx, "COMMAND", "COUNT").Val(); n != int64(len(all)) {
		t.Fatalf("COMMAND COUNT = %v, COMMAND lists %d", n, len(all))
	}
	info, err := c.Do(ctx, "COMMAND", "INFO", "mset", "wait", "getex").Slice()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"[mset -3 [write denyoom] 1 -1 2", "[wait 3 [noscript] 0 0 0", "[getex -2 [write fast] 1 1 1"}
	for i, w := range want {
		if !strings.HasPrefix(fmt.Sprint(info[i]), w) {
			t.Errorf("COMMAND INFO entry %d = %v, want prefix %s", i, info[i], w)
		}
	}
}

// TestMaxMemoryMatchesRedis: over maxmemory, commands that add data are
// refused with Redis's error, to the byte, inside MULTI and at EXEC too,
// while reads and deletes go on.
func TestMaxMemoryMatchesRedis(t *testing.T) {
	redisAddr := startRedis(t, "--databases", "1", "--appendonly", "yes")
	p := startNode(t, t.TempDir())
	setup := "SET a 1\nSET b 2\n"
	redisCLI(t, redisAddr, setup)
	redisCLI(t, p.addr, setup)
	script := `CONFIG SET maxmemory 1
CONFIG GET maxmemory
CONFIG GET maxmemory-policy
SET c 3
APPEND a x
INCR n
GET a
DEL b
EXISTS b
EXPIRE a 100
MULTI
SET d 4
GET a
EXEC
MULTI
GET a
EXEC
CONFIG SET maxmemory 0
SET c 3
GET c
`
	want := redisCLI(t, redisAddr, script)
	got := redisCLI(t, p.addr, script)
	if got != want {
		t.Errorf("differs from Redis\n%s", diffLines(script, want, got))
	}
	if !strings.Contains(got, "OOM command not allowed") {
		t.Fatalf("no OOM error:\n%s", got)
	}
	// A transaction queued before the limit is refused at EXEC.
	c := dialRaw(t, p.addr)
	for _, cmd := range []string{"MULTI", "SET x 1"} {
		if _, err := c.do(cmd); err != nil {
			t.Fatal(err)
		}
	}
	redisCLI(t, p.addr, "CONFIG SET maxmemory 1")
	if got, _ := c.do("EXEC"); got != "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'." {
		t.Fatalf("EXEC over maxmemory: %q", got)
	}
	if in := redisCLI(t, p.addr, "INFO memory"); !strings.Contains(in, "maxmemory:1\r") && !strings.Contains(in, "maxmemory:1\n") {
		t.Fatalf("INFO does not show maxmemory:\n%s", in)
	}
	if !strings.Contains(p.out.String(), "over maxmemory") {
		t.Fatalf("the node's log does not say it is over maxmemory:\n%s", p.out)
	}
}
