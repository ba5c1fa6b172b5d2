package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redisCLI feeds a script to redis-cli and returns what it printed.
func redisCLI(t *testing.T, addr, script string) string {
	t.Helper()
	host, port := hostPort(addr)
	cmd := exec.Command(lookPath(t, "redis-cli"), "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli: %v\n%s", err, out)
	}
	return string(out)
}

// TestRedisCLIBehavesAsRedis runs the same redis-cli sessions against a real
// redis-server and a redmesh node and requires the same output, line by line.
func TestRedisCLIBehavesAsRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())

	sessions := []string{
		`SET greeting hello
GET greeting
SET greeting world
GET greeting
GET missing
EXISTS greeting missing greeting
TYPE greeting
TYPE missing
DEL greeting missing
DEL greeting
GET greeting
EXISTS greeting
`,
		`SET k v
TTL k
PTTL k
EXPIRE k 100
TTL k
EXPIRE k 200 NX
EXPIRE k 300 XX
TTL k
EXPIRE k 100 GT
EXPIRE k 100 LT
TTL k
PERSIST k
PERSIST k
TTL k
TTL missing
PTTL missing
EXPIRE missing 10
SET k v2 EX 50
TTL k
SET k v3 KEEPTTL
TTL k
GET k
SET k v4
TTL k
PEXPIRE k 5000000
TTL k
EXPIRE k -1
GET k
EXISTS k
`,
		`SET a 1 NX
SET a 2 NX
GET a
SET b 1 XX
GET b
SET a 3 XX
GET a
SET a 4 GET
SET nothere 1 GET
SET a 5 NX GET
GET a
SET a 1 EX 0
SET a 1 EX -5
SET a 1 EX abc
SET a 1 EX 10 PX 100
SET a 1 NX XX
SET a 1 KEEPTTL EX 10
SET a 1 FOO
SET a
GET
GET a b
EXPIRE a notanumber
EXPIRE a 10 NX XX
EXPIRE a 10 GT LT
EXPIRE a 10 BOGUS
DEL
NOSUCHCOMMAND arg1 arg2
PING
PING hello
ECHO "hi there"
SELECT 0
SELECT x
DBSIZE
`,
		`MULTI
SET t1 a
GET t1
SET t1 b NX
EXPIRE t1 100
TTL t1
DEL t1 t2
GET t1
EXEC
EXEC
DISCARD
MULTI
MULTI
SET x 1
DISCARD
GET x
MULTI
SET x 1
GET
NOSUCH
EXEC
GET x
MULTI
SET y 1
SET y 2 EX notanumber
GET y
EXEC
`,
	}
	for i, script := range sessions {
		want := redisCLI(t, redisAddr, script)
		got := redisCLI(t, p.addr, script)
		if got != want {
			t.Errorf("session %d differs from Redis\n%s", i, diffLines(script, want, got))
		}
	}

	// Expiry in real time: a key set to live 300 ms is gone after it.
	script := "SET short v PX 300\nGET short\n"
	if got, want := redisCLI(t, p.addr, script), redisCLI(t, redisAddr, script); got != want {
		t.Fatalf("PX: %q vs Redis %q", got, want)
	}
	time.Sleep(400 * time.Millisecond)
	script = "GET short\nTTL short\nEXISTS short\n"
	if got, want := redisCLI(t, p.addr, script), redisCLI(t, redisAddr, script); got != want {
		t.Fatalf("after expiry: %q vs Redis %q", got, want)
	}
}

func diffLines(script, want, got string) string {
	var b strings.Builder
	cmds := strings.Split(strings.TrimSpace(script), "\n")
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl, cl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if i < len(cmds) {
			cl = cmds[i]
		}
		mark := "  "
		if wl != gl {
			mark = "!!"
		}
		b.WriteString(mark + " " + cl + "\n     redis:   " + wl + "\n     redmesh: " + gl + "\n")
	}
	return b.String()
}
