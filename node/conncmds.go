package node

import (
	"fmt"
	"net"
	"os"
	"strconv"
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
	c.conn.Close()
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
		for i := 2; i < len(args); i++ {
			switch {
			case equalFold(args[i], "setname") && i+1 < len(args):
				if !validClientName(args[i+1]) {
					c.w.WriteError(errClientName)
					return
				}
				c.name = string(args[i+1])
				i++
			case equalFold(args[i], "auth") && i+2 < len(args):
				// No passwords yet: any credentials pass, as with Redis's
				// default user without a password.
				i += 2
			default:
				c.w.WriteError(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", args[i]))
				return
			}
		}
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
		c.w.WriteString("OK")
	case sub == "setinfo" && len(args) == 4:
		attr := strings.ToLower(string(args[2]))
		if !validClientName(args[3]) {
			c.w.WriteError("ERR " + attr + " cannot contain spaces, newlines or special characters.")
			return
		}
		switch attr {
		case "lib-name":
			c.libName = string(args[3])
		case "lib-ver":
			c.libVer = string(args[3])
		default:
			c.w.WriteError("ERR Unrecognized option '" + string(args[2]) + "'")
			return
		}
		c.w.WriteString("OK")
	case sub == "id" || sub == "getname" || sub == "setname" || sub == "setinfo":
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

func cmdDBSize(n *Node, c *client, args [][]byte) { c.w.WriteInt64(n.store.KeyCount()) }

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
	default:
		c.w.WriteError(fmt.Sprintf("ERR unknown subcommand '%s'. Try MESH VERSION key.", truncate(args[1], 128)))
	}
}

func cmdInfo(n *Node, c *client, args [][]byte) {
	sections := map[string]bool{}
	for _, a := range args[1:] {
		sections[strings.ToLower(string(a))] = true
	}
	all := len(sections) == 0 || sections["all"] || sections["everything"] || sections["default"]
	var b strings.Builder
	section := func(name string, lines ...string) {
		if !all && !sections[strings.ToLower(name)] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
	}
	up := time.Since(n.started)
	_, port, _ := net.SplitHostPort(n.Addr().String())
	section("Server",
		"redis_version:"+redisVersion,
		"redmesh_version:"+Version,
		"redis_mode:standalone",
		"arch_bits:64",
		"process_id:"+strconv.Itoa(os.Getpid()),
		"run_id:"+n.peerID.String(),
		"node_id:"+n.id.String(),
		"tcp_port:"+port,
		"uptime_in_seconds:"+strconv.FormatInt(int64(up.Seconds()), 10),
		"uptime_in_days:"+strconv.FormatInt(int64(up.Hours()/24), 10),
	)
	section("Clients",
		"connected_clients:"+strconv.FormatInt(n.nclients.Load(), 10),
	)
	first, last := n.store.LogBounds()
	section("Persistence",
		"loading:0",
		"aof_enabled:1",
		"appendfsync:"+string(n.store.Fsync()),
		"wal_first_seq:"+strconv.FormatUint(first, 10),
		"wal_last_seq:"+strconv.FormatUint(last, 10),
		"wal_bytes:"+strconv.FormatInt(n.store.LogBytes(), 10),
		"disk_bytes:"+strconv.FormatInt(n.store.DiskSize(), 10),
		"hlc_last:"+n.clock.Last().String(),
		"hlc_refused_skew:"+strconv.FormatUint(n.clock.Refused(), 10),
	)
	section("Stats",
		"total_connections_received:"+strconv.FormatUint(n.stats.connections.Load(), 10),
		"total_commands_processed:"+strconv.FormatUint(n.stats.commands.Load(), 10),
		"expired_keys:"+strconv.FormatUint(n.stats.expiredKeys.Load(), 10),
		"keyspace_hits:"+strconv.FormatUint(n.stats.keyspaceHits.Load(), 10),
		"keyspace_misses:"+strconv.FormatUint(n.stats.keyspaceMiss.Load(), 10),
		"command_panics:"+strconv.FormatUint(n.stats.panics.Load(), 10),
	)
	var ks []string
	if keys := n.store.KeyCount(); keys > 0 {
		ks = append(ks, fmt.Sprintf("db0:keys=%d,expires=%d,avg_ttl=0", keys, n.store.ExpiresCount()))
	}
	section("Keyspace", ks...)
	c.w.WriteBulkString(b.String())
}
