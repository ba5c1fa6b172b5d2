package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// respSession sends each line of script (words split on spaces, "" for an
// empty argument) as a RESP command and returns every raw reply, byte for
// byte.
func respSession(t *testing.T, addr, script string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		words := strings.Fields(line)
		var req bytes.Buffer
		fmt.Fprintf(&req, "*%d\r\n", len(words))
		for _, w := range words {
			if w == `""` {
				w = ""
			}
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(w), w)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		var reply bytes.Buffer
		if err := readReply(r, &reply); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out = append(out, reply.String())
	}
	return out
}

// readReply copies one whole RESP2 reply from r to w.
func readReply(r *bufio.Reader, w *bytes.Buffer) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	w.WriteString(line)
	n, _ := strconv.Atoi(strings.TrimRight(line[1:], "\r\n"))
	switch line[0] {
	case '$':
		if n >= 0 {
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				return err
			}
			w.Write(buf)
		}
	case '*':
		for range max(n, 0) {
			if err := readReply(r, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// compareRESP runs script against Redis and a node and reports every line
// whose reply differs.
func compareRESP(t *testing.T, redisAddr, nodeAddr, script string) {
	t.Helper()
	want := respSession(t, redisAddr, script)
	got := respSession(t, nodeAddr, script)
	lines := strings.Split(strings.TrimSpace(script), "\n")
	for i := range lines {
		if want[i] != got[i] {
			t.Errorf("%s\n   redis: %q\n    node: %q", lines[i], want[i], got[i])
		}
	}
}

// TestZSetCommandsMatchRedis: every sorted-set command, its options and its
// errors, byte for byte as redis-server answers.
func TestZSetCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	compareRESP(t, redisAddr, p.addr, zsetScript)
}

const zsetScript = `
ZADD z 1 a 2 b 3 c
ZADD z 1.5 a 4 d
ZADD z NX 10 a 5 e
ZADD z XX 10 a 6 f
ZADD z XX CH 11 a 6 f
ZADD z GT CH 1 a 20 b
ZADD z LT CH 1 a 20 c
ZADD z NX XX 1 a
ZADD z GT LT 1 a
ZADD z NX GT 1 a
ZADD z INCR 1 a 2 b
ZADD z 1 a 2
ZADD z
ZADD z x a
ZADD z nan a
ZADD z INCR 2.5 a
ZADD z INCR NX 1 a
ZADD z INCR XX 1 nothere
ZADD z INCR GT -1 a
ZADD z 1 a 1 a 2 a
ZSCORE z a
ZADD z CH 1 a 1 a 2 a
ZADD z +1.5e0 q
ZADD z "" q
ZADD z 1e400 q
ZADD z 0x10 hex
ZADD z inf big -inf small +inf big2 -Infinity small2
ZADD z 1.1 frac 0.1 tenth 1e100 huge 1e-7 tiny 123456789012345678 wide -0 negzero
ZRANGE z 0 -1 WITHSCORES
ZINCRBY z 2.5 a
ZINCRBY z x a
ZINCRBY z 1 newm
ZINCRBY z -inf big
ZINCRBY z 1 big
ZINCRBY z inf small
ZSCORE z a
ZSCORE z nothere
ZSCORE nokey a
ZMSCORE z a nothere b
ZMSCORE nokey a b
ZCARD z
ZCARD nokey
ZRANK z a
ZRANK z nothere
ZREVRANK z a
ZRANK nokey a
ZCOUNT z 1 3
ZCOUNT z (1 (3
ZCOUNT z -inf +inf
ZCOUNT z 3 1
ZCOUNT z x 1
ZCOUNT z "" 5
ZCOUNT z ( 5
ZCOUNT nokey 1 2
ZRANGE z 0 2
ZRANGE z -3 -1 WITHSCORES
ZRANGE z 5 2
ZRANGE z 0 100
ZRANGE z 100 200
ZRANGE z 0 -1 REV
ZRANGE z 0 2 REV WITHSCORES
ZRANGE z 1 5 BYSCORE
ZRANGE z (1 5 BYSCORE WITHSCORES
ZRANGE z 5 1 BYSCORE REV
ZRANGE z -inf +inf BYSCORE LIMIT 1 2
ZRANGE z -inf +inf BYSCORE LIMIT 1 -1
ZRANGE z -inf +inf BYSCORE LIMIT -1 2
ZRANGE z -inf +inf BYSCORE LIMIT 100 2
ZRANGE z +inf -inf BYSCORE REV LIMIT 2 3 WITHSCORES
ZRANGE z 0 1 LIMIT 0 1
ZRANGE z 0 1 LIMIT 0 -1
ZRANGE z 0 1 BYLEX
ZRANGE z [a [c BYLEX WITHSCORES
ZRANGE z 0 1 BYSCORE BYLEX
ZRANGE z 0 1 FOO
ZRANGE z x 1
ZRANGE z 0 1 LIMIT 0
ZRANGE nokey 0 -1
ZREVRANGE z 0 2 WITHSCORES
ZREVRANGE z 0 2 REV
ZREVRANGE z 0 2 BYSCORE
ZRANGEBYSCORE z 1 10 WITHSCORES
ZRANGEBYSCORE z 1 10 LIMIT 1 1
ZRANGEBYSCORE z 1 10 REV
ZRANGEBYSCORE z 1 x
ZREVRANGEBYSCORE z 10 1 WITHSCORES LIMIT 0 2
ZREVRANGEBYSCORE z (10 (1
ZADD lex 0 a 0 b 0 c 0 d 0 e 0 f 0 g
ZRANGEBYLEX lex - +
ZRANGEBYLEX lex [b (e
ZRANGEBYLEX lex (b [e LIMIT 1 2
ZRANGEBYLEX lex + -
ZRANGEBYLEX lex [e [b
ZRANGEBYLEX lex b e
ZRANGEBYLEX lex [b [e WITHSCORES
ZRANGEBYLEX lex -x +
ZREVRANGEBYLEX lex + -
ZREVRANGEBYLEX lex [e [b LIMIT 1 10
ZREVRANGEBYLEX lex (e - 
ZLEXCOUNT lex - +
ZLEXCOUNT lex [b (e
ZLEXCOUNT lex e f
ZLEXCOUNT nokey - +
ZRANGESTORE dst z 0 2
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z 1 10 BYSCORE LIMIT 0 2
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst lex [b [d BYLEX REV
ZRANGE dst 0 -1 WITHSCORES
ZRANGESTORE dst z 0 1 WITHSCORES
ZRANGESTORE dst nokey 0 -1
EXISTS dst
ZRANGESTORE dst z 10 5
TYPE z
TYPE lex
OBJECT ENCODING z
SET str x
ZADD str 1 a
ZSCORE str a
ZRANGE str 0 -1
ZRANGESTORE str z 0 0
TYPE str
ZREM z a a nothere
ZREM z nothere
ZREM nokey a
ZREM z
ZREMRANGEBYRANK z 0 0
ZREMRANGEBYRANK z -2 -1
ZREMRANGEBYRANK z 5 1
ZREMRANGEBYRANK z x 1
ZREMRANGEBYSCORE z (1 2
ZREMRANGEBYSCORE z x 2
ZREMRANGEBYLEX lex [a (c
ZREMRANGEBYLEX lex a c
ZRANGE lex 0 -1
ZRANGE z 0 -1 WITHSCORES
ZPOPMIN z
ZPOPMAX z 2
ZPOPMIN z 0
ZPOPMIN z -1
ZPOPMIN z x
ZPOPMIN z 1 2
ZPOPMIN nokey
ZPOPMAX nokey 3
ZPOPMIN str
ZADD p 1 a 2 b 3 c
ZMPOP 1 p MIN
ZMPOP 2 nokey p MAX COUNT 5
EXISTS p
ZMPOP 1 p MIN
ZMPOP 0 p MIN
ZMPOP 2 p MIN
ZMPOP 1 p FOO
ZMPOP 1 p MIN COUNT 0
ZMPOP 1 p MIN COUNT x
ZMPOP 1 p MIN COUNT 1 COUNT 2
ZMPOP x p MIN
ZMPOP 2 str p MIN
ZMPOP 9223372036854775807 p MIN
ZADD one 5 x
ZRANDMEMBER one -3 WITHSCORES
ZRANDMEMBER one -100000 WITHSCORES
ZRANDMEMBER one -2
ZADD r 1 a 2 b 3 c
ZRANDMEMBER nokey
ZRANDMEMBER nokey 5
ZRANDMEMBER r 3
ZRANDMEMBER r 10 WITHSCORES
ZRANDMEMBER r 0
ZRANDMEMBER r x
ZRANDMEMBER r 1 FOO
ZRANDMEMBER r -9223372036854775808
ZRANDMEMBER r 9223372036854775807 WITHSCORES
ZRANDMEMBER str
ZADD u1 1 a 2 b 3 c
ZADD u2 10 b 20 c 30 d
SADD s1 a d e
ZUNION 2 u1 u2
ZUNION 2 u1 u2 WITHSCORES
ZUNION 2 u1 u2 WEIGHTS 2 0.5 WITHSCORES
ZUNION 2 u1 u2 AGGREGATE MIN WITHSCORES
ZUNION 2 u1 u2 AGGREGATE MAX WITHSCORES
ZUNION 3 u1 u2 s1 WITHSCORES
ZUNION 2 u1 nokey WITHSCORES
ZUNION 0 u1
ZUNION 3 u1 u2
ZUNION x u1
ZUNION 2 u1 u2 WEIGHTS 1
ZUNION 2 u1 u2 WEIGHTS 1 x
ZUNION 2 u1 u2 AGGREGATE foo
ZUNION 2 u1 str
ZUNION 2 u1 str FOO
ZINTER 2 u1 u2 WITHSCORES
ZINTER 2 u1 u2 WEIGHTS 1 inf WITHSCORES
ZINTER 2 u1 u1 WITHSCORES
ZINTER 2 u1 s1 WITHSCORES
ZINTER 2 u1 nokey
ZINTERCARD 2 u1 u2
ZINTERCARD 2 u1 u2 LIMIT 1
ZINTERCARD 2 u1 u2 LIMIT -1
ZINTERCARD 2 u1 u2 LIMIT x
ZINTERCARD 0 u1
ZINTERCARD 2 u1 u2 WITHSCORES
ZDIFF 2 u1 u2 WITHSCORES
ZDIFF 2 u1 s1
ZDIFF 1 u1
ZDIFF 2 u1 u2 WEIGHTS 1 1
ZUNIONSTORE dst 2 u1 u2 WEIGHTS 1 -1
ZRANGE dst 0 -1 WITHSCORES
ZINTERSTORE dst 2 u1 u2 AGGREGATE MAX
ZRANGE dst 0 -1 WITHSCORES
ZDIFFSTORE dst 2 u1 u2
ZRANGE dst 0 -1 WITHSCORES
ZINTERSTORE dst 2 u1 nokey
EXISTS dst
ZUNIONSTORE dst 2 u1 u2 WITHSCORES
ZUNIONSTORE dst 0 u1
ZUNIONSTORE str 1 u1
TYPE str
ZSCAN u1 0
ZSCAN u1 0 MATCH a*
ZSCAN u1 0 COUNT 0
ZSCAN u1 x
ZSCAN nokey 0
ZADD sc 1e17 big 3 three 2.5 frac
ZSCAN sc 0
ZRANGE sc 0 -1 WITHSCORES
COPY u1 u1copy
ZRANGE u1copy 0 -1 WITHSCORES
RENAME u1copy u1moved
ZRANGE u1moved 0 -1 WITHSCORES
EXISTS u1copy
OBJECT ENCODING u1moved
ZADD longm 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
OBJECT ENCODING longm
DEL u1moved
ZCARD u1moved
ZADD z XX 1 a
ZADD gone XX 1 a
EXISTS gone
MULTI
ZADD m 1 a
ZINCRBY m 2 a
ZRANGE m 0 -1 WITHSCORES
EXEC
`

// TestLargeZSetMatchesRedis: a sorted set past Redis's listpack limit (and
// past the node's small form), read by rank, score and lex, changed, and
// scores spelled in C's ways.
func TestLargeZSetMatchesRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	var add, lex strings.Builder
	add.WriteString("ZADD big")
	lex.WriteString("ZADD lexbig")
	for i := range 400 {
		fmt.Fprintf(&add, " %d m%03d", (i*37)%101, i)
		fmt.Fprintf(&lex, " 0 w%03d", (i*53)%400)
	}
	script := add.String() + "\n" + lex.String() + `
ZCARD big
OBJECT ENCODING big
ZRANGE big 0 9 WITHSCORES
ZRANGE big 195 205 WITHSCORES
ZRANGE big -5 -1 WITHSCORES
ZREVRANGE big 0 4 WITHSCORES
ZRANGEBYSCORE big 10 12 WITHSCORES
ZRANGEBYSCORE big (10 (12 LIMIT 2 3
ZREVRANGEBYSCORE big 90 (80 LIMIT 1 5 WITHSCORES
ZCOUNT big 10 20
ZCOUNT big (10 20
ZCOUNT big -inf 0
ZRANK big m200
ZREVRANK big m200
ZRANK big m399
ZSCORE big m123
ZINCRBY big 1000 m005
ZINCRBY big -1000 m006
ZRANGE big 0 0 WITHSCORES
ZRANGE big -1 -1 WITHSCORES
ZRANK big m005
ZREM big m007 m008 nothere
ZCARD big
ZREMRANGEBYSCORE big 50 (52
ZREMRANGEBYRANK big 10 19
ZCARD big
ZPOPMAX big 3
ZPOPMIN big 2
ZMPOP 1 big MAX COUNT 2
ZRANGE big 100 104 WITHSCORES
ZRANGEBYLEX lexbig [w100 [w110
ZRANGEBYLEX lexbig (w390 +
ZREVRANGEBYLEX lexbig [w010 - LIMIT 2 3
ZLEXCOUNT lexbig [w100 (w200
ZREMRANGEBYLEX lexbig [w000 (w050
ZCARD lexbig
ZRANGE lexbig 0 2
ZRANGESTORE part big 0 9
ZRANGE part 0 -1 WITHSCORES
OBJECT ENCODING part
ZUNIONSTORE both 2 big lexbig WEIGHTS 2 1
ZCARD both
OBJECT ENCODING both
ZRANGE both 340 345 WITHSCORES
ZINTERCARD 2 big lexbig
ZDIFFSTORE d 2 big part
ZCARD d
ZADD f 1e-400 a
ZADD f 0x1p-1074 a 1. b .5 c -.5e-3 d Infinity e 1e308 g
ZADD f 5e x
ZADD f nan x
ZADD f -nan x
ZADD f 1e309 x
ZADD f 0x x
ZADD f 1_0 x
ZRANGE f 0 -1 WITHSCORES
ZSCAN f 0
ZCOUNT f 1e-400 1
ZCOUNT f -1e400 1e400
ZCOUNT f 0x10 +infinity
ZADD w 1 a 2 b
ZADD w2 -inf a inf b
ZUNION 2 w w2 WEIGHTS 0 1 WITHSCORES
ZUNION 2 w2 w2 WITHSCORES
ZINTER 2 w w2 WEIGHTS inf 0 WITHSCORES
ZINCRBY w2 -inf b
ZINCRBY w2 inf b
ZSCORE w2 b
ZADD w2 INCR -inf a
ZINCRBY w 0.1 a
ZINCRBY w 0.2 a
ZSCORE w a
ZINCRBY w 1e17 b
ZSCAN w 0
`
	compareRESP(t, redisAddr, p.addr, script)
}

// TestZSetMergesAcrossNodes builds concurrent sorted-set writes on purpose:
// node b runs alone (no mesh) while a writes, then rejoins. Of two ZADDs of
// one member the later score stays, ZINCRBYs at both nodes add up, a ZREM
// concurrent with a ZINCRBY leaves the increment it did not see, and a
// member added at one node survives a DEL of its key at the other.
func TestZSetMergesAcrossNodes(t *testing.T) {
	ctx := context.Background()
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)
	must := func(c *redis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	must(a.c, "ZADD", "lb", "1", "lww", "10", "inc", "5", "rem", "1", "pop", "2", "stay")
	must(a.c, "ZADD", "gone", "1", "x")
	must(a.c, "ZADD", "del", "1", "old")
	waitUntil(t, 20*time.Second, "b to hold a's writes", func() bool { return equalDumps(a.dump(t), b.dump(t)) })

	args := b.args
	b.kill()
	b.restart(t, "--no-mesh")
	// A version is a wall-clock millisecond (then a counter and the node):
	// a write meant to be the later one waits for the next millisecond.
	later := func() { time.Sleep(2 * time.Millisecond) }
	must(a.c, "ZADD", "lb", "100", "lww")
	later()
	must(b.c, "ZADD", "lb", "200", "lww") // later: its score stays
	must(a.c, "ZINCRBY", "lb", "2.5", "inc")
	must(b.c, "ZINCRBY", "lb", "4", "inc") // 10 + 2.5 + 4
	must(b.c, "ZINCRBY", "lb", "0.5", "inc")
	must(a.c, "ZREM", "lb", "rem")         // removes 5 and what it saw
	must(b.c, "ZINCRBY", "lb", "3", "rem") // this increment survives it
	must(a.c, "ZPOPMIN", "lb")             // both pop "pop": at least once
	must(b.c, "ZPOPMIN", "lb")
	must(a.c, "ZREM", "gone", "x")
	must(b.c, "ZREM", "gone", "x")
	must(a.c, "DEL", "del")              // removes "old" only
	must(b.c, "ZADD", "del", "7", "new") // survives the DEL
	must(a.c, "ZADD", "tc", "1", "m")    // a type conflict: the later write's
	later()                              // type shows on both nodes
	must(b.c, "SET", "tc", "string")

	b.kill()
	b.restart(t, args...)
	waitConnected(t, 1, a, b)
	var da map[string]keyState
	waitUntil(t, 30*time.Second, "a and b to converge", func() bool {
		da = a.dump(t)
		return equalDumps(da, b.dump(t))
	})
	want := map[string]string{
		"lb":   "zset:stay=2,rem=3,inc=17,lww=200",
		"del":  "zset:new=7",
		"tc":   "string",
		"gone": "",
	}
	for k, v := range want {
		got, ok := da[k]
		if v == "" {
			if ok {
				t.Errorf("%s = %q, want it gone", k, got.value)
			}
			continue
		}
		if got.value != v {
			t.Errorf("%s = %q, want %q", k, got.value, v)
		}
	}
}
