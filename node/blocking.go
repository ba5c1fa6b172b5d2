package node

import (
	"bytes"
	"errors"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Blocking commands (BLPOP, BZPOPMIN, BLMOVE ...). A client that finds
// nothing to pop is registered on its keys, first come first served per
// key, and waits on its own connection's goroutine, holding no lock: it
// peeks at its socket (so that a client that goes away stops waiting at
// once, as in Redis) with its timeout as the read deadline.
//
// A client's command that writes a key someone is blocked on serves them
// inside its own write-path step, right after the command (after EXEC for
// a transaction), in the order they blocked, before the next command runs:
// as Redis handles its blocked keys after each command, so a push followed
// by a pop (pipelined, or from another client) leaves the element to the
// client that waited for it. The served client is told; its goroutine
// answers once the step is committed. Records merged from peers
// (ApplyRemote) serve them the same way, inside the merge's step. Every
// commit also pokes the first client blocked on each key it wrote, which
// tries its pop again as a write of its own, and the commit of that pop
// pokes the next. A client woken for nothing (another client or node took
// the element first, or the key was deleted) goes on waiting in its
// place.
//
// Across the mesh a pop is at least once: two clients blocked on two nodes
// may both pop the same element pushed at a third.

const (
	errTimeoutNotFloat = "ERR timeout is not a float or out of range"
	errTimeoutNegative = "ERR timeout is negative"
	errUnblocked       = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
)

// Why a blocked client stops waiting, besides being served.
const (
	unblockNone    = iota
	unblockTimeout // CLIENT UNBLOCK id [TIMEOUT]: answered as a timeout
	unblockError   // CLIENT UNBLOCK id ERROR
)

// blockedClients is the node's register of blocked clients.
type blockedClients struct {
	n    atomic.Int64 // clients blocked: 0 lets commits skip the lock
	mu   sync.Mutex
	keys map[string][]*blockedClient // per key, in the order they blocked
	ids  map[uint64]*blockedClient
}

// blockedClient is one client waiting. Its memory is bounded by the keys
// of its command.
type blockedClient struct {
	id      uint64
	keys    []string
	conn    net.Conn
	poked   atomic.Bool  // a key it waits on was written, or it must look again
	unblock atomic.Int32 // CLIENT UNBLOCK's reason
	signal  chan struct{}
	// try pops for the client inside a write-path step, as a retry; served
	// is set, in the step, once a pop succeeded, after which nothing pops
	// for the client again.
	try    func(tx *keyspace.Tx) (bool, error)
	served atomic.Bool
	gone   bool // out of the queues; under blockedClients.mu
}

// poke makes the client look again: it sets the flag, then interrupts the
// peek at its socket (its goroutine sets its deadline before it reads the
// flag, so no poke is lost between them).
func (b *blockedClient) poke() {
	b.poked.Store(true)
	select {
	case b.signal <- struct{}{}:
	default:
	}
	b.conn.SetReadDeadline(time.Unix(1, 0))
}

func (r *blockedClients) add(b *blockedClient) {
	r.mu.Lock()
	if r.keys == nil {
		r.keys = map[string][]*blockedClient{}
		r.ids = map[uint64]*blockedClient{}
	}
	for _, k := range b.keys {
		if q := r.keys[k]; len(q) == 0 || q[len(q)-1] != b { // a key named twice queues once
			r.keys[k] = append(q, b)
		}
	}
	r.ids[b.id] = b
	r.mu.Unlock()
	r.n.Add(1)
}

// remove takes b out of every queue and pokes the clients now first in
// them: b may have taken a poke meant for the next in line. Once removed, b
// is never served by another client's step; removing it again does nothing.
func (r *blockedClients) remove(b *blockedClient) {
	r.mu.Lock()
	r.drop(b)
	r.mu.Unlock()
}

// drop is remove, under r.mu.
func (r *blockedClients) drop(b *blockedClient) {
	if b.gone {
		return
	}
	b.gone = true
	for _, k := range b.keys {
		q := r.keys[k]
		for i, x := range q {
			if x == b {
				q = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(q) == 0 {
			delete(r.keys, k)
			continue
		}
		r.keys[k] = q
		q[0].poke()
	}
	delete(r.ids, b.id)
	r.n.Add(-1)
}

// serve pops, inside step tx, for the clients blocked on the keys written
// since savepoint sp: on each key in the order they blocked, each client
// that its pop serves, until the key has nothing left for the next. A pop
// that writes on (BLMOVE's push) makes its destination's clients next. A
// pop that fails is undone and its client left waiting: its own retry, on
// its goroutine, answers the error.
func (r *blockedClients) serve(tx *keyspace.Tx, sp int) {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ready []string
	for sp < tx.Savepoint() {
		ready = ready[:0]
		tx.KeysSince(sp, func(k []byte) {
			if len(r.keys[string(k)]) > 0 && !slices.Contains(ready, string(k)) {
				ready = append(ready, string(k))
			}
		})
		sp = tx.Savepoint()
		for _, k := range ready {
			for _, b := range slices.Clone(r.keys[k]) {
				if b.gone || b.served.Load() || b.unblock.Load() != unblockNone || b.try == nil {
					continue
				}
				at := tx.Savepoint()
				ok, err := b.try(tx)
				if err != nil || !ok {
					tx.RollbackTo(at)
					continue
				}
				b.served.Store(true)
				r.drop(b)
				b.poke()
			}
		}
	}
}

// written pokes the first client blocked on each key of a commit.
func (r *blockedClients) written(entries []wal.Entry) {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	for _, e := range entries {
		if q := r.keys[string(e.Key)]; len(q) > 0 {
			q[0].poke()
		}
	}
	r.mu.Unlock()
}

// unblockID is CLIENT UNBLOCK: whether client id was blocked.
func (r *blockedClients) unblockID(id uint64, reason int32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.ids[id]
	if b == nil || !b.unblock.CompareAndSwap(unblockNone, reason) {
		return false
	}
	b.poke()
	return true
}

// pokeAll wakes every blocked client (a shutdown).
func (r *blockedClients) pokeAll() {
	r.mu.Lock()
	for _, b := range r.ids {
		b.poke()
	}
	r.mu.Unlock()
}

// count is INFO's blocked_clients.
func (r *blockedClients) count() int64 { return r.n.Load() }

// parseBlockTimeout reads a timeout in seconds as Redis does: a float,
// rounded up to milliseconds; 0 is forever. It returns the deadline (zero:
// none).
func parseBlockTimeout(b []byte, now time.Time) (time.Time, error) {
	f, ok := parseScore(b)
	if !ok {
		if len(b) > 0 && !isCSpace(b[0]) {
			// Redis reads a long double: an overflow of a double may
			// still be one, and is then too large a timeout.
			if g, ok, erange := strtod(string(b)); ok && erange && !math.IsNaN(g) {
				if g == 0 { // an underflow: a long double's tiny timeout, 1 ms
					return now.Add(time.Millisecond), nil
				}
				return time.Time{}, replyErr(errTimeoutNegative)
			}
		}
		return time.Time{}, replyErr(errTimeoutNotFloat)
	}
	ms := math.Ceil(f * 1000)
	// Beyond int64 C's conversion gives its minimum: negative.
	if ms < 0 || ms >= math.MaxInt64 || math.IsInf(ms, 0) {
		return time.Time{}, replyErr(errTimeoutNegative)
	}
	if ms == 0 {
		return time.Time{}, nil
	}
	if ms > float64(math.MaxInt64/int64(time.Millisecond))-float64(now.UnixMilli()) {
		ms = float64(math.MaxInt64/int64(time.Millisecond)) - float64(now.UnixMilli()) // forever, in effect
	}
	return now.Add(time.Duration(ms) * time.Millisecond), nil
}

// ownValues and ownEntries copy what a blocking pop took: another client's
// step may pop for the client (serve), from elements that still point into
// that client's request.
func ownValues(vs [][]byte) [][]byte {
	for i := range vs {
		vs[i] = bytes.Clone(vs[i])
	}
	return vs
}

func ownEntries(es []record.ZEntry) []record.ZEntry {
	for i := range es {
		es[i].Name = bytes.Clone(es[i].Name)
	}
	return es
}

func isWrongType(err error) bool {
	var re replyErr
	return errors.As(err, &re) && string(re) == errWrongType
}

// blockingPop is a blocking command's work: try pops what it can (a retry
// passes over keys of another type), reply answers what it popped.
type blockingPop struct {
	keys  [][]byte
	until time.Time // zero: forever
	try   func(tx *keyspace.Tx, retry bool) (served bool, err error)
	reply func()
}

// block runs a blocking command: at once if there is something to pop (or
// inside MULTI, where it never blocks and answers a null array as a
// timeout), else once a write brings something, the timeout passes,
// CLIENT UNBLOCK ends it, or the client goes away.
func (n *Node) block(c *client, p blockingPop) {
	var b *blockedClient
	// attempt pops in a step of its own, unless another client's step
	// served b already: then it only waits for that step's commit.
	attempt := func(retry bool) (bool, error) {
		served := false
		err := c.update(func(tx *keyspace.Tx) error {
			if b != nil && b.served.Load() {
				served = true
				return nil
			}
			var err error
			served, err = p.try(tx, retry)
			if served && b != nil {
				b.served.Store(true) // not again by the serve this step runs
			}
			return err
		})
		return served, err
	}
	served, err := attempt(false)
	switch {
	case err != nil:
		c.writeErr(err)
		return
	case served:
		p.reply()
		return
	case c.tx != nil: // inside EXEC, as Redis's CLIENT_DENY_BLOCKING
		c.w.WriteRaw([]byte("*-1\r\n"))
		return
	}
	b = &blockedClient{id: c.id, conn: c.conn.NetConn(), signal: make(chan struct{}, 1),
		try: func(tx *keyspace.Tx) (bool, error) { return p.try(tx, true) }}
	for _, k := range p.keys {
		b.keys = append(b.keys, string(k))
	}
	n.blocked.add(b)
	c.info.blocked.Store(true)
	defer func() {
		c.info.blocked.Store(false)
		n.blocked.remove(b)
		b.conn.SetReadDeadline(time.Time{}) // serveConn sets its own again
	}()
	watch := true // peek at the socket while nothing is pending on it
	for {
		// A write between the first try and add, or a poke: look again.
		if served, err := attempt(true); err != nil {
			c.writeErr(err)
			return
		} else if served {
			p.reply()
			return
		}
		reason := n.waitBlocked(c, b, p.until, &watch)
		if reason != waitPoked {
			// Out of the queues first: a step that served b before
			// this wins over the timeout, as in Redis, where serving
			// is never interrupted.
			n.blocked.remove(b)
			if b.served.Load() {
				reason = waitPoked
			}
		}
		switch reason {
		case waitPoked:
			continue
		case waitTimeout:
			c.w.WriteRaw([]byte("*-1\r\n"))
		case waitUnblockError:
			c.w.WriteError(errUnblocked)
		case waitGone:
			c.quit = true // nothing to answer: the connection closes
		}
		return
	}
}

// What a blocked client's wait ended with.
const (
	waitPoked = iota
	waitTimeout
	waitUnblockError
	waitGone
)

// waitBlocked waits for a poke, the deadline, CLIENT UNBLOCK, the client
// going away or a shutdown.
func (n *Node) waitBlocked(c *client, b *blockedClient, until time.Time, watch *bool) int {
	for {
		b.conn.SetReadDeadline(until) // before the checks: see poke
		if n.conns.draining.Load() {
			return waitGone
		}
		switch b.unblock.Load() {
		case unblockTimeout:
			return waitTimeout
		case unblockError:
			return waitUnblockError
		}
		if b.poked.Swap(false) {
			return waitPoked
		}
		if !until.IsZero() && !time.Now().Before(until) {
			return waitTimeout
		}
		if *watch {
			switch peekConn(b.conn) {
			case peekClosed:
				return waitGone
			case peekPending:
				*watch = false // the client sent more: wait on the signal alone
			}
			continue
		}
		var timer *time.Timer
		var expired <-chan time.Time
		if !until.IsZero() {
			timer = time.NewTimer(time.Until(until))
			expired = timer.C
		}
		gone := false
		select {
		case <-b.signal:
		case <-expired:
		case <-c.ctx.Done():
			gone = true
		}
		if timer != nil {
			timer.Stop()
		}
		if gone {
			return waitGone
		}
	}
}

// What a peek at a blocked client's socket found.
const (
	peekInterrupted = iota // the deadline passed, or a poke
	peekClosed             // the client went away
	peekPending            // the client sent more
)

// peekConn waits until conn is readable or its read deadline passes,
// reading nothing: a blocked client that closes its connection is seen at
// once, without a goroutine of its own.
func peekConn(conn net.Conn) int {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return peekPending
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peekPending
	}
	var buf [1]byte
	var nread int
	var perr error
	rerr := raw.Read(func(fd uintptr) bool {
		nread, _, perr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return perr != syscall.EAGAIN
	})
	switch {
	case rerr != nil && errors.Is(rerr, os.ErrDeadlineExceeded):
		return peekInterrupted
	case rerr != nil, perr != nil, nread == 0:
		return peekClosed
	}
	return peekPending
}

func cmdBZPopMin(n *Node, c *client, args [][]byte) { bzpop(n, c, args, false) }
func cmdBZPopMax(n *Node, c *client, args [][]byte) { bzpop(n, c, args, true) }

// bzpop is BZPOPMIN and BZPOPMAX key [key ...] timeout.
func bzpop(n *Node, c *client, args [][]byte, fromMax bool) {
	until, err := parseBlockTimeout(args[len(args)-1], time.Now())
	if err != nil {
		c.writeErr(err)
		return
	}
	a := zmpopArgs{keys: args[1 : len(args)-1], fromMax: fromMax, count: 1}
	var popped []record.ZEntry
	var from []byte
	n.block(c, blockingPop{
		keys:  a.keys,
		until: until,
		try: func(tx *keyspace.Tx, retry bool) (bool, error) {
			var err error
			popped, from, err = n.zmpop(tx, a, retry)
			popped = ownEntries(popped)
			return from != nil && len(popped) > 0, err
		},
		reply: func() {
			c.w.WriteArray(3)
			c.w.WriteBulk(from)
			c.w.WriteBulk(popped[0].Name)
			c.w.WriteBulkString(formatScore(popped[0].Score))
		},
	})
}

// cmdBZMPop is BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
func cmdBZMPop(n *Node, c *client, args [][]byte) {
	a, err := parseZMPop(args, 2)
	if err != nil {
		c.writeErr(err)
		return
	}
	until, err := parseBlockTimeout(args[1], time.Now())
	if err != nil {
		c.writeErr(err)
		return
	}
	var popped []record.ZEntry
	var from []byte
	n.block(c, blockingPop{
		keys:  a.keys,
		until: until,
		try: func(tx *keyspace.Tx, retry bool) (bool, error) {
			var err error
			popped, from, err = n.zmpop(tx, a, retry)
			popped = ownEntries(popped)
			return from != nil && len(popped) > 0, err
		},
		reply: func() { writeZMPop(c, from, popped) },
	})
}

// clientUnblock is CLIENT UNBLOCK client-id [TIMEOUT|ERROR].
func clientUnblock(n *Node, c *client, args [][]byte) {
	id, ok := parseInt(args[0])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	reason := int32(unblockTimeout)
	if len(args) == 2 {
		switch strings.ToLower(string(args[1])) {
		case "timeout":
		case "error":
			reason = unblockError
		default:
			c.w.WriteError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
	}
	c.w.WriteInt(boolInt(id > 0 && n.blocked.unblockID(uint64(id), reason)))
}

func cmdBLPop(n *Node, c *client, args [][]byte) { blpop(n, c, args, false) }
func cmdBRPop(n *Node, c *client, args [][]byte) { blpop(n, c, args, true) }

// blpop is BLPOP and BRPOP key [key ...] timeout.
func blpop(n *Node, c *client, args [][]byte, tail bool) {
	until, err := parseBlockTimeout(args[len(args)-1], time.Now())
	if err != nil {
		c.writeErr(err)
		return
	}
	keys := args[1 : len(args)-1]
	var popped [][]byte
	var from []byte
	n.block(c, blockingPop{
		keys:  keys,
		until: until,
		try: func(tx *keyspace.Tx, retry bool) (bool, error) {
			var err error
			popped, from, err = n.listMPop(tx, keys, tail, 1, retry)
			popped = ownValues(popped)
			return from != nil && len(popped) > 0, err
		},
		reply: func() {
			c.w.WriteArray(2)
			c.w.WriteBulk(from)
			c.w.WriteBulk(popped[0])
		},
	})
}

// listMPop pops from the first of keys that holds a list; a retry passes
// over keys of another type (see zmpop).
func (n *Node) listMPop(tx *keyspace.Tx, keys [][]byte, tail bool, count int64, skipWrongType bool) (popped [][]byte, from []byte, err error) {
	for _, k := range keys {
		p, found, err := n.listPop(tx, k, tail, count)
		if err != nil {
			if skipWrongType && isWrongType(err) {
				continue
			}
			return nil, nil, err
		}
		if found {
			return p, k, nil
		}
	}
	return nil, nil, nil
}

// cmdBLMPop is BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
func cmdBLMPop(n *Node, c *client, args [][]byte) {
	keys, tail, count, errMsg := parseMPop(args, 2)
	if errMsg != "" {
		c.w.WriteError(errMsg)
		return
	}
	until, err := parseBlockTimeout(args[1], time.Now())
	if err != nil {
		c.writeErr(err)
		return
	}
	var popped [][]byte
	var from []byte
	n.block(c, blockingPop{
		keys:  keys,
		until: until,
		try: func(tx *keyspace.Tx, retry bool) (bool, error) {
			var err error
			popped, from, err = n.listMPop(tx, keys, tail, count, retry)
			popped = ownValues(popped)
			return from != nil && len(popped) > 0, err
		},
		reply: func() {
			c.w.WriteArray(2)
			c.w.WriteBulk(from)
			writeMembers(c, popped)
		},
	})
}

// cmdBLMove is BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
func cmdBLMove(n *Node, c *client, args [][]byte) {
	fromTail, ok := parseWhere(args[3])
	if !ok {
		c.w.WriteError(errSyntax)
		return
	}
	toTail, ok := parseWhere(args[4])
	if !ok {
		c.w.WriteError(errSyntax)
		return
	}
	blmove(n, c, args[1], args[2], args[5], fromTail, toTail)
}

// cmdBRPopLPush is BRPOPLPUSH source destination timeout.
func cmdBRPopLPush(n *Node, c *client, args [][]byte) {
	blmove(n, c, args[1], args[2], args[3], true, false)
}

// blmove moves one element from src to dst, blocking on src. Inside MULTI
// it answers a null bulk string, as LMOVE does when there is nothing; a
// timeout answers a null array, as Redis 7.0's do.
func blmove(n *Node, c *client, src, dst, timeout []byte, fromTail, toTail bool) {
	until, err := parseBlockTimeout(timeout, time.Now())
	if err != nil {
		c.writeErr(err)
		return
	}
	if c.tx != nil {
		moveCmd(n, c, src, dst, fromTail, toTail)
		return
	}
	var value []byte
	n.block(c, blockingPop{
		keys:  [][]byte{src},
		until: until,
		try: func(tx *keyspace.Tx, retry bool) (bool, error) {
			if retry {
				cur, err := tx.Get(src)
				if err != nil {
					return false, err
				}
				if cur.Live(n.nowMillis()) && cur.Kind() != record.KindList {
					return false, nil // another type: Redis 7.0 leaves the client blocked
				}
			}
			var moved bool
			var err error
			value, moved, err = n.listMove(tx, src, dst, fromTail, toTail)
			return moved, err
		},
		reply: func() { c.w.WriteBulk(value) },
	})
}
