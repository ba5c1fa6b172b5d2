package node

import (
	"strings"

	"github.com/redmesh/redmesh/record"
)

// cmdObject is OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT|HELP.
//
// ENCODING names the encoding Redis 7.0 would use for the value a client
// sees (its thresholds: 128 hash fields or sorted-set members of at most 64
// bytes in a listpack, 512 integer members in an intset), so tools that read
// it keep working (Redis keeps a sorted set that grew past them a skiplist
// after it shrinks; redmesh answers by what the set holds now);
// redmesh's own layout differs (small states encoded in one block, large
// ones in B-trees). IDLETIME counts from the key's last write, as redmesh
// does not track reads. REFCOUNT is Redis's: shared integers report
// 2147483647.
func cmdObject(n *Node, c *client, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	if sub == "help" {
		if len(args) != 2 {
			c.w.WriteError("ERR wrong number of arguments for 'object|help' command")
			return
		}
		writeHelp(c, "OBJECT", objectHelp)
		return
	}
	switch sub {
	case "encoding", "freq", "idletime", "refcount":
	default:
		c.w.WriteError("ERR unknown subcommand '" + sanitizeError(string(args[1])) + "'. Try OBJECT HELP.")
		return
	}
	if len(args) != 3 {
		c.w.WriteError("ERR wrong number of arguments for 'object|" + sub + "' command")
		return
	}
	rec, live, err := c.read(args[2])
	switch {
	case err != nil:
		c.writeErr(err)
		return
	case !live:
		c.w.WriteNull()
		return
	}
	switch sub {
	case "encoding":
		c.w.WriteBulkString(encodingOf(rec))
	case "freq":
		c.w.WriteError("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	case "idletime":
		last := int64(rec.Newest().TS.Millis())
		c.w.WriteInt64(max(0, n.nowMillis()-last) / 1000)
	case "refcount":
		if v, ok := parseInt(rec.StringData()); ok && rec.Kind() == record.KindString && v >= 0 && v < 10000 {
			c.w.WriteInt64(1<<31 - 1) // Redis's shared integers
			return
		}
		c.w.WriteInt(1)
	}
}

var objectHelp = []string{
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
}

// encodingOf is the encoding Redis 7.0 would give the value.
func encodingOf(rec record.Record) string {
	switch rec.Kind() {
	case record.KindHash:
		small := rec.Typed.Len() <= 128
		if small {
			rec.Typed.EachField(func(name, value []byte) bool {
				small = len(name) <= 64 && len(value) <= 64
				return small
			})
		}
		if small {
			return "listpack"
		}
		return "hashtable"
	case record.KindSet:
		ints := rec.Typed.Len() <= 512
		if ints {
			rec.Typed.EachMember(func(m []byte) bool {
				_, ints = parseInt(m)
				return ints
			})
		}
		if ints {
			return "intset"
		}
		return "hashtable"
	case record.KindZSet:
		return zsetEncoding(rec.Typed)
	case record.KindList:
		return "quicklist" // Redis 7.0 keeps every list in a quicklist
	}
	data := rec.StringData()
	if _, ok := parseInt(data); ok {
		return "int"
	}
	if len(data) <= 44 {
		return "embstr"
	}
	return "raw"
}
