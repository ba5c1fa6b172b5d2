package node

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tidwall/redcon"
)

// client is one RESP connection's state.
type client struct {
	id      uint64
	conn    redcon.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	created time.Time
	name    string
	libName string
	libVer  string
	lastCmd string
}

func (n *Node) accept(conn redcon.Conn) bool {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{
		id:      n.clientID.Add(1),
		conn:    conn,
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

// handle dispatches one command. A panic in a command is answered with an
// error and logged; it never takes the server down.
func (n *Node) handle(conn redcon.Conn, cmd redcon.Command) {
	c := conn.Context().(*client)
	defer func() {
		if p := recover(); p != nil {
			n.stats.panics.Add(1)
			n.log.Error("command panicked", "cmd", c.lastCmd, "panic", p, "stack", string(debug.Stack()))
			conn.WriteError("ERR internal error")
		}
	}()
	n.stats.commands.Add(1)
	args := cmd.Args
	name := strings.ToLower(string(args[0]))
	c.lastCmd = name
	spec, ok := commands[name]
	if !ok {
		conn.WriteError(unknownCommand(args))
		return
	}
	if !spec.arityOK(len(args)) {
		conn.WriteError(fmt.Sprintf("ERR wrong number of arguments for '%s' command", name))
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
