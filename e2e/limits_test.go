package e2e

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// rawExchange sends raw bytes on a fresh connection and returns everything
// the node answers until it closes the connection (or 2 s pass).
func rawExchange(t *testing.T, addr, send string) (reply string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(send))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	rd := bufio.NewReader(c)
	for {
		line, err := rd.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			var ne net.Error
			timedOut := err != nil && errorsAs(err, &ne) && ne.Timeout()
			return b.String(), !timedOut
		}
	}
}

func errorsAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// TestHostileRequestsAreRefused sends what once crashed the node (a bulk
// length near MaxInt64) and other broken requests: each gets Redis's
// protocol error and a closed connection, nothing is written, and the node
// keeps serving.
func TestHostileRequestsAreRefused(t *testing.T) {
	p := startNode(t, t.TempDir(), "--proto-max-bulk-len", "1MiB")
	for _, tc := range []struct{ send, want string }{
		{"*1\r\n$9223372036854775807\r\nabc", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		{"*99999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		{"*2\r\n$3\r\nGET\r\n:1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
		{"SET \"k v\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
		{strings.Repeat("x", 70*1024), "-ERR Protocol error: too big inline request\r\n"},
	} {
		got, closed := rawExchange(t, p.addr, tc.send)
		if got != tc.want || !closed {
			t.Errorf("sent %.40q: got %q (closed %v), want %q and a closed connection", tc.send, got, closed, tc.want)
		}
	}
	// Commands before a broken one in the same pipeline are answered.
	got, _ := rawExchange(t, p.addr, "PING\r\n*1\r\n$-7\r\n")
	if got != "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n" {
		t.Errorf("pipeline ending in a broken request: %q", got)
	}
	c := p.client(t)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("node stopped serving: %v\n%s", err, p.out)
	}
	if n := c.DBSize(context.Background()).Val(); n != 0 {
		t.Fatalf("a refused request wrote %d keys", n)
	}
}

func TestRequirePass(t *testing.T) {
	p := startNode(t, t.TempDir(), "--requirepass", "s3cret")
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2})
	defer anon.Close()
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		t.Fatalf("SET without AUTH: %v", err)
	}
	wrong := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, Password: "nope"})
	defer wrong.Close()
	if err := wrong.Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v", err)
	}
	good := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, Password: "s3cret"})
	defer good.Close()
	if err := good.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	if v := good.Get(ctx, "k").Val(); v != "v" {
		t.Fatalf("GET = %q", v)
	}
	if got, _ := rawExchange(t, p.addr, "GET k\r\nAUTH default s3cret\r\nGET k\r\n"); got != "-NOAUTH Authentication required.\r\n+OK\r\n$1\r\nv\r\n" {
		t.Fatalf("AUTH on a raw connection: %q", got)
	}

	open := startNode(t, t.TempDir())
	if err := open.client(t).Do(ctx, "AUTH", "x").Err(); err == nil ||
		!strings.HasPrefix(err.Error(), "ERR AUTH <password> called without any password configured") {
		t.Fatalf("AUTH without requirepass: %v", err)
	}
}

func TestMaxClientsAndIdleTimeout(t *testing.T) {
	p := startNode(t, t.TempDir(), "--maxclients", "2", "--timeout", "1s")
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("PING\r\n"))
		bufio.NewReader(c).ReadString('\n')
		conns = append(conns, c)
	}
	if got, closed := rawExchange(t, p.addr, "PING\r\n"); got != "-ERR max number of clients reached\r\n" || !closed {
		t.Fatalf("third client: %q, closed %v", got, closed)
	}
	// Idle clients are closed after --timeout, freeing their slots.
	time.Sleep(1500 * time.Millisecond)
	conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("an idle client was not disconnected")
	}
	if got, _ := rawExchange(t, p.addr, "PING\r\n"); got != "+PONG\r\n" {
		t.Fatalf("after idle clients were closed: %q", got)
	}
}
