package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/resp"
)

// client is one RESP connection's state.
type client struct {
	n       *Node
	id      uint64
	conn    clientConn
	out     *connWriter  // buffers replies to conn until the pipeline is answered
	w       replier      // where replies go: out, or a buffer during EXEC
	quit    bool         // close once the replies are flushed (QUIT)
	tx      *keyspace.Tx // set while the client's commands run inside the write path
	keysBuf [][]byte     // the keys a write-path step prefetches (prefetchKeys)
	ctx     context.Context
	cancel  context.CancelFunc
	created time.Time
	name    string
	libName string
	libVer  string
	lastCmd string
	// panicked: the command last dispatched panicked (dispatch).
	panicked bool
	// spec is the command last looked up and named the name it was
	// looked up by: a pipeline mostly repeats one command, looked up three
	// times each (runPipeline, dispatch).
	spec  *commandSpec
	named []byte
	multi *multiState // open MULTI, if any
	// watched are the keys of WATCH, as they were when watched.
	watched []watchedKey
	authed  bool
	parked  atomic.Bool // waiting in SHUTDOWN for the node to shut down
	// loop is the event loop serving the connection, nil once a goroutine
	// serves it (closeConn).
	loop   atomic.Pointer[eventLoop]
	info   connInfo // what other connections may read (CLIENT LIST)
	counts counts   // this connection's share of INFO's counters
	// clockAt is when the client's last command ended, while the pipeline
	// it belongs to runs (0 between pipelines), and clockTx the write-path
	// step it ran in: the next command's start (see dispatch).
	clockAt time.Duration
	clockTx *keyspace.Tx
}

// clientConn is a client's network connection.
type clientConn struct{ net.Conn }

// RemoteAddr is the client's address as CLIENT LIST shows it.
func (c clientConn) RemoteAddr() string { return c.Conn.RemoteAddr().String() }

// NetConn is the underlying connection.
func (c clientConn) NetConn() net.Conn { return c.Conn }

// Close closes the connection; the client's loop then ends.
func (c clientConn) Close() error { return c.Conn.Close() }

// closeConn closes c's connection from another client's command or a
// shutdown. An event loop serving it closes it itself: it owns the
// descriptor.
func (c *client) closeConn() {
	if l := c.loop.Load(); l != nil {
		l.requestClose(c)
		return
	}
	c.conn.Close()
}

// admit answers why a new connection is refused, or "" to let it in: over
// maxclients, or from beyond loopback in protected mode.
func (n *Node) admit(nc net.Conn) string {
	if n.nclients.Load() >= n.live.maxClients.Load() {
		return "ERR max number of clients reached"
	}
	if n.live.password() == "" && !n.live.protectedModeOff.Load() && !isLoopback(nc.RemoteAddr()) {
		n.log.Warn("refused a client from beyond loopback: protected mode", "addr", nc.RemoteAddr().String())
		return errDenied
	}
	return ""
}

// maxPipeline bounds the requests answered in one go; the rest wait in the
// reader's buffer (and then in the socket), so a client pipelining without
// end pushes back instead of filling memory.
const maxPipeline = 1024

// serveConn runs one client connection on a goroutine of its own until it
// closes, QUITs, breaks the protocol or the node shuts down: every
// connection where the node has no event loop, one a loop cannot take.
// A connection a loop hands over (serveDetached, serveAfterCommit) goes on
// in serveRequests.
func (n *Node) serveConn(nc net.Conn) {
	defer n.conns.ended()
	defer nc.Close()
	if n.refuse(nc) {
		return
	}
	c := n.newClient(nc, nc)
	defer n.endClient(c)
	if n.conns.draining.Load() { // the drain may have passed the clients before this one registered
		return
	}
	n.serveRequests(c, resp.NewReader(nc, n.cfg.ProtoMaxBulkLen))
}

// refuse answers a new connection why it is refused, if it is (admit).
func (n *Node) refuse(nc net.Conn) bool {
	msg := n.admit(nc)
	if msg == "" {
		return false
	}
	n.cmds.rejectedConns.Add(1)
	nc.Write([]byte("-" + msg + "\r\n"))
	return true
}

// newClient registers a client on nc, its replies written to w.
func (n *Node) newClient(nc net.Conn, w io.Writer) *client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{
		n:       n,
		id:      n.clientID.Add(1),
		conn:    clientConn{nc},
		out:     &connWriter{Writer: redcon.NewWriter(w)},
		ctx:     ctx,
		cancel:  cancel,
		created: time.Now(),
		authed:  n.live.password() == "",
	}
	c.w = c.out
	c.info.lastActive.Store(c.created.UnixNano())
	c.info.multi.Store(-1)
	n.clients.Store(c.id, c)
	n.nclients.Add(1)
	n.stats.connections.Add(1)
	return c
}

// endClient unregisters a client whose connection has ended.
func (n *Node) endClient(c *client) {
	c.cancel()
	c.unwatch()
	n.stats.countsMu.Lock()
	n.stats.closed.add(&c.counts)
	n.clients.Delete(c.id)
	n.stats.countsMu.Unlock()
	n.nclients.Add(-1)
}

// serveRequests reads c's requests from rd and answers them until the
// connection ends. It reads every request already pipelined, answers them
// together (runs of keyspace commands share one write-path step) and
// flushes once.
func (n *Node) serveRequests(c *client, rd *resp.Reader) {
	nc := c.conn.Conn
	batch := make([][][]byte, 0, 16)
	deadline := false // a read deadline is set (--timeout)
	for {
		if d := n.live.timeout(); d > 0 {
			nc.SetReadDeadline(time.Now().Add(d))
			deadline = true
		} else if deadline { // CONFIG SET timeout 0
			nc.SetReadDeadline(time.Time{})
			deadline = false
		}
		// Checked after the deadline is set: a shutdown's drain sets
		// one in the past to wake the connection, after it set draining.
		if n.conns.draining.Load() {
			return
		}
		args, err := rd.ReadCommand()
		if err != nil {
			n.endConn(c, err)
			return
		}
		c.info.lastActive.Store(time.Now().UnixNano())
		batch = append(batch[:0], args)
		for len(batch) < maxPipeline {
			if args, err = rd.Next(); err != nil {
				break
			}
			batch = append(batch, args)
		}
		if !n.answer(c, batch, err) {
			return
		}
	}
}

// answer runs a batch of requests read together and flushes their replies;
// readErr is what ended the read. It reports whether the connection goes on.
func (n *Node) answer(c *client, batch [][][]byte, readErr error) bool {
	c.clockAt = 0 // the time waiting for the client is no command's
	n.runPipeline(c, batch)
	return n.flushAnswers(c, readErr)
}

// flushAnswers answers the read's protocol error, if that ended it, and
// flushes the replies; it reports whether the connection goes on.
func (n *Node) flushAnswers(c *client, readErr error) bool {
	var perr *resp.ProtocolError
	if errors.As(readErr, &perr) {
		c.out.WriteError(perr.Error())
	}
	ferr := c.out.Flush()
	return ferr == nil && perr == nil && !c.quit
}

// endConn answers a protocol error before the connection closes.
func (n *Node) endConn(c *client, err error) {
	var perr *resp.ProtocolError
	if errors.As(err, &perr) {
		// Logged before the reply, so the line follows the log level in
		// force when the client is answered, not whatever it is set to
		// next.
		n.log.Debug("client broke the protocol", "client", c.id, "addr", c.conn.RemoteAddr(), "err", err)
		c.out.WriteError(perr.Error())
		c.out.Flush()
	}
}

// lookup finds the command named name, reusing the last lookup if it was of
// the same name, byte for byte.
func (c *client) lookup(name []byte) *commandSpec {
	if c.spec != nil && bytes.Equal(name, c.named) {
		return c.spec
	}
	spec := lookup(name)
	if spec != nil {
		c.spec, c.named = spec, append(c.named[:0], name...)
	}
	return spec
}

// update runs fn as one atomic step of the write path. Inside EXEC (or a
// batched pipeline) it runs in the transaction already open, and a failing
// command undoes only its own changes.
func (c *client) update(fn keyspace.UpdateFunc) error {
	if c.tx != nil {
		sp := c.tx.Savepoint()
		err := fn(c.tx)
		if err != nil {
			c.tx.RollbackTo(sp)
		}
		return err
	}
	return c.n.db.Update(c.ctx, func(tx *keyspace.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		c.n.blocked.serve(tx, 0) // see blocking.go: before the next command
		return nil
	})
}

// get reads key's record, through the open transaction if there is one.
func (c *client) get(key []byte) (record.Record, error) {
	if c.tx != nil {
		return c.tx.Get(key)
	}
	return c.n.db.Get(key), nil
}

// read returns key's record and whether the client sees it now.
func (c *client) read(key []byte) (record.Record, bool, error) {
	rec, err := c.get(key)
	if err != nil {
		return rec, false, err
	}
	return rec, rec.Live(c.n.nowMillis()), nil
}

// dispatch runs one command. A panic in a command is answered with an error
// and logged; it never takes the server down. Every command is counted in
// the command statistics: its time and whether it failed, or that it was
// rejected before it ran, and every error reply by its prefix.
func (n *Node) dispatch(c *client, args [][]byte) {
	errs := c.w.errorReplies()
	defer func() {
		if p := recover(); p != nil {
			c.panicked = true
			n.stats.panics.Add(1)
			n.log.Error("command panicked", "cmd", c.lastCmd, "panic", p, "stack", string(debug.Stack()))
			c.w.WriteError("ERR internal error")
		}
		if e := c.w.errorReplies(); e != errs {
			n.cmds.errorReply(c.w.lastError())
		}
	}()
	spec := c.lookup(args[0])
	var name string
	if spec != nil {
		name = spec.name
	} else {
		name = strings.ToLower(string(args[0]))
	}
	c.lastCmd = name
	if !c.authed && (spec == nil || !spec.noAuth()) {
		c.w.WriteError("NOAUTH Authentication required.")
		n.rejected(c, spec, args)
		return
	}
	c.track(args)
	defer c.trackMulti()
	if spec != nil && n.staleRefused(spec) {
		if c.multi != nil {
			c.multi.failed = true // EXEC answers EXECABORT, as Redis flags the transaction
		}
		c.w.WriteError(errStale)
		n.rejected(c, spec, args)
		return
	}
	if spec != nil && c.refusedOverMemory(spec) && n.overMemory() {
		switch {
		case spec.name == "exec":
			c.multi = nil
			c.w.WriteError("EXECABORT Transaction discarded because of: " + errOOM)
		case c.multi != nil:
			c.multi.failed = true
			c.w.WriteError(errOOM)
		default:
			c.w.WriteError(errOOM)
		}
		return
	}
	if c.multi != nil && !spec.controlsMulti() {
		c.queue(name, spec, args)
		if c.w.errorReplies() != errs {
			n.rejected(c, spec, args)
		}
		return
	}
	if spec == nil {
		c.w.WriteError(unknownCommand(args))
		return
	}
	if !spec.arityOK(len(args)) {
		c.w.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
		n.rejected(c, spec, args)
		return
	}
	// A pipeline's commands are timed end to end: one clock read each, the
	// end of one the start of the next, except where a run of them starts
	// (a new read from the client, a write-path step of its own).
	start := c.clockAt
	if start == 0 || c.clockTx != c.tx {
		start = n.cmds.clock()
	}
	spec.fn(n, c, args)
	end := n.cmds.clock()
	c.clockAt, c.clockTx = end, c.tx
	if slot := statSlotOf(spec, args); slot >= 0 {
		n.cmds.ran(c.id, slot, end-start, c.w.errorReplies() != errs)
		// Counted once run, as Redis counts total_commands_processed: not
		// the refused ones (an unknown subcommand among them), nor those
		// MULTI queues until EXEC runs them.
		c.counts.commands.Add(1)
	}
}

// rejected counts a call refused before it ran.
func (n *Node) rejected(c *client, spec *commandSpec, args [][]byte) {
	if spec == nil {
		return
	}
	if slot := statSlotOf(spec, args); slot >= 0 {
		n.cmds.rejected(c.id, slot)
	}
}

// refusedOverMemory reports whether spec is refused over --maxmemory, as
// Redis decides: a command that may add data; inside MULTI any command but
// EXEC, DISCARD and QUIT, since queueing takes memory too; EXEC if it
// would run such a command.
func (c *client) refusedOverMemory(spec *commandSpec) bool {
	switch {
	case spec.denyOOM:
		return true
	case c.multi == nil:
		return false
	case spec.name == "exec":
		return c.multi.denyOOM
	}
	return spec.name != "discard" && spec.name != "quit"
}

// unknownCommand is Redis's reply, to the byte: the arguments quoted, each
// cut so that together they stay under 128 bytes.
func unknownCommand(args [][]byte) string {
	var quoted []byte
	for _, a := range args[1:] {
		if len(quoted) >= 128 {
			break
		}
		quoted = append(quoted, '\'')
		quoted = append(quoted, truncate(a, 128-len(quoted)+1)...)
		quoted = append(quoted, '\'', ' ')
	}
	return sanitizeError(fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", truncate(args[0], 128), quoted))
}

// sanitizeError replaces line breaks, which would end a RESP error early, as
// Redis does.
func sanitizeError(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
