package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"
)

const (
	respAddr  = "127.0.0.1:6379" // inside each node's namespace
	meshPort  = 7380
	diskSize  = "256m" // each node's tmpfs
	maxSkew   = 8 * time.Second
	opTimeout = 3 * time.Second
)

// node is one redmesh process slot: its namespace, its tmpfs data
// directory, and the process currently running there, if any.
type node struct {
	i       int
	ns, ip  string
	mount   string // tmpfs mount point
	dir     string // data directory, on the tmpfs
	id      string // libp2p peer ID
	logPath string
	base    []string // serve arguments every start shares

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	killed  bool // the harness stopped it: an exit is expected
	offset  time.Duration
	paused  bool
	spans   []clockSpan // every start's clock offset, for the checker

	admin *redis.Client // the harness's own connection, for checks
}

// newNode mounts the node's tmpfs and gives it an identity.
func newNode(t *testing.T, i int, nw *network, runDir string) *node {
	t.Helper()
	n := &node{i: i, ns: nw.names[i], ip: nw.ips[i]}
	n.mount = filepath.Join(runDir, fmt.Sprintf("n%d", i))
	n.dir = filepath.Join(n.mount, "data")
	n.logPath = filepath.Join(runDir, fmt.Sprintf("n%d.log", i))
	if err := os.MkdirAll(n.mount, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := sh("mount", "-t", "tmpfs", "-o", "size="+diskSize, "tmpfs", n.mount); err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	t.Cleanup(func() {
		if err := sh("umount", n.mount); err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	})
	out, err := exec.Command(redmeshBinary(t), "id", "--data", n.dir).CombinedOutput()
	if err != nil {
		t.Fatalf("node %d: redmesh id: %v\n%s", i, err, out)
	}
	n.id = strings.TrimSpace(string(out))
	n.admin = redis.NewClient(n.options())
	t.Cleanup(func() { n.admin.Close() })
	return n
}

// maddr is the node's mesh address as its peers dial it.
func (n *node) maddr() string {
	return fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", n.ip, meshPort, n.id)
}

// options are a go-redis client's settings for this node: no retries, so
// every reply or timeout the workload records belongs to exactly one attempt.
func (n *node) options() *redis.Options {
	return &redis.Options{
		Addr:         respAddr,
		Dialer:       dialer(n.ns),
		Protocol:     2,
		MaxRetries:   -1,
		DialTimeout:  opTimeout,
		ReadTimeout:  opTimeout,
		WriteTimeout: opTimeout,
		PoolSize:     1,
	}
}

// start runs `redmesh serve` in the node's namespace with the given clock
// offset and waits until it answers PING.
func (n *node) start(offset time.Duration) error {
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	began := time.Now()
	fmt.Fprintf(log, "=== start %s offset %v\n", began.Format(time.RFC3339Nano), offset)
	args := append([]string{"netns", "exec", n.ns, binary, "serve"}, n.base...)
	if offset != 0 {
		args = append(args, "--clock-offset", offset.String())
	}
	// ip netns exec enters the namespace and execs the binary in place, so
	// the process's PID is the node's: signals reach it directly.
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start node %d: %w", n.i, err)
	}
	done := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.done, n.exitErr, n.killed, n.offset, n.paused = cmd, done, nil, false, offset, false
	n.spans = append(n.spans, clockSpan{From: began, Offset: offset})
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		log.Close()
		n.mu.Lock()
		n.exitErr = err
		n.mu.Unlock()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := n.admin.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("node %d exited before serving: %v\n%s", n.i, n.exitErr, n.logTail(30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d did not answer within 30s: %v\n%s", n.i, err, n.logTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clockSpans is the node's clock offsets since the run began.
func (n *node) clockSpans() []clockSpan {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.spans)
}

// signal sends sig to the running process.
func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("node %d is not running", n.i)
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to node %d: %w", sig, n.i, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
	return nil
}

// kill sends SIGKILL (resuming nothing: a stopped process dies too) and
// waits for the exit.
func (n *node) kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.killed = true
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	n.mu.Lock()
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.killed = true
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		n.kill()
		return fmt.Errorf("node %d did not stop within 30s of SIGTERM", n.i)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmd = nil
	if n.exitErr != nil {
		return fmt.Errorf("node %d exited with %v after SIGTERM", n.i, n.exitErr)
	}
	return nil
}

// crashed reports an exit the harness did not cause.
func (n *node) crashed() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.killed {
		return false, nil
	}
	select {
	case <-n.done:
		n.cmd = nil
		return true, n.exitErr
	default:
		return false, nil
	}
}

// running reports whether a process is there and not stopped.
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !n.paused
}

func (n *node) fillerPath() string { return filepath.Join(n.mount, "filler") }

// fillDisk takes every free byte of the node's tmpfs.
func (n *node) fillDisk() error {
	f, err := os.OpenFile(n.fillerPath(), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Statfs(n.mount, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", n.mount, err)
	}
	free := int64(st.Bavail) * st.Bsize
	if err := unix.Fallocate(int(f.Fd()), 0, 0, free); err != nil && !errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("fill %s: %w", n.mount, err)
	}
	return nil
}

// freeDisk gives the space back.
func (n *node) freeDisk() error {
	if err := os.Remove(n.fillerPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// crashReport is what the log of the process that exited says about its
// end: the panic or runtime error and the failing goroutine's stack if there
// is one, else the log's last lines. Call it before restarting the node.
func (n *node) crashReport() string {
	b, _ := os.ReadFile(n.logPath)
	all := strings.Split(string(b), "\n")
	last := 0
	for i, l := range all {
		if strings.HasPrefix(l, "=== start") {
			last = i
		}
	}
	for i := last; i < len(all); i++ {
		l := all[i]
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") || strings.HasPrefix(l, "unexpected fault") {
			// Up to the end of the first goroutine's stack: the one that failed.
			end, blanks := i, 0
			for end < len(all) && end < i+60 && blanks < 2 {
				if all[end] == "" {
					blanks++
				}
				end++
			}
			return strings.Join(all[i:end], "\n")
		}
	}
	return n.logTail(30)
}

// logTail is the last lines of the node's log.
func (n *node) logTail(lines int) string {
	b, _ := os.ReadFile(n.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
