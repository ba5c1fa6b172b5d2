package node

import (
	"fmt"
	"strings"
	"time"
)

// redisVersion is the Redis version whose behaviour redmesh follows; clients
// read it from HELLO and INFO to decide which commands they may use.
const redisVersion = "7.2.4"

func cmdPing(n *Node, c *client, args [][]byte) {
	switch len(args) {
	case 1:
		c.w.WriteString("PONG")
	case 2:
		c.w.WriteBulk(args[1])
	default:
		c.w.WriteError("ERR wrong number of arguments for 'ping' command")
	}
}

func cmdEcho(n *Node, c *client, args [][]byte) { c.w.WriteBulk(args[1]) }

func cmdQuit(n *Node, c *client, args [][]byte) {
	c.w.WriteString("OK")
	c.quit = true
}

func cmdSelect(n *Node, c *client, args [][]byte) {
	db, ok := parseInt(args[1])
	switch {
	case !ok:
		c.w.WriteError(errNotInteger)
	case db != 0:
		c.w.WriteError("ERR DB index is out of range")
	default:
		c.w.WriteString("OK")
	}
}

// cmdHello speaks RESP2 only: HELLO 3 gets NOPROTO, on which clients (go-redis,
// redis-cli, redis-py) fall back to RESP2.
func cmdHello(n *Node, c *client, args [][]byte) {
	var name []byte
	if len(args) >= 2 {
		ver, ok := parseInt(args[1])
		if !ok {
			c.w.WriteError("ERR Protocol version is not an integer or out of range")
			return
		}
		if ver != 2 {
			c.w.WriteError("NOPROTO sorry, this protocol version is not supported")
			return
		}
		var user, pass []byte
		for i := 2; i < len(args); i++ {
			switch {
			case equalFold(args[i], "setname") && i+1 < len(args):
				if !validClientName(args[i+1]) {
					c.w.WriteError(errClientName)
					return
				}
				name = args[i+1]
				i++
			case equalFold(args[i], "auth") && i+2 < len(args):
				user, pass = args[i+1], args[i+2]
				i += 2
			default:
				c.w.WriteError(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
				return
			}
		}
		// As Redis: authenticate first, refuse an unauthenticated HELLO, and
		// only then take the name.
		if pass != nil {
			// Without --requirepass the default user takes any password.
			if !n.passwordOK(user, pass) && (n.live.password() != "" || string(user) != "default") {
				c.w.WriteError("WRONGPASS invalid username-password pair or user is disabled.")
				return
			}
			c.authed = true
		}
	}
	if !c.authed {
		c.w.WriteError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if name != nil {
		c.name = string(name)
		infoOf(c).setName(c.name)
	}
	c.w.WriteArray(14)
	c.w.WriteBulkString("server")
	c.w.WriteBulkString("redis")
	c.w.WriteBulkString("version")
	c.w.WriteBulkString(redisVersion)
	c.w.WriteBulkString("proto")
	c.w.WriteInt(2)
	c.w.WriteBulkString("id")
	c.w.WriteUint64(c.id)
	c.w.WriteBulkString("mode")
	c.w.WriteBulkString("standalone")
	c.w.WriteBulkString("role")
	c.w.WriteBulkString("master")
	c.w.WriteBulkString("modules")
	c.w.WriteArray(0)
}

const errClientName = "ERR Client names cannot contain spaces, newlines or special characters."

func validClientName(b []byte) bool {
	for _, ch := range b {
		if ch < '!' || ch > '~' {
			return false
		}
	}
	return true
}

func cmdClient(n *Node, c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "id" && len(args) == 2:
		c.w.WriteUint64(c.id)
	case sub == "getname" && len(args) == 2:
		if c.name == "" {
			c.w.WriteNull()
			return
		}
		c.w.WriteBulkString(c.name)
	case sub == "setname" && len(args) == 3:
		if !validClientName(args[2]) {
			c.w.WriteError(errClientName)
			return
		}
		c.name = string(args[2])
		infoOf(c).setName(c.name)
		c.w.WriteString("OK")
	case sub == "setinfo" && len(args) == 4:
		attr := strings.ToLower(string(args[2]))
		if !validClientName(args[3]) {
			c.w.WriteError("ERR " + attr + " cannot contain spaces, newlines or special characters.")
			return
		}
		switch attr {
		case "lib-name":
			v := string(args[3])
			c.libName = v
			infoOf(c).libName.Store(&v)
		case "lib-ver":
			v := string(args[3])
			c.libVer = v
			infoOf(c).libVer.Store(&v)
		default:
			c.w.WriteError("ERR Unrecognized option '" + string(args[2]) + "'")
			return
		}
		c.w.WriteString("OK")
	case sub == "list":
		clientList(n, c, args[2:])
	case sub == "info" && len(args) == 2:
		c.w.WriteBulkString(clientLine(n, c, c) + "\n")
	case sub == "kill" && len(args) >= 3:
		clientKill(n, c, args[2:])
	case sub == "unblock" && (len(args) == 3 || len(args) == 4):
		clientUnblock(n, c, args[2:])
	case sub == "help" && len(args) == 2:
		writeHelp(c, "CLIENT", clientHelp)
	case sub == "id" || sub == "getname" || sub == "setname" || sub == "setinfo" || sub == "info" || sub == "kill" || sub == "unblock":
		c.w.WriteError(fmt.Sprintf("ERR wrong number of arguments for 'client|%s' command", sub))
	default:
		c.w.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try CLIENT HELP.", truncate(args[1], 128)))
	}
}

// cmdCommand answers COMMAND, COMMAND COUNT, COMMAND INFO and COMMAND DOCS
// well enough for redis-cli and client libraries to discover the table.
func cmdCommand(n *Node, c *client, args [][]byte) {
	if len(args) == 1 {
		specs := sortedCommands()
		c.w.WriteArray(len(specs))
		for _, s := range specs {
			writeCommandInfo(c, s)
		}
		return
	}
	switch sub := strings.ToLower(string(args[1])); sub {
	case "count":
		c.w.WriteInt(len(commands))
	case "info":
		names := args[2:]
		if len(names) == 0 {
			cmdCommand(n, c, args[:1])
			return
		}
		c.w.WriteArray(len(names))
		for _, name := range names {
			if s, ok := commands[strings.ToLower(string(name))]; ok {
				writeCommandInfo(c, s)
			} else {
				c.w.WriteNull()
			}
		}
	case "docs":
		// No documentation to offer: an empty map, which redis-cli accepts.
		c.w.WriteArray(0)
	case "help":
		writeHelp(c, "COMMAND", commandHelp)
	default:
		c.w.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try COMMAND HELP.", truncate(args[1], 128)))
	}
}

// writeCommandInfo writes one command's entry in Redis 7's ten-field form.
func writeCommandInfo(c *client, s *commandSpec) {
	c.w.WriteArray(10)
	c.w.WriteBulkString(s.name)
	c.w.WriteInt(s.arity)
	c.w.WriteArray(len(s.flags))
	for _, f := range s.flags {
		c.w.WriteString(f)
	}
	c.w.WriteInt(s.firstKey)
	c.w.WriteInt(s.lastKey)
	c.w.WriteInt(s.step)
	c.w.WriteArray(0) // ACL categories
	c.w.WriteArray(0) // tips
	c.w.WriteArray(0) // key specs
	c.w.WriteArray(0) // subcommands
}

func cmdDBSize(n *Node, c *client, args [][]byte) { c.w.WriteInt64(n.db.KeyCount()) }

// cmdMesh is redmesh's own introspection. MESH VERSION key answers the
// versions of a key's registers: [value HLC, value node, expiry HLC, expiry
// node]; a register never written has HLC 0.
func cmdMesh(n *Node, c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "version" && len(args) == 3:
		rec, err := c.get(args[2])
		if err != nil {
			c.writeErr(err)
			return
		}
		c.w.WriteArray(4)
		c.w.WriteInt64(int64(rec.Value.Version.TS))
		c.w.WriteBulkString(rec.Value.Version.Node.String())
		c.w.WriteInt64(int64(rec.Expiry.Version.TS))
		c.w.WriteBulkString(rec.Expiry.Version.Node.String())
	case sub == "version":
		c.w.WriteError("ERR wrong number of arguments for 'mesh|version' command")
	case sub == "forget" && len(args) == 3:
		if err := n.meshForget(string(args[2])); err != nil {
			c.w.WriteError("ERR " + err.Error())
			return
		}
		c.w.WriteString("OK")
	case sub == "setaside" && len(args) == 2:
		// The count, then the latest keys set aside: key, when (Unix ms),
		// the newest version the record held.
		count, keys := n.setAside.snapshot()
		c.w.WriteArray(2)
		c.w.WriteInt64(int64(count))
		c.w.WriteArray(len(keys))
		for _, k := range keys {
			c.w.WriteArray(3)
			c.w.WriteBulkString(k.key)
			c.w.WriteInt64(k.at.UnixMilli())
			c.w.WriteBulkString(k.news.String())
		}
	case sub == "clockoffset" && n.cfg.ClockOffsetSettable && len(args) == 3:
		// A testing switch (--clock-offset-settable): jumps this node's wall
		// clock by setting its offset; the HLC keeps its own guarantees.
		d, err := time.ParseDuration(string(args[2]))
		if err != nil {
			c.w.WriteError("ERR invalid clock offset: " + err.Error())
			return
		}
		n.clockOffset.Store(int64(d))
		c.w.WriteString("OK")
	case sub == "forget" || sub == "setaside":
		c.w.WriteError(fmt.Sprintf("ERR wrong number of arguments for 'mesh|%s' command", sub))
	default:
		c.w.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try MESH VERSION key, MESH FORGET peer-id, MESH SETASIDE.", truncate(args[1], 128)))
	}
}
