package node

import (
	"bytes"
	"errors"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// maxQueued bounds the commands one MULTI may queue, so that a client cannot
// make the node hold an unbounded transaction.
const maxQueued = 100_000

// maxGroup bounds how many pipelined commands run in one write-path step.
const maxGroup = 64

// multiState is a client's open MULTI.
type multiState struct {
	queued  [][][]byte
	bytes   int
	failed  bool // a command was refused while queueing: EXEC aborts
	denyOOM bool // a queued command would be refused over --maxmemory
}

// queue handles a command sent while MULTI is open.
func (c *client) queue(name string, spec *commandSpec, args [][]byte) {
	m := c.multi
	switch {
	case spec == nil:
		m.failed = true
		c.w.WriteError(unknownCommand(args))
	case !spec.arityOK(len(args)):
		m.failed = true
		c.w.WriteError("ERR wrong number of arguments for '" + name + "' command")
	case spec.noMulti:
		m.failed = true
		c.w.WriteError("ERR Command not allowed inside a transaction")
	case len(m.queued) >= maxQueued:
		m.failed = true
		c.w.WriteError("ERR too many commands queued in MULTI")
	default:
		cp := make([][]byte, len(args))
		for i, a := range args {
			cp[i] = bytes.Clone(a) // the connection reuses its read buffer
		}
		m.queued = append(m.queued, cp)
		m.denyOOM = m.denyOOM || spec.denyOOM
		c.w.WriteString("QUEUED")
	}
}

func cmdMulti(n *Node, c *client, args [][]byte) {
	if c.multi != nil {
		c.w.WriteError("ERR MULTI calls can not be nested")
		return
	}
	c.multi = &multiState{}
	c.w.WriteString("OK")
}

func cmdDiscard(n *Node, c *client, args [][]byte) {
	if c.multi == nil {
		c.w.WriteError("ERR DISCARD without MULTI")
		return
	}
	c.multi = nil
	c.unwatch()
	c.w.WriteString("OK")
}

// watchedKey is a key WATCH saw: its record's versions (which any write to
// it changes, a peer's merged write and an expiry sweep included) and
// whether it was live, so that EXEC also notices a key that expired since.
type watchedKey struct {
	key      []byte
	versions [3]record.Version
	live     bool
}

// maxWatched bounds the keys one connection may watch.
const maxWatched = 100_000

// cmdWatch is WATCH key [key ...]: EXEC will run only if none of the keys
// changed in between, here or at a peer whose write reached this node.
func cmdWatch(n *Node, c *client, args [][]byte) {
	if c.multi != nil {
		c.w.WriteError("ERR WATCH inside MULTI is not allowed")
		return
	}
	if len(c.watched)+len(args)-1 > maxWatched {
		c.w.WriteError("ERR too many keys watched")
		return
	}
	now := n.nowMillis()
	for _, k := range args[1:] {
		rec := n.db.Peek(k)
		c.watched = append(c.watched, watchedKey{key: bytes.Clone(k), versions: rec.Versions(), live: rec.Live(now)})
		n.watching.add(k)
	}
	c.w.WriteString("OK")
}

func cmdUnwatch(n *Node, c *client, args [][]byte) {
	c.unwatch()
	c.w.WriteString("OK")
}

// watchBroken reports whether a watched key changed or expired since WATCH.
func (c *client) watchBroken(tx *keyspace.Tx) bool {
	now := c.n.nowMillis()
	for _, w := range c.watched {
		rec, _ := tx.Peek(w.key)
		if v := rec.Versions(); v != w.versions && !c.n.watching.unchanged(w.key, w.versions, v) || w.live && !rec.Live(now) {
			return true
		}
	}
	return false
}

// cmdExec runs the queued commands as one atomic step of the write path: one
// log commit, so a crash keeps all of them or none, and no other client's
// command runs in between.
func cmdExec(n *Node, c *client, args [][]byte) {
	if c.multi == nil {
		c.w.WriteError("ERR EXEC without MULTI")
		return
	}
	m := c.multi
	c.multi = nil
	watched := c.watched
	c.watched = nil
	defer n.watching.drop(watched)
	if m.failed {
		c.w.WriteError("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	buf, err := c.runGroup(m.queued, watched, true)
	switch {
	case err == errWatchBroken:
		c.w.WriteRaw([]byte("*-1\r\n")) // a null array: nothing ran
	case err != nil:
		c.w.WriteError(sanitizeError("EXECABORT Transaction failed: " + err.Error()))
	default:
		c.w.WriteArray(len(m.queued))
		c.w.WriteRaw(buf.b)
	}
}

var errWatchBroken = errors.New("a watched key changed")

// errPanicked answers every command of a step in which one panicked.
var errPanicked = replyErr("ERR internal error")

// runGroup runs commands one after another inside one write-path step and
// returns their replies, or the error that kept the step from committing.
// If a watched key changed, none runs: errWatchBroken; if one panicked,
// none is kept: errPanicked. Clients blocked on
// the keys they write are served after each command, or after them all for
// a transaction (exec), as Redis serves them.
func (c *client) runGroup(cmds [][][]byte, watched []watchedKey, exec bool) (*replyBuf, error) {
	buf := &replyBuf{}
	out := c.w
	err := c.n.db.Update(c.ctx, func(tx *keyspace.Tx) error {
		buf.reset() // a retried step starts over
		if len(watched) > 0 {
			c.watched = watched
			broken := c.watchBroken(tx)
			c.watched = nil
			if broken {
				return errWatchBroken
			}
		}
		c.tx, c.w = tx, buf
		defer func() { c.tx, c.w = nil, out }()
		c.prefetchKeys(tx, cmds)
		for _, args := range cmds {
			sp := tx.Savepoint()
			c.panicked = false
			c.n.dispatch(c, args)
			if c.panicked {
				// It may have left a state the step changes in place half
				// changed (record.Owner): nothing of the step is published,
				// as nothing is of a lone command that panics.
				return errPanicked
			}
			if !exec {
				c.n.blocked.serve(tx, sp) // a pipeline's commands, one by one
			}
		}
		if exec {
			c.n.blocked.serve(tx, 0) // a transaction's, once it ends
		}
		return nil
	})
	return buf, err
}

// prefetchKeys brings the keyspace's memory for the keys of cmds into the
// CPU's caches together (keyspace.Tx.Prefetch): an MSET's keys, a
// pipeline's, each first looked up at the cost of three cache misses one
// after another, cost about one.
func (c *client) prefetchKeys(tx *keyspace.Tx, cmds [][][]byte) {
	keys := c.keysBuf[:0]
	for _, args := range cmds {
		spec := c.lookup(args[0])
		if spec == nil || spec.firstKey <= 0 || spec.step <= 0 {
			continue
		}
		last := spec.lastKey
		if last < 0 {
			last += len(args)
		}
		for i := spec.firstKey; i <= last && i < len(args); i += spec.step {
			keys = append(keys, args[i])
		}
	}
	if len(keys) > 1 {
		tx.Prefetch(keys)
	}
	clear(keys) // the buffer outlives the requests it points into
	c.keysBuf = keys[:0]
}

// groupable reports whether a command may run inside a batched pipeline step:
// commands of the keyspace that never block.
func (c *client) groupable(args [][]byte) bool {
	spec := c.lookup(args[0])
	return spec != nil && spec.group && spec.arityOK(len(args))
}

func (c *client) anyWrite(cmds [][][]byte) bool {
	for _, args := range cmds {
		if spec := c.lookup(args[0]); spec != nil && spec.write {
			return true
		}
	}
	return false
}

// runPipeline answers pipelined requests in order, running runs of keyspace
// commands that include a write in one write-path step each: one commit (and
// with fsync always one sync) for up to maxGroup commands instead of one each.
func (n *Node) runPipeline(c *client, pending [][][]byte) {
	for len(pending) > 0 {
		if c.multi != nil || !c.groupable(pending[0]) {
			n.dispatch(c, pending[0])
			pending = pending[1:]
			continue
		}
		k := 1
		for k < len(pending) && k < maxGroup && c.groupable(pending[k]) {
			k++
		}
		if k == 1 || !c.anyWrite(pending[:k]) {
			// Reads gain nothing from the write lock: they run
			// outside it, beside other clients' writes.
			for _, args := range pending[:k] {
				n.dispatch(c, args)
			}
			pending = pending[k:]
			continue
		}
		buf, err := c.runGroup(pending[:k], nil, false)
		if err != nil {
			for range k {
				c.writeErr(err)
			}
		} else {
			c.w.WriteRaw(buf.b)
		}
		pending = pending[k:]
	}
}
