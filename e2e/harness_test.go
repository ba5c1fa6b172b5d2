// Package e2e tests redmesh as users run it: the real binary, real processes
// on 127.0.0.1, real Badger directories, real kill -9, and real redis-server
// and redis-cli where Redis is the reference.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "redmesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "redmesh")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/redmesh")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build redmesh:", err)
		os.Exit(1)
	}
	redis.SetLogger(quietLogger{}) // dial retries against a killed node are expected
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a running redmesh process.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
	dir  string
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startNode runs `redmesh serve` on a fresh port with data in dir and waits
// until it answers PING.
func startNode(t testing.TB, dir string, extra ...string) *proc {
	t.Helper()
	return startBinary(t, binary, dir, extra...)
}

// startBinary is startNode running bin, another build of redmesh.
func startBinary(t testing.TB, bin, dir string, extra ...string) *proc {
	t.Helper()
	p, err := startBinaryErr(t, bin, dir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startBinaryErr is startBinary, returning why the node did not start
// instead of failing the test. A RESP port it picked that something else
// bound before the node could (freePort only finds a port free now:
// another test's connection may take it meanwhile) is picked again.
func startBinaryErr(t testing.TB, bin, dir string, extra ...string) (*proc, error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		p, err := launch(t, bin, dir, port, extra)
		if err != nil && attempt < 5 && portTaken(err, port) {
			continue
		}
		return p, err
	}
}

// portTaken reports whether err is a node's start failing because port, on
// loopback, was already bound.
func portTaken(err error, port int) bool {
	return strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d: bind: address already in use", port))
}

// launch starts bin serving RESP on port (unless extra has a --listen)
// and waits until it answers.
func launch(t testing.TB, bin, dir string, port int, extra []string) (*proc, error) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"serve", "--data", dir, "--listen", addr}, extra...)
	for i, a := range extra { // a --listen of the caller's: reach it on loopback
		if a == "--listen" && i+1 < len(extra) {
			_, port, _ := net.SplitHostPort(extra[i+1])
			addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
	p := &proc{t: t, addr: addr, dir: dir, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	// A restart after kill -9 replays the log: hundreds of MiB in the
	// crash tests, which under the race detector on a busy two-core
	// machine can take more than 30 s.
	deadline := time.Now().Add(90 * time.Second)
	for {
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil || strings.HasPrefix(err.Error(), "NOAUTH") { // answering is enough
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("redmesh exited before serving: %v\n%s", p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("redmesh did not answer within 90s: %v\n%s", err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client opens a go-redis client speaking RESP2 to the node.
func (p *proc) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.addr, Protocol: 2, PoolSize: 64})
	t.Cleanup(func() { c.Close() })
	return c
}

// kill sends SIGKILL: no shutdown code runs.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("redmesh did not stop on SIGTERM\n%s", p.out)
	}
	if p.err != nil {
		t.Fatalf("redmesh exited with %v after SIGTERM\n%s", p.err, p.out)
	}
}

// lookPath finds a tool that the CI script installs. Outside CI a missing
// tool skips the test; in CI it fails it, so CI never passes by skipping.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return path
}

// startRedis runs a real redis-server on a fresh port with no persistence.
func startRedis(t testing.TB, extra ...string) string {
	t.Helper()
	bin := lookPath(t, "redis-server")
	port := freePort(t)
	args := append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir()}, extra...)
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		c.Close()
		if err == nil {
			return addr
		}
		if i > 500 {
			t.Fatalf("redis-server did not start: %v\n%s", err, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hostPort(addr string) (string, string) {
	h, p, _ := strings.Cut(addr, ":")
	return h, p
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
