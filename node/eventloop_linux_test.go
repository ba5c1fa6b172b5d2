package node

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSharedStepPanicFailsOnlyItsClient: when a command panics in the
// write-path step the loop shares between clients, only that client's
// requests are answered with the error; the other client's run again in a
// step of their own and are kept.
func TestSharedStepPanicFailsOnlyItsClient(t *testing.T) {
	spec := *commands["set"]
	spec.name = "testpanicset"
	spec.fn = func(n *Node, c *client, args [][]byte) {
		cmdSet(n, c, args)
		panic("a bug after the write")
	}
	commands[spec.name] = &spec
	t.Cleanup(func() { delete(commands, spec.name) })

	n, rc := openNode(t, t.TempDir())
	l, err := newEventLoop(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.stop() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// conn makes a client served by hand on l, its requests already read.
	conn := func(reqs ...[]string) (*loopConn, *bufio.Reader) {
		t.Helper()
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		cc.SetDeadline(time.Now().Add(30 * time.Second))
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		lc := l.take(sc)
		l.register(lc)
		t.Cleanup(func() { n.endClient(lc.c); lc.c.conn.Close() })
		for _, r := range reqs {
			var args [][]byte
			for _, a := range r {
				args = append(args, []byte(a))
			}
			lc.batch = append(lc.batch, args)
		}
		return lc, bufio.NewReader(cc)
	}
	a, ra := conn([]string{"set", "a1", "x"}, []string{"testpanicset", "a2", "x"})
	b, rb := conn([]string{"set", "b1", "x"}, []string{"set", "b2", "x"})
	l.serve([]*loopConn{a, b})
	for _, lc := range []*loopConn{a, b} {
		lc.c.out.Flush()
	}
	replies := func(rd *bufio.Reader) string {
		var out []string
		for range 2 {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.TrimSpace(line))
		}
		return strings.Join(out, " ")
	}
	if got := replies(rb); got != "+OK +OK" {
		t.Errorf("the other client's replies = %q, want +OK +OK", got)
	}
	if got := replies(ra); got != "-ERR internal error -ERR internal error" {
		t.Errorf("the panicking client's replies = %q, want its step's error twice", got)
	}
	ctx := context.Background()
	for key, want := range map[string]int64{"a1": 0, "a2": 0, "b1": 1, "b2": 1} {
		if got := rc.Exists(ctx, key).Val(); got != want {
			t.Errorf("EXISTS %s = %d, want %d", key, got, want)
		}
	}
}
