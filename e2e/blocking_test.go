package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBlockingCommandsMatchRedis: the blocking commands' arguments, errors,
// timeouts, and their non-blocking form inside MULTI, byte for byte as
// redis-server answers.
func TestBlockingCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	compareRESP(t, redisAddr, p.addr, blockingScript)
}

const blockingScript = `
BZPOPMIN k inf
BZPOPMIN k -inf
BZPOPMIN k 1e20
BZPOPMIN k 1e400
BZPOPMIN k 1e-400
BZPOPMIN k 0x10p-10
BZPOPMIN k abc
BZPOPMIN k ""
BZPOPMIN k -1
BZPOPMIN k nan
BZPOPMIN k 0.01
BZPOPMAX k k2 .02
BZPOPMIN k
BZMPOP 0.01 1 k MIN
BZMPOP x 1 k MIN
BZMPOP x 0 k MIN
BZMPOP 0.01 0 k MIN
BZMPOP 0.01 1 k MIN COUNT 0
BZMPOP 0.01 1 k MIN COUNT 1 COUNT 1
BZMPOP 0.01 1 k LEFT
BZMPOP -1 1 k MAX
BZMPOP 0.01 2 k MAX
BZMPOP 0.01 1 k
SET str x
BZPOPMIN str 0.01
BZPOPMIN k str 0.01
BZMPOP 0.01 2 k str MAX
ZADD k 1 a 2 b 3 c 4 d
BZPOPMIN str k 0
BZPOPMIN k str 0
BZPOPMAX k 0
BZPOPMAX nokey k 0
BZMPOP 0 2 nokey k MIN COUNT 5
EXISTS k
MULTI
BZPOPMIN nokey 0
BZPOPMAX nokey 0
BZMPOP 0 1 nokey MIN
EXEC
ZADD k 1 a 2 b
MULTI
BZPOPMIN k 0
BZMPOP 0 1 k MAX COUNT 2
EXEC
BLPOP l inf
BLPOP l 0.01
BRPOP l l2 0.01
BLPOP l
BLMOVE l d LEFT RIGHT 0.01
BLMOVE l d UP RIGHT 0.01
BLMOVE l d LEFT DOWN x
BLMOVE l d LEFT RIGHT x
BLMOVE l d LEFT RIGHT -1
BRPOPLPUSH l d 0.01
BRPOPLPUSH l d -1
BRPOPLPUSH l d
BLMPOP 0.01 1 l LEFT
BLMPOP x 1 l LEFT
BLMPOP x 0 l LEFT
BLMPOP 0.01 0 l LEFT
BLMPOP 0.01 1 l MIDDLE
BLMPOP 0.01 1 l LEFT COUNT 0
BLMPOP 0.01 1 l LEFT COUNT 2 x
BLPOP str 0.01
BRPOP l str 0.01
BLMOVE str d LEFT LEFT 0.01
BLMPOP 0.01 2 l str RIGHT
RPUSH l a b c d e f g
BLPOP str l 0
BLPOP l str 0
BRPOP nokey l 0
BLMOVE l str LEFT LEFT 0
BLMOVE l d LEFT RIGHT 0
BRPOPLPUSH l d 0
BLMPOP 0 2 nokey l RIGHT COUNT 2
BLMPOP 0 1 l LEFT COUNT 10
EXISTS l
LRANGE d 0 -1
MULTI
BLPOP nokey 0
BRPOP nokey 0
BLMOVE nokey d LEFT LEFT 0
BRPOPLPUSH nokey d 0
BLMPOP 0 1 nokey LEFT
BLMOVE d d LEFT RIGHT 0
EXEC
CLIENT UNBLOCK 99999
CLIENT UNBLOCK 99999 TIMEOUT
CLIENT UNBLOCK 99999 ERROR
CLIENT UNBLOCK 99999 FOO
CLIENT UNBLOCK abc
CLIENT UNBLOCK -5
CLIENT UNBLOCK
`

// blockConn is a RESP connection whose replies are read raw.
type blockConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialBlock(t *testing.T, addr string) *blockConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &blockConn{c: c, r: bufio.NewReader(c)}
}

func (rc *blockConn) send(t *testing.T, words ...string) {
	t.Helper()
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(words))
	for _, w := range words {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(w), w)
	}
	if _, err := rc.c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
}

func (rc *blockConn) reply(t *testing.T) string {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out bytes.Buffer
	if err := readReply(rc.r, &out); err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	return out.String()
}

func (rc *blockConn) do(t *testing.T, words ...string) string {
	t.Helper()
	rc.send(t, words...)
	return rc.reply(t)
}

// waitBlocked polls INFO until n clients are blocked.
func waitBlocked(t *testing.T, ctl *blockConn, n int) {
	t.Helper()
	waitUntil(t, 10*time.Second, fmt.Sprintf("%d blocked clients", n), func() bool {
		return strings.Contains(ctl.do(t, "INFO", "clients"), "blocked_clients:"+strconv.Itoa(n)+"\r\n")
	})
}

// blockingScenario runs the same scenario against a server and returns
// every reply the blocked clients got, in order.
func blockingScenario(t *testing.T, addr string) []string {
	ctl := dialBlock(t, addr)
	ctl.do(t, "FLUSHALL")
	id := func(rc *blockConn) string {
		return strings.TrimSpace(strings.TrimPrefix(rc.do(t, "CLIENT", "ID"), ":"))
	}
	var out []string

	// Served by a later write; two clients on one key in the order they
	// blocked, one element each; a third left waiting.
	a, b, c := dialBlock(t, addr), dialBlock(t, addr), dialBlock(t, addr)
	cID := id(c)
	a.send(t, "BZPOPMIN", "k", "0")
	waitBlocked(t, ctl, 1)
	b.send(t, "BZPOPMAX", "other", "k", "0")
	waitBlocked(t, ctl, 2)
	c.send(t, "BZMPOP", "0", "2", "k", "other", "MIN", "COUNT", "5")
	waitBlocked(t, ctl, 3)
	out = append(out, ctl.do(t, "ZADD", "k", "1", "x", "2", "y"))
	out = append(out, a.reply(t), b.reply(t))
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "ZADD", "other", "5", "p", "6", "q"))
	out = append(out, c.reply(t))
	waitBlocked(t, ctl, 0)

	// A key deleted, or made another type, leaves the client blocked (as
	// Redis 7.0 does); a later add serves it.
	a.send(t, "BZPOPMIN", "k", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "MULTI"), ctl.do(t, "ZADD", "k", "1", "gone"), ctl.do(t, "DEL", "k"), ctl.do(t, "EXEC"))
	out = append(out, ctl.do(t, "SET", "k", "string"), ctl.do(t, "DEL", "k"))
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "ZADD", "k", "3", "z"), a.reply(t))
	waitBlocked(t, ctl, 0)

	// CLIENT UNBLOCK: TIMEOUT answers as a timeout, ERROR with an error.
	c.send(t, "BZPOPMIN", "k", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "CLIENT", "UNBLOCK", cID), c.reply(t))
	c.send(t, "BZMPOP", "0", "1", "k", "MAX")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "CLIENT", "UNBLOCK", cID, "ERROR"), c.reply(t))
	out = append(out, ctl.do(t, "CLIENT", "UNBLOCK", cID, "ERROR"))

	// A timeout; then a client that goes away pops nothing.
	out = append(out, c.do(t, "BZPOPMIN", "k", "0.2"))
	d := dialBlock(t, addr)
	d.send(t, "BZPOPMIN", "k", "0")
	waitBlocked(t, ctl, 1)
	d.c.Close()
	waitBlocked(t, ctl, 0)
	out = append(out, ctl.do(t, "ZADD", "k", "1", "kept"), ctl.do(t, "ZCARD", "k"))

	// Lists: a BLMOVE served pushes on, and serves a client blocked on
	// its destination; BLMOVE's timeout is a null array, as Redis 7.0's.
	a.send(t, "BLPOP", "lk", "0")
	waitBlocked(t, ctl, 1)
	b.send(t, "BLMOVE", "lk", "ldst", "RIGHT", "LEFT", "0")
	waitBlocked(t, ctl, 2)
	c.send(t, "BRPOP", "ldst", "0")
	waitBlocked(t, ctl, 3)
	out = append(out, ctl.do(t, "RPUSH", "lk", "1", "2"), a.reply(t), b.reply(t), c.reply(t))
	waitBlocked(t, ctl, 0)
	out = append(out, ctl.do(t, "EXISTS", "lk", "ldst"))
	c.send(t, "BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "3")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "LPUSH", "l2", "p", "q", "r", "s"), c.reply(t))
	out = append(out, c.do(t, "BLMOVE", "nokey", "x", "LEFT", "LEFT", "0.1"), c.do(t, "BRPOPLPUSH", "nokey", "x", "0.1"))
	c.send(t, "BRPOPLPUSH", "lsrc", "ldst", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "CLIENT", "UNBLOCK", cID), c.reply(t))

	// A command pipelined behind a blocked one runs once it is served.
	b.send(t, "BZPOPMIN", "k2", "0")
	b.send(t, "PING")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "ZADD", "k2", "7", "m"), b.reply(t), b.reply(t))
	return out
}

// TestBlockingClientsMatchRedis: blocked clients are served, in the order
// they blocked, by writes of other clients, stay blocked through deletes,
// and end by CLIENT UNBLOCK, timeout or disconnect as Redis's do.
func TestBlockingClientsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	want := blockingScenario(t, redisAddr)
	got := blockingScenario(t, p.addr)
	sameReplies(t, want, got)
}

// TestBlockedClientServedByPeer: a BZPOPMIN waiting at one node returns a
// member added at another, carried by the mesh.
func TestBlockedClientServedByPeer(t *testing.T) {
	a := startMeshNode(t, t.TempDir(), 0)
	b := startMeshNode(t, t.TempDir(), 0, "--peer", a.maddr())
	waitConnected(t, 1, a, b)

	waiter := dialBlock(t, b.addr)
	ctl := dialBlock(t, b.addr)
	waiter.send(t, "BZPOPMIN", "queue", "0")
	waitBlocked(t, ctl, 1)
	if err := a.c.ZAdd(context.Background(), "queue", redis.Z{Score: 1, Member: "job"}).Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := waiter.reply(t), "*3\r\n$5\r\nqueue\r\n$3\r\njob\r\n$1\r\n1\r\n"; got != want {
		t.Fatalf("BZPOPMIN at B = %q, want %q", got, want)
	}
	// The pop at B reaches A too.
	waitUntil(t, 10*time.Second, "the pop to reach A", func() bool {
		n, err := a.c.ZCard(context.Background(), "queue").Result()
		return err == nil && n == 0
	})

	// And a list: BLPOP at B, RPUSH at A.
	waiter.send(t, "BLPOP", "jobs", "0")
	waitBlocked(t, ctl, 1)
	if err := a.c.RPush(context.Background(), "jobs", "j1").Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := waiter.reply(t), "*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n"; got != want {
		t.Fatalf("BLPOP at B = %q, want %q", got, want)
	}
	waitUntil(t, 10*time.Second, "the pop to reach A", func() bool {
		n, err := a.c.LLen(context.Background(), "jobs").Result()
		return err == nil && n == 0
	})
}

// pipe sends commands in one write, so that the server reads them as one
// pipeline, and returns their replies.
func (rc *blockConn) pipe(t *testing.T, cmds ...[]string) []string {
	t.Helper()
	var req bytes.Buffer
	for _, words := range cmds {
		fmt.Fprintf(&req, "*%d\r\n", len(words))
		for _, w := range words {
			fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(w), w)
		}
	}
	if _, err := rc.c.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(cmds))
	for i := range cmds {
		out[i] = rc.reply(t)
	}
	return out
}

// servedFirstScenario: a write that gives a blocked client its element
// serves it before the next command, pipelined or not, takes the element
// (after EXEC for a transaction, whose own pop comes first).
func servedFirstScenario(t *testing.T, addr string) []string {
	ctl := dialBlock(t, addr)
	ctl.do(t, "FLUSHALL")
	var out []string
	a, b := dialBlock(t, addr), dialBlock(t, addr)

	a.send(t, "BLPOP", "l", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.pipe(t, []string{"RPUSH", "l", "x"}, []string{"LPOP", "l"}, []string{"LLEN", "l"})...)
	out = append(out, a.reply(t))
	waitBlocked(t, ctl, 0)

	// Two elements, one waiter: the waiter takes the head, the pop after
	// the push the next.
	a.send(t, "BRPOP", "l", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.pipe(t, []string{"LPUSH", "l", "p", "q"}, []string{"RPOP", "l"})...)
	out = append(out, a.reply(t))
	waitBlocked(t, ctl, 0)

	// Unpipelined: the next command, from another client, finds nothing.
	a.send(t, "BZPOPMIN", "z", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.do(t, "ZADD", "z", "1", "m"), b.do(t, "ZPOPMIN", "z"))
	out = append(out, a.reply(t))
	waitBlocked(t, ctl, 0)

	// A transaction's own pop takes the element first; the waiter stays
	// blocked until the next push.
	a.send(t, "BLPOP", "l", "0")
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.pipe(t, []string{"MULTI"}, []string{"RPUSH", "l", "t1"}, []string{"LPOP", "l"}, []string{"EXEC"})...)
	waitBlocked(t, ctl, 1)
	out = append(out, ctl.pipe(t, []string{"RPUSH", "l", "t2"}, []string{"LPOP", "l"})...)
	out = append(out, a.reply(t))
	waitBlocked(t, ctl, 0)

	// A served BLMOVE pushes on to a client blocked on its destination,
	// before the pipelined pop of the destination runs.
	a.send(t, "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0")
	waitBlocked(t, ctl, 1)
	b.send(t, "BLPOP", "dst", "0")
	waitBlocked(t, ctl, 2)
	out = append(out, ctl.pipe(t, []string{"RPUSH", "src", "m1"}, []string{"LPOP", "dst"}, []string{"EXISTS", "src", "dst"})...)
	out = append(out, a.reply(t), b.reply(t))
	waitBlocked(t, ctl, 0)
	return out
}

// TestBlockedServedBeforeNextCommandMatchesRedis: the element a push brings
// goes to the client blocked for it, not to a pop that follows the push,
// as redis-server orders them.
func TestBlockedServedBeforeNextCommandMatchesRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	want := servedFirstScenario(t, redisAddr)
	got := servedFirstScenario(t, p.addr)
	sameReplies(t, want, got)
}

// sameReplies fails t where the node's replies differ from Redis's.
func sameReplies(t *testing.T, want, got []string) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("redis answered %d replies, the node %d", len(want), len(got))
	}
	for i := range want {
		if want[i] != got[i] {
			t.Errorf("reply %d:\n   redis: %q\n    node: %q", i, want[i], got[i])
		}
	}
}
