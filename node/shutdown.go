package node

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ShutdownOptions are SHUTDOWN's modifiers, as Redis 7 reads them.
type ShutdownOptions struct {
	// NoSave skips the checkpoint at close; every write is in the log,
	// which the next start replays from the last checkpoint.
	NoSave bool
	// Now does not wait for connected peers to acknowledge this node's
	// writes first.
	Now bool
	// Force shuts down even when the log is failing (a full disk) or the
	// checkpoint fails, which otherwise refuse the shutdown.
	Force bool
}

// ErrShutdownAborted is returned by Shutdown when SHUTDOWN ABORT cancelled
// it while it waited for peers: the node goes on serving.
var ErrShutdownAborted = errors.New("shutdown aborted")

// ErrShutdownRefused is returned by Shutdown when the node would lose
// writes by shutting down (its log is failing) and Force was not given: the
// node goes on serving.
var ErrShutdownRefused = errors.New("shutdown refused")

// Redis's replies to SHUTDOWN, to the byte.
const (
	errShutdownFailed  = "ERR Errors trying to SHUTDOWN. Check logs."
	errNoShutdown      = "ERR No shutdown in progress."
	defaultDrainPeriod = 10 * time.Second
)

// shutdownState orders shutdowns: one runs at a time, and others (a
// signal, another SHUTDOWN) wait for its outcome.
type shutdownState struct {
	mu      sync.Mutex
	run     *shutdownRun // the shutdown under way, if any (not once aborted or refused)
	done    chan struct{}
	err     error // the finished shutdown's, once done is closed
	started atomic.Bool
}

// shutdownRun is one shutdown: abort cancels it while it waits for
// peers; finished is closed once it is over, err its outcome.
type shutdownRun struct {
	abort     chan struct{}
	aborted   bool
	finishing bool // past the point where ABORT can stop it
	finished  chan struct{}
	err       error
}

// connTracker counts the goroutines serving connections, and the accept
// loop, so a drain can wait for them to end, less those parked waiting for
// a shutdown they asked for.
type connTracker struct {
	mu       sync.Mutex
	cond     sync.Cond
	open     int
	parked   int
	draining atomic.Bool
}

func (t *connTracker) init() { t.cond.L = &t.mu }

func (t *connTracker) add(d int, parked int) {
	t.mu.Lock()
	t.open += d
	t.parked += parked
	t.mu.Unlock()
	t.cond.Broadcast()
}

func (t *connTracker) started() { t.add(1, 0) }
func (t *connTracker) ended()   { t.add(-1, 0) }

// wait waits until every goroutine counted has ended or is parked, or
// until deadline; it reports whether they had.
func (t *connTracker) wait(deadline time.Time) bool {
	timer := time.AfterFunc(time.Until(deadline), t.cond.Broadcast)
	defer timer.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.open > t.parked {
		if !time.Now().Before(deadline) {
			return false
		}
		t.cond.Wait()
	}
	return true
}

// Done is closed once the node has shut down (Shutdown, SHUTDOWN or
// Close); ShutdownErr then says how that went.
func (n *Node) Done() <-chan struct{} { return n.shut.done }

// ShutdownErr is the outcome of the shutdown that closed the node: nil, or
// what failed at close (the checkpoint). Valid once Done is closed.
func (n *Node) ShutdownErr() error {
	<-n.shut.done
	return n.shut.err
}

// Shutdown shuts the node down gracefully: unless opts.Now, it first waits
// (up to the shutdown timeout) for connected peers to acknowledge every
// local write; unless opts.Force, it refuses while the log is failing;
// then it stops accepting clients, lets every command under way finish
// and its writes commit, closes the connections, stops the mesh and
// closes the keyspace, with a checkpoint unless opts.NoSave. A shutdown
// already under way is joined, whatever opts; one aborted or refused is
// no longer under way, though it may not have returned yet. It returns
// ErrShutdownAborted or ErrShutdownRefused if the node goes on serving,
// else the outcome of the close.
func (n *Node) Shutdown(opts ShutdownOptions) error {
	return n.shutdown(opts, shutdownMode{drain: defaultDrainPeriod, mayRefuse: true})
}

// shutdownMode is how a shutdown goes: how long clients get to finish,
// and whether it may refuse (Close may not).
type shutdownMode struct {
	drain     time.Duration
	mayRefuse bool
}

func (n *Node) shutdown(opts ShutdownOptions, mode shutdownMode) error {
	return <-n.startShutdown(opts, mode)
}

// StartShutdown is Shutdown begun before it returns (ShutdownUnderWay
// then says so) and carried on in the background: the channel receives
// Shutdown's outcome.
func (n *Node) StartShutdown(opts ShutdownOptions) <-chan error {
	return n.startShutdown(opts, shutdownMode{drain: defaultDrainPeriod, mayRefuse: true})
}

func (n *Node) startShutdown(opts ShutdownOptions, mode shutdownMode) <-chan error {
	out := make(chan error, 1)
	s := &n.shut
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		out <- s.err
		return out
	default:
	}
	if r := s.run; r != nil {
		go func() {
			<-r.finished
			out <- r.err
		}()
		return out
	}
	r := &shutdownRun{abort: make(chan struct{}), finished: make(chan struct{})}
	s.run = r
	go func() {
		r.err = n.runShutdown(r, opts, mode)
		s.mu.Lock()
		if s.run == r {
			s.run = nil
		}
		s.mu.Unlock()
		close(r.finished)
		out <- r.err
	}()
	return out
}

// ShutdownUnderWay reports whether the node is shutting down or has shut
// down: a shutdown has begun and was neither aborted nor refused.
func (n *Node) ShutdownUnderWay() bool {
	n.shut.mu.Lock()
	defer n.shut.mu.Unlock()
	select {
	case <-n.shut.done:
		return true
	default:
	}
	return n.shut.run != nil
}

func (n *Node) runShutdown(r *shutdownRun, opts ShutdownOptions, mode shutdownMode) error {
	n.log.Warn("shutdown requested", "nosave", opts.NoSave, "now", opts.Now, "force", opts.Force)
	if n.shut.started.CompareAndSwap(false, true) && n.cfg.Stopping != nil {
		n.cfg.Stopping()
	}
	if !opts.Now {
		n.waitPeersBeforeShutdown(r)
	}
	n.shut.mu.Lock()
	aborted := r.aborted
	r.finishing = !aborted
	n.shut.mu.Unlock()
	if aborted {
		n.log.Warn("shutdown manually aborted")
		return ErrShutdownAborted
	}
	if err := n.db.LogFailure(); err != nil {
		if !opts.Force && mode.mayRefuse {
			n.shut.mu.Lock()
			r.finishing = false
			n.serveOn(r)
			n.shut.mu.Unlock()
			n.log.Error("can't shut down: the log is failing, and writes not in it would be lost (SHUTDOWN FORCE shuts down anyway)", "err", err)
			return ErrShutdownRefused
		}
		n.log.Warn("the log is failing; shutting down anyway (FORCE)", "err", err)
	}
	return n.finish(opts, mode.drain)
}

// serveOn records that run r was given up and the node serves on
// (n.shut.mu held): a shutdown asked for from now on is a new one, even
// while r's Shutdown is still on its way back to its caller (a signal's
// then may come before serve sees it returned).
func (n *Node) serveOn(r *shutdownRun) {
	if n.shut.run == r {
		n.shut.run = nil
	}
	n.shut.started.Store(false)
}

// waitPeersBeforeShutdown waits, up to the shutdown timeout, until every
// connected peer has acknowledged every local write, as Redis waits for its
// replicas, or SHUTDOWN ABORT.
func (n *Node) waitPeersBeforeShutdown(r *shutdownRun) {
	m := n.mesh.Load()
	timeout := time.Duration(n.live.shutdownTimeout.Load())
	if m == nil || timeout <= 0 {
		return
	}
	connected := m.Info().Connected
	if connected == 0 {
		return
	}
	ctx, cancel := contextUntil(r.abort)
	defer cancel()
	target := m.LastLocalSeq()
	n.log.Info("waiting for peers to acknowledge every write before shutting down", "peers", connected, "timeout", timeout)
	acked := m.WaitAcks(ctx, target, connected, timeout)
	if acked < connected {
		n.log.Warn("shutting down before every peer acknowledged every write", "acknowledged", acked, "connected", connected)
	}
}

// abortShutdown is SHUTDOWN ABORT: it cancels a shutdown waiting for
// peers, and reports whether there was one.
func (n *Node) abortShutdown() bool {
	n.shut.mu.Lock()
	defer n.shut.mu.Unlock()
	r := n.shut.run
	if r == nil || r.finishing || r.aborted {
		return false
	}
	r.aborted = true
	close(r.abort)
	n.serveOn(r)
	return true
}

// finish stops serving and closes everything: clients get up to drain to
// finish the commands they sent; then those still open are cut off.
func (n *Node) finish(opts ShutdownOptions, drain time.Duration) error {
	n.conns.draining.Store(true)
	n.ln.Close()
	// Wake the connections waiting for a request: each ends once it has
	// answered what it read.
	n.clients.Range(func(_, v any) bool {
		v.(*client).conn.SetReadDeadline(time.Now())
		return true
	})
	for _, l := range n.eventLoops() {
		l.drain()
	}
	n.blocked.pokeAll() // a blocked client ends without a reply, as Redis's are closed
	if !n.conns.wait(time.Now().Add(drain)) && drain > 0 {
		n.log.Warn("closing the connections still busy after the drain period", "period", drain)
	}
	n.clients.Range(func(_, v any) bool {
		c := v.(*client)
		if !c.parked.Load() {
			c.cancel() // a WAIT, say
			c.closeConn()
		}
		return true
	})
	n.conns.wait(time.Now().Add(time.Hour))
	close(n.stop)
	for _, l := range n.eventLoops() {
		l.stop()
	}
	n.wg.Wait()
	n.stopMesh()
	var err error
	if opts.NoSave {
		err = n.db.CloseWithoutCheckpoint()
	} else {
		err = n.db.Close()
	}
	// Nothing is stamped or observed any more: the next start begins at the
	// last timestamp rather than up to a window ahead (hlc.Clock.Close).
	if cerr := n.clock.Close(); err == nil {
		err = cerr
	}
	if lerr := n.wal.Close(); err == nil {
		err = lerr
	}
	switch {
	case err == nil:
		n.log.Info("shut down", "checkpoint", !opts.NoSave)
	case opts.Force:
		// Nothing is lost: the log holds every write, and the next
		// start replays it.
		n.log.Warn("errors shutting down; done anyway (FORCE)", "err", err)
		err = nil
	default:
		n.log.Error("errors shutting down", "err", err)
	}
	n.shut.err = err
	close(n.shut.done)
	return err
}

// contextUntil is a context cancelled once ch is closed (or cancel is
// called).
func contextUntil(ch <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// cmdShutdown is SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. SAVE is
// what redmesh does anyway: it writes a checkpoint at close. Once the node
// has shut down the connection closes without a reply, as Redis's does.
func cmdShutdown(n *Node, c *client, args [][]byte) {
	var opts ShutdownOptions
	var save, abort bool
	for _, a := range args[1:] {
		switch strings.ToLower(string(a)) {
		case "nosave":
			opts.NoSave = true
		case "save":
			save = true
		case "now":
			opts.Now = true
		case "force":
			opts.Force = true
		case "abort":
			abort = true
		default:
			c.w.WriteError(errSyntax)
			return
		}
	}
	if (abort && (opts != ShutdownOptions{} || save)) || (opts.NoSave && save) {
		c.w.WriteError(errSyntax)
		return
	}
	if abort {
		if n.abortShutdown() {
			c.w.WriteString("OK")
		} else {
			c.w.WriteError(errNoShutdown)
		}
		return
	}
	// Parked, the connection is not waited for by the drain: it waits for
	// the shutdown it asked for.
	c.parked.Store(true)
	n.conns.add(0, 1)
	err := n.Shutdown(opts)
	n.conns.add(0, -1)
	c.parked.Store(false)
	switch {
	case err == nil:
		c.quit = true // closed without a reply
	case errors.Is(err, ErrShutdownAborted), errors.Is(err, ErrShutdownRefused):
		c.w.WriteError(errShutdownFailed)
	default:
		// Closed, but the checkpoint failed: say so before the
		// connection closes (the log holds every write).
		c.w.WriteError(errShutdownFailed)
		c.quit = true
	}
}
