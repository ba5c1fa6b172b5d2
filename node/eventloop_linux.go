package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/resp"
)

// eventLoop serves its client connections from one goroutine over epoll,
// as Redis's event loop does: each round it reads every connection that is
// ready, runs their requests (the keyspace commands of all of them in
// shared write-path steps, answered after one wait for their commit) and
// writes the replies. A
// goroutine per connection pays a park and a wake-up through the runtime's
// poller for every request, at -P 1 as much CPU as Redis's whole SET
// (bench/RESULTS.md). A connection whose command may wait on anything but
// the node's own commit (BLPOP, WAIT, SHUTDOWN ...) is handed to a
// goroutine of its own for the rest of its life (serveDetached). Written
// here rather than taken from an event-loop library because the step
// shared by every ready connection needs the loop's rounds, which such
// libraries' per-connection callbacks do not expose.
type eventLoop struct {
	n    *Node
	ep   int // the epoll instance
	epf  *os.File
	raw  syscall.RawConn // epf's
	wake int             // an eventfd: new connections, closes asked for, a drain, the stop

	mu      sync.Mutex // guards the requests below, made from other goroutines
	added   []*loopConn
	closing []*client
	stopped bool

	conns   map[int32]*loopConn // by file descriptor; touched only by the loop
	events  []unix.EpollEvent
	ready   []*loopConn
	grouped []*loopConn // the connections of this round's steps
	steps   []step
	// again are connections whose reader holds requests past the
	// maxPipeline it answers a round: the socket, empty, would not report
	// them.
	again     []*loopConn
	round     uint64
	lastIdle  time.Time
	wakeBytes [8]byte
}

// loopConn is a connection served by the loop: its reader and writer.
type loopConn struct {
	l  *eventLoop
	c  *client
	fd int // fc's, while the loop serves it
	fc *fdConn
	rd *resp.Reader
	// batch is the requests read this round; readErr what ended the read.
	batch   [][][]byte
	readErr error
	// buf holds the replies of the step shared with other connections
	// until it commits.
	buf replyBuf
	// out is what the socket has not taken yet; while it holds anything,
	// the connection is not read (a client that does not read its replies
	// stops being served, as it would be by blocking writes).
	out     []byte
	writing bool // registered for EPOLLOUT instead of EPOLLIN
	ending  bool // close once out is written
	failed  bool // a write failed: the client is gone, replies are dropped
	// round is the last round that read the connection.
	round uint64
	// detached: served by a goroutine from now on; reads and writes block.
	detached bool
}

// errWouldBlock is a read that found nothing on a non-blocking socket.
var errWouldBlock = errors.New("would block")

// maxOutput bounds the replies a connection may have waiting for its
// client to read them; past it the loop waits for the client, up to
// outputWait without progress, and then cuts it off. A goroutine's
// blocking write would wait on that client alone; the loop cannot serve
// anyone else meanwhile, so it waits only for a client that asked for this
// much more than it reads.
const (
	maxOutput  = 64 << 20
	outputWait = 10 * time.Second
)

// slowCommit is how long the loop waits for a step's commit before it
// hands the step's connections to goroutines (eventLoop.answer).
const slowCommit = 200 * time.Millisecond

func newEventLoop(n *Node) (*eventLoop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create the client event loop's epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("create the client event loop's eventfd: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, fmt.Errorf("watch the client event loop's eventfd: %w", err)
	}
	// The runtime's poller watches the epoll descriptor, readable while
	// events wait in it (wait).
	if err := unix.SetNonblock(ep, true); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, fmt.Errorf("make the client event loop's epoll non-blocking: %w", err)
	}
	epf := os.NewFile(uintptr(ep), "epoll")
	raw, err := epf.SyscallConn()
	if err != nil {
		epf.Close()
		unix.Close(wake)
		return nil, fmt.Errorf("poll the client event loop's epoll: %w", err)
	}
	return &eventLoop{
		n: n, ep: ep, epf: epf, raw: raw, wake: wake,
		conns:  make(map[int32]*loopConn),
		events: make([]unix.EpollEvent, 256),
	}, nil
}

// accept serves a new connection on the loop. It reports false, having
// done nothing, if the loop cannot take the connection's descriptor: the
// caller serves it on a goroutine.
func (l *eventLoop) accept(nc net.Conn) bool {
	n := l.n
	if n.refuse(nc) {
		nc.Close()
		n.conns.ended()
		return true
	}
	lc := l.take(nc)
	if lc == nil {
		return false
	}
	l.mu.Lock()
	l.added = append(l.added, lc)
	l.mu.Unlock()
	l.signal()
	return true
}

// take makes a client of nc served through a duplicate of its
// descriptor, or returns nil if there is none to take.
func (l *eventLoop) take(nc net.Conn) *loopConn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	// The loop reads a duplicate of the descriptor and the net.Conn is
	// closed, which takes the socket out of the runtime's poller: watched
	// there too, every request would wake the runtime as well as the loop.
	fd := -1
	raw.Control(func(f uintptr) { fd, err = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) })
	if err != nil || fd < 0 {
		return nil
	}
	fc := &fdConn{fd: fd, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
	nc.Close()
	return &loopConn{l: l, fd: fd, fc: fc}
}

// register makes lc's client, known to other clients (CLIENT LIST, KILL)
// only once the loop serves it.
func (l *eventLoop) register(lc *loopConn) {
	lc.c = l.n.newClient(lc.fc, lc)
	lc.rd = resp.NewReader(lc, l.n.cfg.ProtoMaxBulkLen)
	lc.c.loop.Store(l)
}

// requestClose asks the loop to close c's connection: the loop owns the
// descriptor, and closing it under the loop would let the number be reused
// by the next connection while the loop still reads it.
func (l *eventLoop) requestClose(c *client) {
	l.mu.Lock()
	l.closing = append(l.closing, c)
	l.mu.Unlock()
	l.signal()
}

// drain wakes the loop to end its connections: a shutdown has begun
// (connTracker.draining).
func (l *eventLoop) drain() { l.signal() }

// stop ends the loop once its connections are gone.
func (l *eventLoop) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.signal()
}

func (l *eventLoop) signal() {
	one := [8]byte{1}
	rawWrite(l.wake, one[:]) // EAGAIN only once the counter is huge: the loop is awake anyway
}

// close releases the loop's descriptors.
func (l *eventLoop) close() {
	unix.Close(l.wake)
	l.epf.Close()
}

// run is the loop. It returns once stop is called.
func (l *eventLoop) run() {
	defer l.n.wg.Done()
	defer l.close()
	l.lastIdle = time.Now()
	for {
		k, err := l.wait()
		if err != nil {
			l.n.log.Error("client event loop: epoll_wait", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.round++
		l.ready = l.ready[:0]
		for _, ev := range l.events[:max(k, 0)] {
			if ev.Fd == int32(l.wake) {
				// Closes asked for before requests read now: a client
				// told that another was killed must find it closed.
				if l.requests() {
					return
				}
			}
		}
		for _, lc := range l.again {
			if l.conns[int32(lc.fd)] == lc && !lc.writing && !lc.ending && l.read(lc) {
				l.ready = append(l.ready, lc)
			}
		}
		clear(l.again)
		l.again = l.again[:0]
		for _, ev := range l.events[:max(k, 0)] {
			if ev.Fd == int32(l.wake) {
				continue
			}
			lc := l.conns[ev.Fd]
			if lc == nil {
				continue
			}
			if lc.writing {
				l.flushOut(lc)
				continue
			}
			if lc.ending || lc.round == l.round {
				continue
			}
			if l.read(lc) {
				l.ready = append(l.ready, lc)
			}
		}
		if len(l.ready) > 0 {
			l.serve(l.ready)
			for _, lc := range l.ready {
				if !lc.detached {
					l.settle(lc)
				}
			}
		}
		if now := time.Now(); now.Sub(l.lastIdle) >= time.Second {
			l.lastIdle = now
			l.closeIdle(now)
		}
	}
}

// wait returns the events ready, waiting for one (up to a second, for
// closeIdle) unless connections are to be read again at once. With one
// thread to run goroutines (GOMAXPROCS 1: a quiet node, node/procs.go) it
// waits in the runtime's poller, on the epoll descriptor itself: a
// goroutine blocked in epoll_wait keeps the thread's P until the runtime's
// monitor takes it back, up to 10 ms later on a quiet node, and the mesh's
// goroutines waited that long. With more, another thread is free to run
// them, and epoll_wait itself costs less than the runtime's poller's wake.
func (l *eventLoop) wait() (int, error) {
	var k int
	var err error
	if len(l.again) > 0 || runtime.GOMAXPROCS(0) > 1 {
		timeout := 1000
		if len(l.again) > 0 {
			timeout = 0
		}
		if timeout == 0 {
			k, err = rawEpollPoll(l.ep, l.events)
		} else {
			k, err = unix.EpollWait(l.ep, l.events, timeout)
		}
		if err == unix.EINTR {
			err = nil
		}
		return max(k, 0), err
	}
	l.epf.SetReadDeadline(time.Now().Add(time.Second))
	looked := false
	rerr := l.raw.Read(func(uintptr) bool {
		if looked {
			return true // woken through the poller, with what the look found
		}
		k, err = rawEpollPoll(l.ep, l.events)
		if err != nil && err != unix.EINTR || k == 0 {
			return err != nil && err != unix.EINTR
		}
		// Found without waiting: the loop still parks once, woken by an
		// event of its own. The runtime polls the network only when its
		// one thread has nothing to run, and a loop that found requests
		// at every look (a client's next request in while the last reply
		// was written) never let it: a peer's push waited in its socket,
		// read by no one, while the loop answered the same client's reads
		// of the old value, until the runtime's monitor polled (up to 10
		// ms).
		looked = true
		l.signal()
		return false
	})
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		if !looked {
			return 0, nil
		}
		rerr = nil
	}
	switch {
	case rerr != nil:
		return 0, rerr
	case err != nil:
		return 0, err
	}
	// The one thread runs the goroutines the poller found ready with the
	// loop (woken by a client or by its own event), a peer's push among
	// them, in an order of the runtime's (the last found first: often the
	// loop). Yielding lets a push that came
	// before the clients' requests be merged before they are answered:
	// otherwise a client reading a peer's write got the old value and
	// asked again, a round trip later. A Redis replica likewise applies
	// what its master sent before the reads that came after it.
	runtime.Gosched()
	return k, nil
}

// requests takes what other goroutines asked of the loop; it reports
// whether the loop is to stop.
func (l *eventLoop) requests() bool {
	rawRead(l.wake, l.wakeBytes[:])
	l.mu.Lock()
	added, closing, stopped := l.added, l.closing, l.stopped
	l.added, l.closing = nil, nil
	l.mu.Unlock()
	draining := l.n.conns.draining.Load()
	for _, lc := range added {
		if draining {
			lc.fc.Close()
			l.n.conns.ended()
			continue
		}
		l.register(lc)
		if err := rawEpollCtl(l.ep, unix.EPOLL_CTL_ADD, lc.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lc.fd)}); err != nil {
			l.n.log.Warn("client event loop: watch a connection", "client", lc.c.id, "err", err)
			l.end(lc)
			continue
		}
		l.conns[int32(lc.fd)] = lc
	}
	for _, c := range closing {
		if lc := l.find(c); lc != nil {
			l.end(lc)
		} else {
			c.conn.Close() // detached since it asked: its goroutine ends on the close
		}
	}
	if draining {
		// Every request read has been answered: each connection ends
		// once its replies are written.
		for _, lc := range l.conns {
			lc.ending = true
			if len(lc.out) == 0 {
				l.end(lc)
			}
		}
	}
	return stopped && len(l.conns) == 0
}

func (l *eventLoop) find(c *client) *loopConn {
	for _, lc := range l.conns {
		if lc.c == c {
			return lc
		}
	}
	return nil
}

// closeIdle closes the connections idle for longer than --timeout, as
// Redis's timeout does.
func (l *eventLoop) closeIdle(now time.Time) {
	d := l.n.live.timeout()
	if d <= 0 {
		return
	}
	for _, lc := range l.conns {
		if !lc.writing && now.Sub(time.Unix(0, lc.c.info.lastActive.Load())) > d {
			l.end(lc)
		}
	}
}

// read reads lc's requests, all those pipelined up to maxPipeline, and
// reports whether there is anything to answer (requests, or the error
// that ends the connection).
func (l *eventLoop) read(lc *loopConn) bool {
	lc.round = l.round
	lc.batch, lc.readErr = lc.batch[:0], nil
	args, err := lc.rd.ReadCommand()
	if err == errWouldBlock {
		return false
	}
	if err != nil {
		lc.readErr = err
		return true
	}
	lc.c.info.lastActive.Store(time.Now().UnixNano())
	lc.batch = append(lc.batch, args)
	for len(lc.batch) < maxPipeline {
		if args, err = lc.rd.Next(); err != nil {
			if err != resp.ErrIncomplete {
				lc.readErr = err
			}
			break
		}
		lc.batch = append(lc.batch, args)
	}
	return true
}

// serve answers the requests read this round: the connections sending
// only keyspace commands that never block share write-path steps, all
// published before the loop waits for their commit; the others run on
// their own, or go to goroutines of their own if a command may block.
func (l *eventLoop) serve(ready []*loopConn) {
	start, count := len(l.grouped), 0
	for _, lc := range ready {
		c := lc.c
		switch {
		case len(lc.batch) == 0:
		case c.multi == nil && l.groupable(lc):
			l.grouped = append(l.grouped, lc)
			if count += len(lc.batch); count >= maxGroup {
				l.publish(l.grouped[start:])
				start, count = len(l.grouped), 0
			}
		case l.mayBlock(lc):
			l.detach(lc)
		default:
			c.clockAt = 0
			l.n.runPipeline(c, lc.batch)
		}
	}
	if start < len(l.grouped) {
		l.publish(l.grouped[start:])
	}
	for _, st := range l.steps {
		l.answer(l.grouped[st.from:st.to], st.commit, st.err)
	}
	clear(l.grouped)
	l.grouped, l.steps = l.grouped[:0], l.steps[:0]
}

// step is a write-path step the loop published this round: the
// connections of grouped[from:to] ran in it.
type step struct {
	from, to int
	commit   keyspace.Commit
	err      error
}

func (l *eventLoop) groupable(lc *loopConn) bool {
	for _, args := range lc.batch {
		if !lc.c.groupable(args) {
			return false
		}
	}
	return true
}

// mayBlock reports whether a request of lc's may wait on anything but the
// node's own commit: a blocking command, WAIT, SHUTDOWN, MESH, or an EXEC
// of a transaction that queued one.
func (l *eventLoop) mayBlock(lc *loopConn) bool {
	c := lc.c
	for _, args := range lc.batch {
		spec := c.lookup(args[0])
		switch {
		case spec == nil:
		case spec.blocks:
			return true
		case spec.name == "exec" && c.multi != nil:
			for _, q := range c.multi.queued {
				if s := lookup(q[0]); s != nil && s.blocks {
					return true
				}
			}
		}
	}
	return false
}

// publish runs the requests of the connections in group in one
// write-path step, as runGroup does for one connection's pipeline, and
// leaves its commit to wait for; a round's reads alone run outside the
// write lock, as runPipeline runs them.
func (l *eventLoop) publish(group []*loopConn) {
	n := l.n
	write := false
	for _, lc := range group {
		lc.c.clockAt = 0
		if lc.c.anyWrite(lc.batch) {
			write = true
		}
	}
	if !write {
		for _, lc := range group {
			for _, args := range lc.batch {
				n.dispatch(lc.c, args)
			}
			lc.buf.reset()
		}
		return
	}
	commit, err := n.db.Publish(context.Background(), func(tx *keyspace.Tx) error {
		defer func() {
			for _, lc := range group {
				lc.c.tx, lc.c.w = nil, lc.c.out
			}
		}()
		for _, lc := range group {
			c := lc.c
			lc.buf.reset() // a retried step starts over
			c.tx, c.w = tx, &lc.buf
			c.prefetchKeys(tx, lc.batch)
			for _, args := range lc.batch {
				sp := tx.Savepoint()
				c.panicked = false
				n.dispatch(c, args)
				if c.panicked {
					return errPanicked
				}
				n.blocked.serve(tx, sp)
			}
		}
		return nil
	})
	to := len(l.grouped)
	l.steps = append(l.steps, step{from: to - len(group), to: to, commit: commit, err: err})
}

// answer writes the replies of a step's connections once it is committed.
// A commit that takes over slowCommit (a log that cannot be written holds
// its writers until it can) hands the step's connections to goroutines
// that wait for it, so that the loop goes on serving the others.
func (l *eventLoop) answer(group []*loopConn, commit keyspace.Commit, err error) {
	if done := commit.Done(); done != nil && !l.committed(done) {
		for _, lc := range group {
			if l.release(lc) {
				go l.n.serveAfterCommit(lc, commit)
			}
		}
		return
	}
	if werr := commit.Wait(); err == nil {
		err = werr
	}
	switch {
	case errors.Is(err, errPanicked):
		// Nothing of the step was published: each connection's requests
		// run again in steps of their own, so that only the one at fault
		// is answered with the error.
		for _, lc := range group {
			lc.c.clockAt = 0
			l.n.runPipeline(lc.c, lc.batch)
		}
	case err != nil:
		for _, lc := range group {
			for range lc.batch {
				lc.c.writeErr(err)
			}
		}
	default:
		for _, lc := range group {
			lc.c.out.WriteRaw(lc.buf.b)
			lc.buf.b = keepSmall(lc.buf.b)
		}
	}
}

// settle ends lc's round: the read's error answered, the replies written
// as far as the socket takes them, the connection closed if it ends.
func (l *eventLoop) settle(lc *loopConn) {
	c := lc.c
	var perr *resp.ProtocolError
	switch {
	case errors.As(lc.readErr, &perr):
		l.n.log.Debug("client broke the protocol", "client", c.id, "addr", c.conn.RemoteAddr(), "err", lc.readErr)
		c.out.WriteError(perr.Error())
		lc.ending = true
	case lc.readErr != nil:
		lc.ending = true // the client closed, or the socket failed
	case c.quit:
		lc.ending = true
	}
	c.out.Flush()
	clear(lc.batch) // the requests point into the reader's buffer
	lc.batch = lc.batch[:0]
	l.watchOut(lc)
}

// Read reads from the socket without blocking (the resp.Reader's source).
func (lc *loopConn) Read(p []byte) (int, error) {
	if lc.detached {
		return lc.c.conn.Conn.Read(p)
	}
	n, err := rawRead(lc.fd, p)
	for err == unix.EINTR {
		n, err = rawRead(lc.fd, p)
	}
	switch {
	case err == unix.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write takes replies (the redcon writer's flushes): what the socket does
// not take at once waits in out, up to maxOutput.
func (lc *loopConn) Write(p []byte) (int, error) {
	if lc.detached {
		return lc.c.conn.Conn.Write(p)
	}
	if lc.failed {
		return len(p), nil
	}
	size := len(p)
	if len(lc.out) == 0 {
		p = p[lc.writeSome(p):]
	}
	lc.out = append(lc.out, p...)
	if len(lc.out) >= maxOutput {
		lc.waitOut()
	}
	return size, nil
}

// writeSome writes what the socket takes of p without blocking.
func (lc *loopConn) writeSome(p []byte) int {
	done := 0
	var err error
	for done < len(p) {
		var n int
		n, err = rawWrite(lc.fd, p[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break
		}
		done += n
	}
	if err != nil && err != unix.EAGAIN {
		lc.ending, lc.failed, lc.out = true, true, nil
		return len(p)
	}
	return done
}

// waitOut writes out while the client reads it, up to outputWait without
// progress; past that the client is cut off.
func (lc *loopConn) waitOut() {
	for len(lc.out) > 0 && !lc.failed {
		if n := lc.writeSome(lc.out); n > 0 {
			lc.out = consumed(lc.out, n)
			continue
		}
		fds := []unix.PollFd{{Fd: int32(lc.fd), Events: unix.POLLOUT}}
		ready, _ := unix.Poll(fds, int(outputWait/time.Millisecond))
		if ready <= 0 {
			lc.l.n.log.Warn("closing a client that read none of a long reply", "client", lc.c.id, "waited", outputWait)
			lc.ending, lc.failed, lc.out = true, true, nil
			return
		}
	}
}

// consumed is out less its first n bytes, written.
func consumed(out []byte, n int) []byte {
	return keepSmall(out[:copy(out, out[n:])])
}

// keepSmall is b, or nil once it is empty and its array large: a
// connection keeps no buffer a long reply grew.
func keepSmall(b []byte) []byte {
	if len(b) == 0 && cap(b) > 64<<10 {
		return nil
	}
	return b
}

// flushOut writes what waits in out, once the socket has room.
func (l *eventLoop) flushOut(lc *loopConn) {
	if n := lc.writeSome(lc.out); n > 0 {
		lc.out = consumed(lc.out, n)
	}
	l.watchOut(lc)
}

// watchOut watches lc for room to write while out holds anything, and for
// requests otherwise; it ends lc once it is ending and has written all.
func (l *eventLoop) watchOut(lc *loopConn) {
	want := len(lc.out) > 0
	if !want && lc.ending {
		l.end(lc)
		return
	}
	if want == lc.writing {
		l.readAgain(lc)
		return
	}
	events := uint32(unix.EPOLLIN)
	if want {
		events = unix.EPOLLOUT
	}
	if err := rawEpollCtl(l.ep, unix.EPOLL_CTL_MOD, lc.fd, &unix.EpollEvent{Events: events, Fd: int32(lc.fd)}); err != nil {
		l.n.log.Warn("client event loop: rewatch a connection", "client", lc.c.id, "err", err)
		l.end(lc)
		return
	}
	lc.writing = want
	l.readAgain(lc)
}

// readAgain reads lc next round without waiting for its socket if its
// reader holds more than it answered.
func (l *eventLoop) readAgain(lc *loopConn) {
	if !lc.writing && !lc.ending && lc.rd.Buffered() > 0 {
		l.again = append(l.again, lc)
	}
}

// end closes lc's connection and unregisters its client.
func (l *eventLoop) end(lc *loopConn) {
	if l.conns[int32(lc.fd)] == lc {
		rawEpollCtl(l.ep, unix.EPOLL_CTL_DEL, lc.fd, nil)
		delete(l.conns, int32(lc.fd))
	}
	lc.c.loop.Store(nil)
	lc.c.conn.Close()
	l.n.endClient(lc.c)
	l.n.conns.ended()
}

// committed waits up to slowCommit for done.
func (l *eventLoop) committed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
	}
	t := time.NewTimer(slowCommit)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// detach hands lc to a goroutine of its own, which answers the requests
// read this round and goes on serving it as serveConn serves a connection.
func (l *eventLoop) detach(lc *loopConn) {
	if l.release(lc) {
		go l.n.serveDetached(lc)
	}
}

// release takes lc out of the loop, its descriptor moved into a net.Conn
// for a goroutine to serve; false if that failed and lc ended.
func (l *eventLoop) release(lc *loopConn) bool {
	delete(l.conns, int32(lc.fd))
	rawEpollCtl(l.ep, unix.EPOLL_CTL_DEL, lc.fd, nil)
	lc.c.loop.Store(nil)
	lc.detached = true
	if err := lc.fc.toNetConn(); err != nil {
		l.n.log.Warn("client event loop: hand a connection to a goroutine", "client", lc.c.id, "err", err)
		lc.c.conn.Close()
		l.n.endClient(lc.c)
		l.n.conns.ended()
		return false
	}
	return true
}

// serveDetached serves a connection the loop handed over, starting with
// the requests it read.
func (n *Node) serveDetached(lc *loopConn) {
	c := lc.c
	defer n.conns.ended()
	defer c.conn.Close()
	defer n.endClient(c)
	if len(lc.out) > 0 {
		if _, err := c.conn.Write(lc.out); err != nil {
			return
		}
		lc.out = nil
	}
	if !n.answer(c, lc.batch, lc.readErr) {
		return
	}
	n.serveRequests(c, lc.rd)
}

// serveAfterCommit serves a connection the loop handed over while a step
// of its requests waited for the log: their replies once it is in, then
// what follows.
func (n *Node) serveAfterCommit(lc *loopConn, commit keyspace.Commit) {
	c := lc.c
	defer n.conns.ended()
	defer c.conn.Close()
	defer n.endClient(c)
	if err := commit.Wait(); err != nil {
		for range lc.batch {
			c.writeErr(err)
		}
	} else {
		c.out.WriteRaw(lc.buf.b)
	}
	if !n.flushAnswers(c, lc.readErr) {
		return
	}
	n.serveRequests(c, lc.rd)
}
