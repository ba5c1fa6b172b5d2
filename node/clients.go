package node

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// connInfo is what other connections may read of a client, for CLIENT LIST
// and CLIENT KILL. A client's own fields belong to its connection's
// goroutine; this copy is safe to read from any.
type connInfo struct {
	name, libName, libVer atomic.Pointer[string]
	cmd                   atomic.Pointer[string] // the last command, as "client|list"
	lastActive            atomic.Int64           // Unix ns of the last command
	multi                 atomic.Int64           // commands queued in an open MULTI, or -1
	blocked               atomic.Bool            // waiting in a blocking command
}

// infoOf returns c's connInfo.
func infoOf(c *client) *connInfo { return &c.info }

func (ci *connInfo) setName(name string) { ci.name.Store(&name) }

func loadString(p *atomic.Pointer[string]) string {
	if s := p.Load(); s != nil {
		return *s
	}
	return ""
}

// subcommandParents are the commands whose first argument is a subcommand,
// which CLIENT LIST shows as "client|list".
var subcommandParents = map[string]bool{"client": true, "config": true, "command": true, "mesh": true}

// track records a command about to run in the client's connInfo. The time
// of its last interaction is set as its requests are read (serveConn), as
// Redis does, not per command.
func (c *client) track(args [][]byte) {
	ci := &c.info
	name := c.lastCmd
	if len(args) > 1 && subcommandParents[name] {
		name += "|" + strings.ToLower(string(args[1]))
	}
	if p := ci.cmd.Load(); p == nil || *p != name {
		// A variable of its own: the one whose address is stored is moved
		// to the heap, and for name that was every command's allocation.
		stored := name
		ci.cmd.Store(&stored)
	}
}

// trackMulti records how many commands an open MULTI holds.
func (c *client) trackMulti() {
	if c.multi != nil {
		c.info.multi.Store(int64(len(c.multi.queued)))
	} else {
		c.info.multi.Store(-1)
	}
}

// connFD is the connection's file descriptor, or -1.
func connFD(conn net.Conn) int {
	if f, ok := conn.(interface{ FD() int }); ok {
		return f.FD()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return -1
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// clientLine is x's line of CLIENT LIST, in Redis 7.2's format, as seen by
// client self. Fields redmesh has no counterpart for (buffers, pub/sub) are
// 0; the user is always "default".
func clientLine(n *Node, self, x *client) string {
	ci := infoOf(x)
	now := time.Now()
	cmd := loadString(&ci.cmd)
	if cmd == "" {
		cmd = "NULL"
	}
	flags := "N"
	if ci.multi.Load() >= 0 {
		flags = "x"
	}
	if ci.blocked.Load() {
		flags = "b"
	}
	laddr := ""
	fd := -1
	if nc := x.conn.NetConn(); nc != nil {
		laddr = nc.LocalAddr().String()
		fd = connFD(nc)
	}
	idle := now.Sub(time.Unix(0, ci.lastActive.Load()))
	if x == self {
		idle = 0
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=%d name=%s age=%d idle=%d flags=%s db=0 sub=0 psub=0 ssub=0 multi=%d "+
		"qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s "+
		"user=default redir=-1 resp=2 lib-name=%s lib-ver=%s",
		x.id, x.conn.RemoteAddr(), laddr, fd, loadString(&ci.name),
		int64(now.Sub(x.created).Seconds()), int64(idle.Seconds()), flags, ci.multi.Load(),
		cmd, loadString(&ci.libName), loadString(&ci.libVer))
}

// allClients lists n's connections by ID, as Redis lists them.
func allClients(n *Node) []*client {
	var out []*client
	n.clients.Range(func(_, v any) bool {
		out = append(out, v.(*client))
		return true
	})
	slices.SortFunc(out, func(a, b *client) int { return cmp.Compare(a.id, b.id) })
	return out
}

// validClientType checks CLIENT LIST's and CLIENT KILL's TYPE; every redmesh
// client is "normal".
func validClientType(t []byte) bool {
	switch strings.ToLower(string(t)) {
	case "normal", "master", "replica", "slave", "pubsub":
		return true
	}
	return false
}

// clientList is CLIENT LIST [TYPE type] [ID id ...].
func clientList(n *Node, c *client, args [][]byte) {
	var ids []uint64
	typ := ""
	switch {
	case len(args) == 0:
	case len(args) == 2 && equalFold(args[0], "type"):
		if !validClientType(args[1]) {
			c.w.WriteError(fmt.Sprintf("ERR Unknown client type '%s'", args[1]))
			return
		}
		typ = strings.ToLower(string(args[1]))
	case len(args) >= 2 && equalFold(args[0], "id"):
		for _, a := range args[1:] {
			id, ok := parseInt(a)
			if !ok || id <= 0 {
				c.w.WriteError("ERR Invalid client ID")
				return
			}
			ids = append(ids, uint64(id))
		}
	default:
		c.w.WriteError(errSyntax)
		return
	}
	var b strings.Builder
	if typ == "" || typ == "normal" {
		for _, x := range allClients(n) {
			if ids != nil && !slices.Contains(ids, x.id) {
				continue
			}
			b.WriteString(clientLine(n, c, x))
			b.WriteByte('\n')
		}
	}
	c.w.WriteBulkString(b.String())
}

// clientKill is CLIENT KILL addr (the old form: OK or an error) and CLIENT
// KILL filter value ... (the new: how many were killed). A connection killed
// answers nothing more: a goroutine's is closed at once, an event loop
// closes its own before it reads again; either then cleans up.
func clientKill(n *Node, c *client, args [][]byte) {
	if len(args) == 1 {
		for _, x := range allClients(n) {
			if x.conn.RemoteAddr() == string(args[0]) {
				c.w.WriteString("OK")
				kill(c, x)
				return
			}
		}
		c.w.WriteError("ERR No such client")
		return
	}
	var (
		id                    uint64
		addr, laddr, typ      string
		skipMe                = true
		maxAge                int64
		hasAddr, hasLAddr, ok bool
	)
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			c.w.WriteError(errSyntax)
			return
		}
		opt, val := args[i], args[i+1]
		switch {
		case equalFold(opt, "id"):
			v, good := parseInt(val)
			if !good || v <= 0 {
				c.w.WriteError("ERR client-id should be greater than 0")
				return
			}
			id = uint64(v)
		case equalFold(opt, "type"):
			if !validClientType(val) {
				c.w.WriteError(fmt.Sprintf("ERR Unknown client type '%s'", val))
				return
			}
			typ = strings.ToLower(string(val))
		case equalFold(opt, "addr"):
			addr, hasAddr = string(val), true
		case equalFold(opt, "laddr"):
			laddr, hasLAddr = string(val), true
		case equalFold(opt, "user"):
			if string(val) != "default" {
				c.w.WriteError(fmt.Sprintf("ERR No such user '%s'", val))
				return
			}
		case equalFold(opt, "skipme"):
			switch {
			case equalFold(val, "yes"):
				skipMe = true
			case equalFold(val, "no"):
				skipMe = false
			default:
				c.w.WriteError(errSyntax)
				return
			}
		case equalFold(opt, "maxage"):
			if maxAge, ok = parseInt(val); !ok {
				c.w.WriteError(errNotInteger)
				return
			}
		default:
			c.w.WriteError(errSyntax)
			return
		}
	}
	var victims []*client
	for _, x := range allClients(n) {
		switch {
		case id != 0 && x.id != id,
			typ != "" && typ != "normal",
			hasAddr && x.conn.RemoteAddr() != addr,
			hasLAddr && (x.conn.NetConn() == nil || x.conn.NetConn().LocalAddr().String() != laddr),
			maxAge > 0 && time.Since(x.created) < time.Duration(maxAge)*time.Second,
			skipMe && x == c:
			continue
		}
		victims = append(victims, x)
	}
	c.w.WriteInt(len(victims))
	for _, x := range victims {
		kill(c, x)
	}
}

// kill closes x's connection. The caller's own connection is closed after
// its reply is flushed, as Redis does.
func kill(c, x *client) {
	if x == c {
		c.quit = true // closed once this reply is flushed
		return
	}
	x.closeConn()
}
