package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// network is one run's private network: a hub namespace holding a Linux
// bridge, and one namespace per node joined to the bridge by a veth pair.
// Faults on links are nftables rules in the hub's bridge table, so the root
// namespace is never touched and parallel runs cannot collide: every name
// carries the run's random tag, and the addresses live only inside the run's
// namespaces.
type network struct {
	tag   string   // unique per run
	hub   string   // namespace of the bridge
	names []string // namespace of each node
	ips   []string

	mu    sync.Mutex
	rules map[string][]string // the nftables rules of each active fault, by fault
}

// requireNetTools skips the test without root, ip or nft; in CI, whose
// script installs ip and nft, a missing tool fails it instead, so that CI
// never passes by skipping.
func requireNetTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chaos needs root: it makes network namespaces, a bridge, nftables rules and tmpfs mounts")
	}
	var missing []string
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("chaos needs %s (Debian: iproute2, nftables)", strings.Join(missing, " and "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// sh runs a command and returns its error with its output.
func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetwork builds the namespaces, the bridge, the veth pairs and an empty
// nftables chain, and removes them all when the test ends.
func newNetwork(t *testing.T, nodes int) *network {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	nw := &network{tag: "rmchaos-" + hex.EncodeToString(b), rules: map[string][]string{}}
	nw.hub = nw.tag + "-hub"
	t.Cleanup(nw.remove)
	steps := [][]string{
		{"ip", "netns", "add", nw.hub},
		{"ip", "-n", nw.hub, "link", "set", "lo", "up"},
		{"ip", "-n", nw.hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", nw.hub, "link", "set", "br0", "up"},
	}
	for i := range nodes {
		ns := fmt.Sprintf("%s-n%d", nw.tag, i)
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		nw.names = append(nw.names, ns)
		nw.ips = append(nw.ips, ip)
		port := fmt.Sprintf("p%d", i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", nw.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "-n", nw.hub, "link", "set", port, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
		)
	}
	for _, s := range steps {
		if err := sh(s[0], s[1:]...); err != nil {
			t.Fatalf("set up the network: %v", err)
		}
	}
	if err := nw.nft("add table bridge chaos\nadd chain bridge chaos filter { type filter hook forward priority 0; policy accept; }\n"); err != nil {
		t.Fatalf("set up the network: %v", err)
	}
	return nw
}

// remove deletes the namespaces; the veth pairs, the bridge and its
// nftables table go with them.
func (nw *network) remove() {
	for _, ns := range append(slices.Clone(nw.names), nw.hub) {
		_ = sh("ip", "netns", "del", ns) // may never have been made
	}
}

// nft runs an nftables script in the hub namespace, atomically.
func (nw *network) nft(script string) error { return nftIn(nw.hub, script) }

// setRules makes rules the active rules of fault name (none: the fault is
// healed) and rewrites the bridge's chain in one nftables transaction.
func (nw *network) setRules(name string, rules []string) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if len(rules) == 0 {
		delete(nw.rules, name)
	} else {
		nw.rules[name] = rules
	}
	var b strings.Builder
	b.WriteString("flush chain bridge chaos filter\n")
	for _, name := range slices.Sorted(maps.Keys(nw.rules)) {
		for _, r := range nw.rules[name] {
			fmt.Fprintf(&b, "add rule bridge chaos filter %s\n", r)
		}
	}
	return nw.nft(b.String())
}

// dropRule drops what node from sends to node to, all of it or pct percent.
func (nw *network) dropRule(from, to, pct int) string {
	r := fmt.Sprintf("ip saddr %s ip daddr %s", nw.ips[from], nw.ips[to])
	if pct < 100 {
		r += fmt.Sprintf(" numgen random mod 100 < %d", pct)
	}
	return r + " counter drop"
}

// dialer dials inside namespace ns: clients reach a node over its own
// loopback, so partitions cut the mesh, not the node from its clients.
func dialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialerWith(ns, nil)
}

// dialerWith dials inside namespace ns, control (if not nil) setting the
// socket up before it connects.
func dialerWith(ns string, control func(string, string, syscall.RawConn) error) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNamespace(ns, func() error {
			d := net.Dialer{Control: control}
			var err error
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// inNamespace runs fn on a thread moved into namespace ns. The goroutine
// ends still locked to the thread, so Go discards the thread and no other
// goroutine ever runs in the wrong namespace; sockets fn makes stay in ns.
func inNamespace(ns string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			ch <- fmt.Errorf("open namespace %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ch <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// nftIn runs an nftables script in namespace ns, atomically.
func nftIn(ns, script string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s\nscript:\n%s", ns, err, strings.TrimSpace(string(out)), script)
	}
	return nil
}
