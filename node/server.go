package node

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// client is one RESP connection's state.
type client struct {
	n       *Node
	id      uint64
	conn    redcon.Conn
	w       replier // where replies go: conn, or a buffer during EXEC
	tx      *wal.Tx // set while the client's commands run inside the writer
	ctx     context.Context
	cancel  context.CancelFunc
	created time.Time
	name    string
	libName string
	libVer  string
	lastCmd string
	multi   *multiState // open MULTI, if any
}

func (n *Node) accept(conn redcon.Conn) bool {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{
		n:       n,
		id:      n.clientID.Add(1),
		conn:    conn,
		w:       conn,
		ctx:     ctx,
		cancel:  cancel,
		created: time.Now(),
	}
	conn.SetContext(c)
	n.clients.Store(c.id, c)
	n.nclients.Add(1)
	n.stats.connections.Add(1)
	return true
}

// update runs fn as one atomic step of the write path. Inside EXEC (or a
// batched pipeline) it runs in the transaction already open, and a failing
// command undoes only its own changes.
func (c *client) update(fn wal.UpdateFunc) error {
	if c.tx != nil {
		sp := c.tx.Savepoint()
		err := fn(c.tx)
		if err != nil {
			c.tx.RollbackTo(sp)
		}
		return err
	}
	return c.n.store.Update(c.ctx, fn)
}

// get reads key's record, through the open transaction if there is one.
func (c *client) get(key []byte) (record.Record, error) {
	if c.tx != nil {
		return c.tx.Get(key)
	}
	return c.n.store.Get(key)
}

// read returns key's record and whether the client sees it now.
func (c *client) read(key []byte) (record.Record, bool, error) {
	rec, err := c.get(key)
	if err != nil {
		return rec, false, err
	}
	return rec, rec.Live(c.n.nowMillis()), nil
}

func (n *Node) closed(conn redcon.Conn, err error) {
	c, ok := conn.Context().(*client)
	if !ok {
		return
	}
	c.cancel()
	n.clients.Delete(c.id)
	n.nclients.Add(-1)
	if err != nil {
		n.log.Debug("client connection closed", "client", c.id, "addr", conn.RemoteAddr(), "err", err)
	}
}

// handle answers one command and whatever the client pipelined behind it.
func (n *Node) handle(conn redcon.Conn, cmd redcon.Command) {
	n.handlePipeline(conn.Context().(*client), cmd)
}

// dispatch runs one command. A panic in a command is answered with an error
// and logged; it never takes the server down.
func (n *Node) dispatch(c *client, args [][]byte) {
	defer func() {
		if p := recover(); p != nil {
			n.stats.panics.Add(1)
			n.log.Error("command panicked", "cmd", c.lastCmd, "panic", p, "stack", string(debug.Stack()))
			c.w.WriteError("ERR internal error")
		}
	}()
	n.stats.commands.Add(1)
	name := strings.ToLower(string(args[0]))
	c.lastCmd = name
	spec := commands[name]
	if c.multi != nil && !spec.controlsMulti() {
		c.queue(name, spec, args)
		return
	}
	if spec == nil {
		c.w.WriteError(unknownCommand(args))
		return
	}
	if !spec.arityOK(len(args)) {
		c.w.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
		return
	}
	spec.fn(n, c, args)
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
