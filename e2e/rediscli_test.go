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
		// strings
		`SETNX a 1
SETNX a 2
GET a
SETEX b 100 v
TTL b
SETEX b 0 v
SETEX b -1 v
SETEX b abc v
SETEX b 100
PSETEX c 100000 v
TTL c
PSETEX c 0 v
GETSET a 10
GETSET a 11
GETSET nokey x
GET nokey
TTL b
GETSET b new
TTL b
GETDEL a
GETDEL a
EXISTS a
GETEX nokey2
GETEX nokey2 EX abc
GETEX nokey2 FOO
SET ge v
GETEX ge
GETEX ge EX 100
TTL ge
GETEX ge PX 200000
TTL ge
GETEX ge EXAT 99999999999
GETEX ge PERSIST
TTL ge
GETEX ge EX abc
GETEX ge EX 0
GETEX ge EX -1
GETEX ge PERSIST EX 10
GETEX ge EX 10 PX 10
GETEX ge EX 10 EX 20
TTL ge
GETEX ge KEEPTTL
GETEX ge NX
GETEX ge PXAT 1
GET ge
EXISTS ge
MSET k1 v1 k2 v2 k3 v3
MGET k1 k2 nokey k3
MSET k1
MSET k1 v1 k2
MSETNX k1 x k9 y
GET k9
MSETNX k8 x k9 y
MGET k8 k9
MSETNX k7 a k7 b
GET k7
MSET d 1 d 2
GET d
MGET
`,
		`APPEND s hello
APPEND s " world"
GET s
STRLEN s
STRLEN nokey
SET t v EX 100
APPEND t more
TTL t
GET t
GETRANGE s 0 4
GETRANGE s -5 -1
GETRANGE s -1 -5
GETRANGE s 5 3
GETRANGE s 0 100
GETRANGE s 100 200
GETRANGE s -100 2
GETRANGE nokey 0 -1
GETRANGE s x 1
GETRANGE s 0 y
SUBSTR s 0 2
SETRANGE s 6 Redis
GET s
SETRANGE s 20 tail
GET s
STRLEN s
SETRANGE new 3 abc
GET new
SETRANGE empty 5 ""
EXISTS empty
SETRANGE s 1 ""
SETRANGE s -1 x
SETRANGE s x x
SETRANGE big 536870912 x
APPEND
SETRANGE t 0 V
TTL t
GET t
`,
		// counters: INCR and friends, INCRBYFLOAT in long double
		`INCR n
INCR n
DECR n
INCRBY n 10
INCRBY n -3
DECRBY n 5
DECRBY n -5
INCRBY n abc
INCRBY n 1.5
INCRBY n 99999999999999999999
SET n 9223372036854775807
INCR n
INCRBY n 0
SET n -9223372036854775808
DECR n
DECRBY n 9223372036854775807
DECRBY x -9223372036854775808
SET s hello
INCR s
INCRBY s 1
SET s " 1"
INCR s
SET s 01
INCR s
SET s -0
INCR s
SET s +1
INCR s
SET s 007
INCR s
DECR s
INCRBY s 1
SET s 00
INCR s
SET s -07
INCR s
SET s "5 "
INCR s
SET s 9223372036854775808
INCR s
SET s 0
INCR s
INCRBY s 007
INCRBY s +5
INCRBY s -0
DECRBY s 007
DECRBY s " 1"
GET s
HSET hi a 007 b +5 c -0 d " 5" e 00 f 0 g -9223372036854775809
HINCRBY hi a 1
HINCRBY hi b 1
HINCRBY hi c 1
HINCRBY hi d 1
HINCRBY hi e 1
HINCRBY hi g 1
HINCRBY hi f 1
HINCRBY hi f 007
HINCRBY hi f +1
HINCRBY hi f -0
HINCRBY hi new 007
HGET hi f
SET e 10 EX 100
INCR e
TTL e
INCRBYFLOAT f 10.5
INCRBYFLOAT f 0.1
INCRBYFLOAT f -5
INCRBYFLOAT f 1.0e3
INCRBYFLOAT f 2e-3
INCRBYFLOAT g 0.1
INCRBYFLOAT g 0.2
INCRBYFLOAT g abc
INCRBYFLOAT g inf
INCRBYFLOAT g -inf
INCRBYFLOAT g nan
INCRBYFLOAT g " 1"
INCRBYFLOAT g "1 "
INCRBYFLOAT g 1_0
INCRBYFLOAT g 0x10
INCRBYFLOAT g 1e
INCRBYFLOAT g .5
INCRBYFLOAT g 5.
INCRBYFLOAT g +3
INCRBYFLOAT g 1e400
INCRBYFLOAT g -1e400
INCRBYFLOAT h 1e-20
INCRBYFLOAT h -1e-20
INCRBYFLOAT i 3
INCRBYFLOAT i 1.5e10
INCRBYFLOAT j 1e5000
SET s hello
INCRBYFLOAT s 1
SET e2 1.5 EX 100
INCRBYFLOAT e2 1
TTL e2
INCRBYFLOAT k 123456789.123456789
INCRBYFLOAT l -0.0
INCRBYFLOAT m 0x1p-2
INCRBYFLOAT m 1E2
INCRBYFLOAT mix 1
INCR mix
INCRBYFLOAT mix 0.5
INCR mix
GET mix
INCRBYFLOAT mix 0.5
INCR mix
DECRBY mix 7
GET mix
SET mix 3
INCRBYFLOAT mix 0.1
GET mix
STRLEN mix
GETRANGE mix 0 1
APPEND mix 5
GET mix
INCRBYFLOAT mix 1
DEL mix
INCRBYFLOAT mix 0.1
INCRBYFLOAT mix 0.1
INCRBYFLOAT mix 0.1
INCRBYFLOAT mix 0.1
INCRBYFLOAT mix 0.1
INCRBYFLOAT mix 0.1
INCRBYFLOAT mix 0.1
GET mix
INCRBYFLOAT mix -0.7
INCR mix
TYPE mix
SET mix 9223372036854775806
INCRBYFLOAT mix 0.5
INCRBYFLOAT mix 0.5
INCR mix
GET mix
INCRBYFLOAT wide 1e4000
SET wide 0
INCRBYFLOAT wide 1e-4000
INCRBYFLOAT wide 1e-20
INCRBYFLOAT wide 1
GET wide
SET ft 1.5 EX 100
INCRBYFLOAT ft 2.25
INCR ft
TTL ft
GETSET ft 7
INCRBYFLOAT ft 1e-3
GETDEL ft
EXISTS ft
`,
		// keyspace
		`SET a 1
SET b 2 EX 100
UNLINK a nokey
EXISTS a
RENAME b c
TTL c
GET c
EXISTS b
RENAME nokey x
RENAME c c
RENAMENX c c
RENAMENX nokey x
SET d 4
RENAMENX c d
RENAMENX c e
GET e
TTL e
RENAME e d
GET d
TTL d
COPY d f
GET f
TTL f
COPY d f
COPY d f REPLACE
COPY d d
COPY nokey g
COPY d g DB 0
COPY d h DB x
COPY d h FOO
COPY d h DB
COPY d h REPLACE REPLACE
TOUCH d f nokey
TOUCH
EXPIREAT d 99999999999
EXPIRETIME d
PEXPIRETIME d
PEXPIREAT d 99999999999000
PEXPIRETIME d
EXPIRETIME nokey
SET p v
EXPIRETIME p
PEXPIRETIME p
EXPIREAT p 99999999999 XX
EXPIREAT p 99999999999 NX
EXPIREAT p 99999999998 GT
EXPIREAT p 99999999998 LT
EXPIRETIME p
EXPIREAT p abc
EXPIREAT p 10 FOO
EXPIREAT p 1
EXISTS p
SET q v
PEXPIREAT q 1
GET q
SET r v
EXPIRE r 100
EXPIRE r abc FOO
EXPIRE r 9223372036854775807
PEXPIRE r 9223372036854775807
EXPIREAT r 9223372036854775807
PEXPIREAT r 9223372036854775807
PEXPIRETIME r
KEYS nomatch*
KEYS f
`,
		// server and connection commands
		`FLUSHALL
CONFIG GET port-nomatch
CONFIG GET save
CONFIG GET maxmemory
CONFIG GET timeout
CONFIG GET maxclients
CONFIG GET proto-max-bulk-len
CONFIG GET requirepass
CONFIG GET maxmemory-policy
CONFIG GET
CONFIG SET appendonly yes
CONFIG SET save ""
CONFIG SET maxmemory 0
CONFIG SET foo bar
CONFIG SET port
CONFIG SET appendonly yes save
CONFIG SET appendonly yes appendonly yes
CONFIG SET databases 2
CONFIG FOO
CONFIG
CONFIG RESETSTAT
CONFIG RESETSTAT x
CLIENT KILL 1.2.3.4:5
CLIENT KILL ID 0
CLIENT KILL ID abc
CLIENT KILL ID 99999
CLIENT KILL FOO bar
CLIENT KILL ADDR 1.2.3.4:5 SKIPME maybe
CLIENT KILL ADDR 1.2.3.4:5 SKIPME yes
CLIENT KILL TYPE foo
CLIENT KILL TYPE pubsub
CLIENT KILL ID 1 ADDR
CLIENT KILL USER nosuchuser
CLIENT LIST TYPE foo
CLIENT LIST TYPE pubsub
CLIENT LIST ID abc
CLIENT LIST FOO
CLIENT LIST ID 99999
CLIENT FOO
WAIT 0 0
WAIT x 0
WAIT 0 x
WAIT 0 -1
WAIT 0
TIME x
ECHO
ECHO hello
PING a b
RANDOMKEY
RANDOMKEY x
DBSIZE x
KEYS
KEYS *
SET only v
RANDOMKEY
KEYS *
KEYS o*
KEYS [a-o]nl?
FLUSHDB x
FLUSHDB sync x
FLUSHALL foo
FLUSHDB ASYNC
DBSIZE
GET only
SET a 1
FLUSHALL SYNC
EXISTS a
FLUSHALL
SET a 1 EX 10 EX 20 EX abc
SET a 1 EX abc FOO
SET a 1 PX 100 KEEPTTL
SET a 1 KEEPTTL PX 100
SET a 1 GET GET
SET a 1 NX NX
SET a 1 EXAT 99999999999 PXAT 1
SET a 1 PERSIST
SET a 1 EX
EXPIRE a abc FOO
INFO nosuchsection
INFO nosuch1 nosuch2
`,
		// the new commands inside MULTI
		`MULTI
SET n 1
INCR n
INCRBY n 5
INCRBYFLOAT n 0.5
APPEND s abc
SETRANGE s 1 X
GETRANGE s 0 -1
MSET a 1 b 2
MGET a b n
RENAME a c
COPY c d
GETDEL d
GETEX c EX 100
TTL c
EXPIRETIME nokey
TOUCH a b c
UNLINK b
INCR s
GETSET n x
EXEC
MULTI
WAIT 0 0
TIME x
CONFIG GET appendonly
EXEC
GET n
DBSIZE
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
