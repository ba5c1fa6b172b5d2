package node

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"
)

// TestSharedStepPanicFailsOnlyItsClient: when a command panics in the
// write-path step the loop shares between clients, only that client's
// requests are answered with the error; the other client's run again in a
// step of their own and are kept.
func TestSharedStepPanicFailsOnlyItsClient(t *testing.T) {
	panicking(t, "testpanicset", "set")

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

// TestReadsGoOnWhileTheLogCannotBeWritten: with the disk full, a write
// waits unanswered for the log, later writes are refused, and other
// clients' reads are answered meanwhile; once there is room the write is
// answered. It mounts a small tmpfs, so it needs root, as CI has.
func TestReadsGoOnWhileTheLogCannotBeWritten(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=128m"); err != nil {
		t.Skipf("cannot mount a tmpfs (not root?): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	_, c := openNode(t, filepath.Join(dir, "d"))
	ctx := context.Background()
	if err := c.Set(ctx, "k0", "v0", 0).Err(); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // the disk is full
		}
	}
	f.Close()
	t.Cleanup(func() { os.Remove(filler) }) // before the node closes

	writer := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Protocol: 2, PoolSize: 1, ReadTimeout: -1})
	defer writer.Close()
	written := make(chan error, 1)
	go func() { written <- writer.Set(ctx, "k1", "v1", 0).Err() }()
	// The write's commit fails: the node says the log is failing, and the
	// write waits for it.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.Info(ctx, "persistence").Val(), "aof_last_write_status:err") {
		if time.Now().After(deadline) {
			t.Fatal("the node never said its log was failing")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-written:
		t.Fatalf("the write waiting for the log was answered (%v) with the disk still full", err)
	default:
	}
	if err := c.Set(ctx, "k2", "v2", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "MISCONF") {
		t.Fatalf("SET with the log failing = %v, want MISCONF", err)
	}
	for i := range 20 {
		r := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Protocol: 2, PoolSize: 1, ReadTimeout: 10 * time.Second})
		got, err := r.Get(ctx, "k0").Result()
		r.Close()
		if err != nil || got != "v0" {
			t.Fatalf("read %d with the log failing = %q, %v; want v0", i, got, err)
		}
	}

	os.Remove(filler)
	select {
	case err := <-written:
		if err != nil {
			t.Fatalf("the write that waited for the log: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the write that waited for the log was not answered once the disk had room")
	}
	if got, err := c.Get(ctx, "k1").Result(); err != nil || got != "v1" {
		t.Fatalf("GET k1 = %q, %v", got, err)
	}
}
