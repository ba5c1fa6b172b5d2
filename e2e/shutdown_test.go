package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestShutdownRepliesMatchRedis: SHUTDOWN's errors, byte for byte as
// Redis 7 answers them; nothing here shuts either server down.
func TestShutdownRepliesMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir(), "--no-mesh")
	script := `SHUTDOWN ABORT
SHUTDOWN abort
SHUTDOWN NOSUCH
SHUTDOWN SAVE NOSAVE
SHUTDOWN NOSAVE SAVE NOW
SHUTDOWN ABORT NOW
SHUTDOWN ABORT FORCE
SHUTDOWN ABORT SAVE
SHUTDOWN NOW ABORT
MULTI
SHUTDOWN
SHUTDOWN NOW
EXEC
`
	want := redisCLI(t, redisAddr, script)
	got := redisCLI(t, p.addr, script)
	if got != want {
		t.Errorf("differs from Redis\n%s", diffLines(script, want, got))
	}
	if !strings.Contains(got, "No shutdown in progress.") {
		t.Fatalf("no ABORT reply:\n%s", got)
	}
}

// exitCode waits for the process to exit (up to within) and returns its
// exit code.
func (p *proc) exitCode(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("redmesh still runs %v later\n%s", within, p.out)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// shutdownCmd sends cmd on a connection of its own and returns what the
// node answered, "" if it closed the connection without a reply.
func shutdownCmd(t *testing.T, addr, cmd string) string {
	t.Helper()
	c := dialRaw(t, addr)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := c.r.ReadString('\n')
	if err == io.EOF && line == "" {
		return ""
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return strings.TrimRight(line, "\r\n")
}

// TestShutdownSaveAndNoSave: SHUTDOWN closes the connection without a
// reply and exits 0 having written a checkpoint (so the next start replays
// nothing); SHUTDOWN NOSAVE exits without one, and the next start replays
// the log: every key is kept either way.
func TestShutdownSaveAndNoSave(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := startNode(t, dir, "--no-mesh")
	writeKeys(t, p.client(t), "a", 100, 10)
	if got := shutdownCmd(t, p.addr, "SHUTDOWN SAVE"); got != "" {
		t.Fatalf("SHUTDOWN SAVE answered %q", got)
	}
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SHUTDOWN SAVE\n%s", code, p.out)
	}

	p = startNode(t, dir, "--no-mesh")
	c := p.client(t)
	if n := c.DBSize(ctx).Val(); n != 100 {
		t.Fatalf("%d keys after SHUTDOWN SAVE and a restart, want 100", n)
	}
	if ch := infoOf(t, c, "persistence")["rdb_changes_since_last_save"]; ch != "0" {
		t.Fatalf("rdb_changes_since_last_save %s after a restart: the shutdown wrote no checkpoint", ch)
	}
	ckpt := infoOf(t, c, "persistence")["checkpoint_seq"]
	writeKeys(t, c, "b", 50, 10)
	if got := shutdownCmd(t, p.addr, "shutdown nosave now"); got != "" {
		t.Fatalf("SHUTDOWN NOSAVE NOW answered %q", got)
	}
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SHUTDOWN NOSAVE\n%s", code, p.out)
	}

	p = startNode(t, dir, "--no-mesh")
	c = p.client(t)
	if n := c.DBSize(ctx).Val(); n != 150 {
		t.Fatalf("%d keys after SHUTDOWN NOSAVE and a restart, want 150", n)
	}
	info := infoOf(t, c, "persistence")
	if info["checkpoint_seq"] != ckpt || info["rdb_changes_since_last_save"] != "50" {
		t.Fatalf("after SHUTDOWN NOSAVE: checkpoint_seq %s (was %s), rdb_changes_since_last_save %s; want the old checkpoint and 50 writes replayed",
			info["checkpoint_seq"], ckpt, info["rdb_changes_since_last_save"])
	}
	p.stop(t)
}

// TestSigtermDrainsClients: under SIGTERM the node stops accepting, answers
// what its clients sent, closes them and exits 0 with a checkpoint; every
// write it acknowledged is there after a restart.
func TestSigtermDrainsClients(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := startNode(t, dir, "--no-mesh", "--fsync", "always")
	idle := dialRaw(t, p.addr)
	if got, _ := idle.do("PING"); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}

	// Writers pipelining until the node closes their connections.
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		sent  atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			c := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, MaxRetries: -1, PoolSize: 1})
			defer c.Close()
			for i := 0; ; i++ {
				pipe := c.Pipeline()
				keys := make([]string, 16)
				cmds := make([]*redis.StatusCmd, 16)
				for j := range keys {
					keys[j] = fmt.Sprintf("w%d:%d:%d", w, i, j)
					cmds[j] = pipe.Set(ctx, keys[j], keys[j], 0)
				}
				pipe.Exec(ctx)
				sent.Add(16)
				n := 0
				for j, cmd := range cmds {
					if cmd.Err() == nil {
						mu.Lock()
						acked = append(acked, keys[j])
						mu.Unlock()
						n++
					}
				}
				if n < len(cmds) {
					return // the node closed the connection
				}
			}
		})
	}
	waitUntil(t, 10*time.Second, "writes", func() bool { return sent.Load() > 2000 })
	p.cmd.Process.Signal(syscall.SIGTERM)

	// The idle client is closed at once, not at the end of a timeout.
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle.r.ReadByte(); err != io.EOF {
		t.Fatalf("the idle connection under SIGTERM: %v, want EOF", err)
	}
	wg.Wait()
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), `msg="shut down" checkpoint=true`) {
		t.Fatalf("no checkpoint at shutdown in the log:\n%s", p.out)
	}
	// New connections were refused while it drained, and after.
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Fatal("a connection was accepted after the node exited")
	}

	p = startNode(t, dir, "--no-mesh")
	c := p.client(t)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d writes sent, %d acknowledged before the shutdown", sent.Load(), len(acked))
	for _, k := range acked {
		if v, err := c.Get(ctx, k).Result(); err != nil || v != k {
			t.Fatalf("acknowledged %s lost after SIGTERM and a restart: %q %v", k, v, err)
		}
	}
	if ch := infoOf(t, c, "persistence")["rdb_changes_since_last_save"]; ch != "0" {
		t.Fatalf("rdb_changes_since_last_save %s after a restart: SIGTERM wrote no checkpoint", ch)
	}
}

// TestShutdownWaitsForPeersAbortAndSecondSignal: a shutdown waits for a
// connected peer to acknowledge this node's writes; SHUTDOWN ABORT cancels
// it (the SHUTDOWN that started it gets Redis's error, the node serves on),
// a SIGTERM's too; a second signal exits at once, with 1.
func TestShutdownWaitsForPeersAbortAndSecondSignal(t *testing.T) {
	a := writeUnacknowledged(t)

	replies := make(chan string, 1)
	go func() { replies <- shutdownCmd(t, a.addr, "SHUTDOWN") }()
	waitUntil(t, 10*time.Second, "the shutdown to wait for the peer", func() bool {
		return strings.Contains(a.out.String(), "waiting for peers to acknowledge")
	})
	if got, _ := dialRaw(t, a.addr).do("SHUTDOWN ABORT"); got != "+OK" {
		t.Fatalf("SHUTDOWN ABORT = %q", got)
	}
	if got := <-replies; got != "-ERR Errors trying to SHUTDOWN. Check logs." {
		t.Fatalf("the aborted SHUTDOWN answered %q", got)
	}
	if got, _ := dialRaw(t, a.addr).do("GET k"); got != "$1" {
		t.Fatalf("GET after the abort: %q", got)
	}

	// A signal's shutdown is aborted the same way; the node serves on.
	a.cmd.Process.Signal(syscall.SIGTERM)
	waitUntil(t, 10*time.Second, "the signal's shutdown to wait for the peer", func() bool {
		return strings.Count(a.out.String(), "waiting for peers to acknowledge") == 2
	})
	if got, _ := dialRaw(t, a.addr).do("SHUTDOWN ABORT"); got != "+OK" {
		t.Fatalf("SHUTDOWN ABORT of a signal's shutdown = %q", got)
	}
	if got, _ := dialRaw(t, a.addr).do("PING"); got != "+PONG" {
		t.Fatalf("PING after the abort: %q", got)
	}

	// Then a signal waits again, and a second one exits at once.
	a.cmd.Process.Signal(syscall.SIGINT)
	waitUntil(t, 10*time.Second, "the third shutdown to wait for the peer", func() bool {
		return strings.Count(a.out.String(), "waiting for peers to acknowledge") == 3
	})
	start := time.Now()
	a.cmd.Process.Signal(syscall.SIGINT)
	if code := a.exitCode(t, 10*time.Second); code != 1 {
		t.Fatalf("exit code %d after a second SIGINT, want 1\n%s", code, a.out)
	}
	t.Logf("the second signal exited in %v", time.Since(start))
}

// TestSignalRightAfterAbortIsAFirstOne: a signal that comes as soon as
// SHUTDOWN ABORT has answered, before the aborted shutdown has returned,
// starts a shutdown of its own that waits for the peer again; it is not
// a second signal. Each round aborts that one too, the node serving on.
func TestSignalRightAfterAbortIsAFirstOne(t *testing.T) {
	a := writeUnacknowledged(t)
	abort := dialRaw(t, a.addr)
	a.cmd.Process.Signal(syscall.SIGTERM)
	for round := 1; round <= 5; round++ {
		waitUntil(t, 10*time.Second, fmt.Sprintf("shutdown %d to wait for the peer", round), func() bool {
			return strings.Count(a.out.String(), "waiting for peers to acknowledge") == round
		})
		if got, _ := abort.do("SHUTDOWN ABORT"); got != "+OK" {
			t.Fatalf("round %d: SHUTDOWN ABORT = %q", round, got)
		}
		a.cmd.Process.Signal(syscall.SIGTERM)
	}
	waitUntil(t, 10*time.Second, "the last signal's shutdown to wait for the peer", func() bool {
		return strings.Count(a.out.String(), "waiting for peers to acknowledge") == 6
	})
	if strings.Contains(a.out.String(), "second signal") {
		t.Fatalf("a signal after an abort was taken for a second one:\n%s", a.out)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.exitCode(t, 10*time.Second); code != 1 {
		t.Fatalf("exit code %d after a second SIGTERM, want 1\n%s", code, a.out)
	}
}

// TestShutdownTimeoutAndNow: SHUTDOWN NOW does not wait for a peer that
// does not acknowledge, nor does any shutdown under shutdown-timeout 0,
// given at start or by CONFIG SET.
func TestShutdownTimeoutAndNow(t *testing.T) {
	ctx := context.Background()
	b := startMeshNode(t, t.TempDir(), 0)
	for _, tc := range []struct {
		name, cmd string
		args      []string
		configSet bool
	}{
		{"SHUTDOWN NOW", "SHUTDOWN NOW", nil, false},
		{"--shutdown-timeout 0", "SHUTDOWN", []string{"--shutdown-timeout", "0"}, false},
		{"CONFIG SET shutdown-timeout 0", "SHUTDOWN", nil, true},
	} {
		a := startMeshNode(t, t.TempDir(), 0, append([]string{"--peer", b.maddr()}, tc.args...)...)
		waitConnected(t, 1, a)
		if tc.configSet {
			if err := a.c.ConfigSet(ctx, "shutdown-timeout", "0").Err(); err != nil {
				t.Fatal(err)
			}
		}
		b.cmd.Process.Signal(syscall.SIGSTOP)
		if err := a.c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if got := shutdownCmd(t, a.addr, tc.cmd); got != "" {
			t.Fatalf("%s: %q", tc.name, got)
		}
		if code := a.exitCode(t, 10*time.Second); code != 0 {
			t.Fatalf("%s: exit code %d", tc.name, code)
		}
		if strings.Contains(a.out.String(), "waiting for peers") {
			t.Fatalf("%s waited for the peer:\n%s", tc.name, a.out)
		}
		t.Logf("%s: exited in %v", tc.name, time.Since(start))
		b.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// TestSystemdNotify: with NOTIFY_SOCKET set, as systemd sets it for a
// Type=notify service, the node sends READY=1 once it serves (a PING then
// succeeds at once) and STOPPING=1 when it begins to shut down.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := &proc{t: t, addr: addr, dir: t.TempDir(), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, "serve", "--data", p.dir, "--listen", addr, "--no-mesh")
	p.cmd.Env = append(p.cmd.Environ(), "NOTIFY_SOCKET="+sock)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)

	next := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		ln.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v\n%s", want, err, p.out)
		}
		if got := string(buf[:n]); got != want {
			t.Fatalf("notified %q, want %q", got, want)
		}
	}
	next("READY=1")
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("PING right after READY=1: %v", err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	next("STOPPING=1")
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// writeUnacknowledged starts node A, waiting up to 120 s at shutdown, and a
// peer B, then stops B (SIGSTOP keeps the link up; SIGCONT at the test's
// end) and writes at A: a write B never acknowledges.
func writeUnacknowledged(t *testing.T) *meshNode {
	t.Helper()
	b := startMeshNode(t, t.TempDir(), 0)
	a := startMeshNode(t, t.TempDir(), 0, "--peer", b.maddr(), "--shutdown-timeout", "120")
	waitConnected(t, 1, a, b)
	b.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { b.cmd.Process.Signal(syscall.SIGCONT) })
	if err := a.c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return a
}
