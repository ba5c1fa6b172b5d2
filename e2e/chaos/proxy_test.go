package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redmesh/redmesh/gossip"
)

// The mesh's TCP connections run through a proxy in the harness, so that a
// fault can delay a link: the kernels this runs on have no tc netem. Each
// node's namespace redirects its connections to another node's mesh port
// (nftables nat, output hook) to a listener of the proxy on its own loopback,
// one port per destination; the proxy dials the destination from the same
// namespace, its socket marked so that the redirect lets it pass, and copies
// both ways, holding each chunk for the link's delay. The proxy's own
// connection is the one on the bridge, so partitions and loss (nftables on
// the bridge) cut and thin it exactly as they would the node's. The node is
// started with --p2p-listen on TCP only (a PSK mesh has no QUIC), so every
// mesh connection passes here.
//
// Written here rather than with Toxiproxy: Toxiproxy listens and dials on
// its own goroutines with net.Listen and net.Dial, and a socket must be made
// on a thread inside the node's namespace.

const (
	proxyMark  = 0x7e5 // SO_MARK of the proxy's own dials: not redirected
	proxyChunk = 32 << 10
	proxyQueue = 64 // chunks held per direction: at most 2 MiB in flight
)

// proxyPort is where the proxy listens, in every node's namespace, for
// connections to node j.
func proxyPort(j int) int { return meshPort + 1 + j }

// linkDelay is the delay of one link, both ways: each chunk is held for
// delay plus a uniform draw in [0, jitter].
type linkDelay struct {
	delay, jitter atomic.Int64
	mu            sync.Mutex
	rng           *rand.Rand
}

func (l *linkDelay) hold() time.Duration {
	d, j := l.delay.Load(), l.jitter.Load()
	if j > 0 {
		l.mu.Lock()
		d += l.rng.Int64N(j + 1)
		l.mu.Unlock()
	}
	return time.Duration(d)
}

// proxy carries every mesh connection of a run.
type proxy struct {
	nw        *network
	links     map[[2]int]*linkDelay // by (lower, higher) node index
	listeners []net.Listener
	wg        sync.WaitGroup
	closed    atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// Conns counts the connections carried, for the run's log.
	Conns atomic.Int64
}

// newProxy starts the listeners and installs the redirects in every node's
// namespace. seed draws the jitter.
func newProxy(nw *network, seed int64) (*proxy, error) {
	p := &proxy{nw: nw, links: map[[2]int]*linkDelay{}, conns: map[net.Conn]struct{}{}}
	n := len(nw.names)
	for a := range n {
		for b := a + 1; b < n; b++ {
			p.links[[2]int{a, b}] = &linkDelay{rng: rand.New(rand.NewPCG(uint64(seed), uint64(a<<16|b)))}
		}
	}
	for i, ns := range nw.names {
		var script strings.Builder
		fmt.Fprintf(&script, "add table ip chaosproxy\nadd chain ip chaosproxy out { type nat hook output priority -100; policy accept; }\n")
		fmt.Fprintf(&script, "add rule ip chaosproxy out meta mark %#x return\n", proxyMark)
		for j := range n {
			if j == i {
				continue
			}
			l, err := listenIn(ns, fmt.Sprintf("127.0.0.1:%d", proxyPort(j)))
			if err != nil {
				p.close()
				return nil, err
			}
			p.listeners = append(p.listeners, l)
			p.wg.Go(func() { p.serve(l, i, j) })
			fmt.Fprintf(&script, "add rule ip chaosproxy out ip daddr %s tcp dport %d redirect to :%d\n", nw.ips[j], meshPort, proxyPort(j))
		}
		if err := nftIn(ns, script.String()); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// setDelay sets the delay and jitter of the link between a and b.
func (p *proxy) setDelay(a, b int, delay, jitter time.Duration) {
	l := p.links[[2]int{min(a, b), max(a, b)}]
	l.delay.Store(int64(delay))
	l.jitter.Store(int64(jitter))
}

// close stops accepting and cuts every connection carried.
func (p *proxy) close() {
	p.closed.Store(true)
	for _, l := range p.listeners {
		l.Close()
	}
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// serve accepts node i's connections to node j.
func (p *proxy) serve(l net.Listener, i, j int) {
	link := p.links[[2]int{min(i, j), max(i, j)}]
	upstream := fmt.Sprintf("%s:%d", p.nw.ips[j], meshPort)
	dial := dialerWith(p.nw.names[i], proxyControl)
	for {
		down, err := l.Accept()
		if err != nil {
			return // closed
		}
		p.Conns.Add(1)
		p.wg.Go(func() {
			// The dial goes through the bridge: a partition makes it time
			// out as the node's own dial would.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			up, err := dial(ctx, "tcp", upstream)
			cancel()
			if err != nil {
				down.Close()
				return
			}
			if !p.track(down) || !p.track(up) {
				down.Close()
				up.Close()
				return
			}
			defer p.untrack(down)
			defer p.untrack(up)
			var done sync.WaitGroup
			done.Go(func() { pipe(up, down, link) })
			done.Go(func() { pipe(down, up, link) })
			done.Wait()
			down.Close()
			up.Close()
		})
	}
}

type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk held until its due time; chunks keep
// their order (a chunk is never due before the one ahead of it). At src's
// end it half-closes dst; an error on either side closes both, as a broken
// TCP connection would.
func pipe(dst, src net.Conn, link *linkDelay) {
	queue := make(chan chunk, proxyQueue)
	go func() {
		defer close(queue)
		var last time.Time
		for {
			b := make([]byte, proxyChunk)
			n, err := src.Read(b)
			if n > 0 {
				due := time.Now().Add(link.hold())
				if due.Before(last) {
					due = last
				}
				last = due
				queue <- chunk{b[:n], due}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					dst.Close()
					src.Close()
				}
				return
			}
		}
	}()
	for c := range queue {
		// Holding the chunk until it is due is the delay itself.
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.b); err != nil {
			dst.Close()
			src.Close()
			for range queue { // let the reader finish
			}
			return
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// listenIn listens on addr inside namespace ns.
func listenIn(ns, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNamespace(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("proxy listen on %s in %s: %w", addr, ns, err)
	}
	return l, nil
}

// tcpRTOMaxMS is TCP_RTO_MAX_MS of linux/tcp.h (not yet in x/sys/unix).
const tcpRTOMaxMS = 44

// proxyControl marks the proxy's socket, so that the redirect lets it pass,
// and gives it the TCP settings the node gives its own mesh sockets: on the
// bridge it stands in for the node's, and a partition must find it as it
// would find the node's (kernels without TCP_RTO_MAX_MS refuse it, as they
// refuse the node).
func proxyControl(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, proxyMark)
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, tcpRTOMaxMS, int(gossip.MaxRetransmitTimeout.Milliseconds()))
	}); err != nil {
		return err
	}
	return serr
}
