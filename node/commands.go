package node

import (
	"errors"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// commandSpec is one entry of the command table, with Redis's arity rule: a
// positive arity is exact, a negative one is a minimum.
type commandSpec struct {
	name     string
	arity    int
	flags    []string
	firstKey int
	lastKey  int
	step     int
	// group: a keyspace command that never blocks, so it may run with others
	// in one write-path step (a batched pipeline).
	group bool
	// blocks: the command may wait on other clients, peers or a shutdown.
	blocks bool
	// write: the command may change the keyspace.
	write bool
	// denyOOM: refused while the node is over --maxmemory (Redis's
	// "denyoom": the commands that may add data).
	denyOOM bool
	// noMulti: refused inside MULTI.
	noMulti bool
	// data: the command reads or writes keys (refused by
	// --serve-stale-data no during the first sync).
	data bool
	// slot is the command's place in the command statistics, or -1 for a
	// container whose subcommands have theirs.
	slot int
	fn   func(n *Node, c *client, args [][]byte)
}

// controlsMulti reports whether the command acts on MULTI itself rather than
// being queued by it.
func (s *commandSpec) controlsMulti() bool {
	return s != nil && (s.name == "exec" || s.name == "discard" || s.name == "multi" || s.name == "quit" || s.name == "watch")
}

func (s *commandSpec) arityOK(argc int) bool {
	if s.arity >= 0 {
		return argc == s.arity
	}
	return argc >= -s.arity
}

// commands is the command table; it is filled in init because the handlers
// (COMMAND) refer to it.
var commands map[string]*commandSpec

// lookup finds a command by its name in any case, folding ASCII only as
// Redis's strcasecmp does. Every request goes through here, so the name is
// lowered on the stack rather than in a new string.
func lookup(name []byte) *commandSpec {
	var buf [32]byte
	lower := buf[:0]
	for _, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower = append(lower, ch)
	}
	return commands[string(lower)]
}

func init() {
	specs := []*commandSpec{
		// connection and server
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no-auth"}, fn: cmdAuth},
		{name: "ping", arity: -1, flags: []string{"fast"}, fn: cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, fn: cmdEcho},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no-auth"}, fn: cmdHello},
		{name: "quit", arity: -1, flags: []string{"noscript", "loading", "stale", "fast", "no-auth"}, fn: cmdQuit},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, fn: cmdSelect},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, fn: cmdCommand},
		{name: "client", arity: -2, flags: []string{"noscript", "loading", "stale"}, fn: cmdClient},
		{name: "config", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}, fn: cmdConfig},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, fn: cmdInfo},
		{name: "time", arity: 1, flags: []string{"loading", "stale", "fast"}, fn: cmdTime},
		{name: "shutdown", arity: -1, flags: []string{"admin", "noscript", "loading", "stale", "no_multi", "allow_busy"}, noMulti: true, fn: cmdShutdown},
		// WAIT must never run inside the write path: firstKey 0.
		{name: "wait", arity: 3, flags: []string{"noscript"}, fn: cmdWait},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, fn: cmdDBSize},
		{name: "mesh", arity: -2, flags: []string{"readonly"}, fn: cmdMesh},
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, fn: cmdMulti},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale", "skip_slowlog"}, fn: cmdExec},
		{name: "object", arity: -2, flags: []string{"readonly"}, firstKey: 2, lastKey: 2, step: 1, fn: cmdObject},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdWatch},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, fn: cmdUnwatch},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, fn: cmdDiscard},
		// strings
		{name: "get", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGet},
		{name: "set", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSet},
		{name: "setnx", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSetNX},
		{name: "setex", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSetEX},
		{name: "psetex", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPSetEX},
		{name: "getset", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGetSet},
		{name: "getdel", arity: 2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGetDel},
		{name: "getex", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGetEx},
		{name: "mget", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdMGet},
		{name: "mset", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 2, fn: cmdMSet},
		{name: "msetnx", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 2, fn: cmdMSetNX},
		{name: "append", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdAppend},
		{name: "strlen", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdStrlen},
		{name: "getrange", arity: 4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGetRange},
		{name: "substr", arity: 4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGetRange},
		{name: "setrange", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSetRange},
		{name: "incr", arity: 2, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdIncr},
		{name: "decr", arity: 2, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdDecr},
		{name: "incrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdIncrBy},
		{name: "decrby", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdDecrBy},
		{name: "incrbyfloat", arity: 3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdIncrByFloat},
		// bitmaps, LCS and HyperLogLog (bitmaps.go, lcs.go, hyperloglog.go)
		{name: "setbit", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSetBit},
		{name: "getbit", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGetBit},
		{name: "bitcount", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdBitCount},
		{name: "bitpos", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdBitPos},
		{name: "bitop", arity: -4, flags: []string{"write", "denyoom"}, firstKey: 2, lastKey: -1, step: 1, fn: cmdBitOp},
		{name: "bitfield", arity: -2, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdBitField},
		{name: "bitfield_ro", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdBitFieldRO},
		{name: "lcs", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdLCS},
		{name: "pfadd", arity: -2, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPFAdd},
		{name: "pfcount", arity: -2, flags: []string{"readonly", "may_replicate"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdPFCount},
		{name: "pfmerge", arity: -2, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdPFMerge},
		{name: "pfdebug", arity: 3, flags: []string{"write", "denyoom", "admin"}, firstKey: 2, lastKey: 2, step: 1, fn: cmdPFDebug},
		{name: "pfselftest", arity: 1, flags: []string{"admin"}, fn: cmdPFSelfTest},
		// keyspace
		{name: "del", arity: -2, flags: []string{"write"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdDel},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdExists},
		{name: "touch", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdExists}, // no LRU clock to touch: it counts, as EXISTS
		{name: "type", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdType},
		{name: "rename", arity: 3, flags: []string{"write"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdRename},
		{name: "renamenx", arity: 3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdRenameNX},
		{name: "copy", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdCopy},
		{name: "expire", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdExpire},
		{name: "pexpire", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPExpire},
		{name: "expireat", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdExpireAt},
		{name: "pexpireat", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPExpireAt},
		{name: "ttl", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdTTL},
		{name: "pttl", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPTTL},
		{name: "expiretime", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdExpireTime},
		{name: "pexpiretime", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPExpireTime},
		{name: "persist", arity: 2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdPersist},
		// hashes
		{name: "hset", arity: -4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHSet},
		{name: "hsetnx", arity: 4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHSetNX},
		{name: "hmset", arity: -4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHMSet},
		{name: "hget", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHGet},
		{name: "hmget", arity: -3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHMGet},
		{name: "hdel", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHDel},
		{name: "hlen", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHLen},
		{name: "hstrlen", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHStrLen},
		{name: "hexists", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHExists},
		{name: "hkeys", arity: 2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHKeys},
		{name: "hvals", arity: 2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHVals},
		{name: "hgetall", arity: 2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHGetAll},
		{name: "hincrby", arity: 4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHIncrBy},
		{name: "hincrbyfloat", arity: 4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHIncrByFloat},
		{name: "hrandfield", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHRandField},
		{name: "hscan", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdHScan},
		// sets
		{name: "sadd", arity: -3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSAdd},
		{name: "srem", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSRem},
		{name: "smembers", arity: 2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSMembers},
		{name: "sismember", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSIsMember},
		{name: "smismember", arity: -3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSMIsMember},
		{name: "scard", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSCard},
		{name: "spop", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSPop},
		{name: "srandmember", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSRandMember},
		{name: "smove", arity: 4, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdSMove},
		{name: "sinter", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdSInter},
		{name: "sintercard", arity: -3, flags: []string{"readonly", "movablekeys"}, fn: cmdSInterCard},
		{name: "sinterstore", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdSInterStore},
		{name: "sunion", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdSUnion},
		{name: "sunionstore", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdSUnionStore},
		{name: "sdiff", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdSDiff},
		{name: "sdiffstore", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 1, fn: cmdSDiffStore},
		{name: "sscan", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdSScan},
		// sorted sets
		{name: "zadd", arity: -4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZAdd},
		{name: "zincrby", arity: 4, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZIncrBy},
		{name: "zrem", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRem},
		{name: "zcard", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZCard},
		{name: "zscore", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZScore},
		{name: "zmscore", arity: -3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZMScore},
		{name: "zrank", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRank},
		{name: "zrevrank", arity: 3, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRevRank},
		{name: "zcount", arity: 4, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZCount},
		{name: "zlexcount", arity: 4, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZLexCount},
		{name: "zrange", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRange},
		{name: "zrangestore", arity: -5, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdZRangeStore},
		{name: "zrevrange", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRevRange},
		{name: "zrangebyscore", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRangeByScore},
		{name: "zrevrangebyscore", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRevRangeByScore},
		{name: "zrangebylex", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRangeByLex},
		{name: "zrevrangebylex", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRevRangeByLex},
		{name: "zremrangebyrank", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRemRangeByRank},
		{name: "zremrangebyscore", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRemRangeByScore},
		{name: "zremrangebylex", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRemRangeByLex},
		{name: "zpopmin", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZPopMin},
		{name: "zpopmax", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZPopMax},
		{name: "bzpopmin", arity: -3, flags: []string{"write", "noscript", "fast", "blocking"}, firstKey: 1, lastKey: -2, step: 1, fn: cmdBZPopMin},
		{name: "bzpopmax", arity: -3, flags: []string{"write", "noscript", "fast", "blocking"}, firstKey: 1, lastKey: -2, step: 1, fn: cmdBZPopMax},
		{name: "bzmpop", arity: -5, flags: []string{"write", "blocking", "movablekeys"}, fn: cmdBZMPop},
		{name: "zmpop", arity: -4, flags: []string{"write", "movablekeys"}, fn: cmdZMPop},
		{name: "zrandmember", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZRandMember},
		{name: "zunion", arity: -3, flags: []string{"readonly", "movablekeys"}, fn: cmdZUnion},
		{name: "zinter", arity: -3, flags: []string{"readonly", "movablekeys"}, fn: cmdZInter},
		{name: "zdiff", arity: -3, flags: []string{"readonly", "movablekeys"}, fn: cmdZDiff},
		{name: "zintercard", arity: -3, flags: []string{"readonly", "movablekeys"}, fn: cmdZInterCard},
		{name: "zunionstore", arity: -4, flags: []string{"write", "denyoom", "movablekeys"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZUnionStore},
		{name: "zinterstore", arity: -4, flags: []string{"write", "denyoom", "movablekeys"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZInterStore},
		{name: "zdiffstore", arity: -4, flags: []string{"write", "denyoom", "movablekeys"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZDiffStore},
		{name: "zscan", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdZScan},
		// geo (geo.go): sorted sets of geohash scores
		{name: "geoadd", arity: -5, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoAdd},
		{name: "geodist", arity: -4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoDist},
		{name: "geohash", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoHash},
		{name: "geopos", arity: -2, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoPos},
		{name: "georadius", arity: -6, flags: []string{"write", "denyoom", "movablekeys"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoRadius},
		{name: "georadius_ro", arity: -6, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoRadiusRO},
		{name: "georadiusbymember", arity: -5, flags: []string{"write", "denyoom", "movablekeys"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoRadiusByMember},
		{name: "georadiusbymember_ro", arity: -5, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoRadiusByMemberRO},
		{name: "geosearch", arity: -7, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdGeoSearch},
		{name: "geosearchstore", arity: -8, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdGeoSearchStore},
		// lists
		{name: "lpush", arity: -3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLPush},
		{name: "rpush", arity: -3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdRPush},
		{name: "lpushx", arity: -3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLPushX},
		{name: "rpushx", arity: -3, flags: []string{"write", "denyoom", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdRPushX},
		{name: "lpop", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLPop},
		{name: "rpop", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdRPop},
		{name: "llen", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLLen},
		{name: "lrange", arity: 4, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLRange},
		{name: "lindex", arity: 3, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLIndex},
		{name: "lset", arity: 4, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLSet},
		{name: "linsert", arity: 5, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLInsert},
		{name: "lrem", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLRem},
		{name: "ltrim", arity: 4, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLTrim},
		{name: "lpos", arity: -3, flags: []string{"readonly"}, firstKey: 1, lastKey: 1, step: 1, fn: cmdLPos},
		{name: "lmove", arity: 5, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdLMove},
		{name: "rpoplpush", arity: 3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdRPopLPush},
		{name: "blpop", arity: -3, flags: []string{"write", "noscript", "blocking"}, firstKey: 1, lastKey: -2, step: 1, fn: cmdBLPop},
		{name: "brpop", arity: -3, flags: []string{"write", "noscript", "blocking"}, firstKey: 1, lastKey: -2, step: 1, fn: cmdBRPop},
		{name: "blmove", arity: 6, flags: []string{"write", "denyoom", "noscript", "blocking"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdBLMove},
		{name: "brpoplpush", arity: 4, flags: []string{"write", "denyoom", "noscript", "blocking"}, firstKey: 1, lastKey: 2, step: 1, fn: cmdBRPopLPush},
		{name: "blmpop", arity: -5, flags: []string{"write", "blocking", "movablekeys"}, fn: cmdBLMPop},
		{name: "lmpop", arity: -4, flags: []string{"write", "movablekeys"}, fn: cmdLMPop},
		// Whole-keyspace commands have no key positions: they never run in a
		// batched pipeline step. FLUSHDB and FLUSHALL run in steps of their
		// own (see cmdFlush), so they cannot run inside MULTI either.
		{name: "keys", arity: 2, flags: []string{"readonly"}, fn: cmdKeys},
		{name: "scan", arity: -2, flags: []string{"readonly"}, fn: cmdScan},
		{name: "randomkey", arity: 1, flags: []string{"readonly"}, fn: cmdRandomKey},
		{name: "flushdb", arity: -1, flags: []string{"write"}, noMulti: true, fn: cmdFlush},
		{name: "flushall", arity: -1, flags: []string{"write"}, noMulti: true, fn: cmdFlush},
	}
	commands = make(map[string]*commandSpec, len(specs))
	for _, s := range specs {
		// Keyspace commands (those with keys) that never block may share a
		// write-path step with others. WATCH reads what is durable, which
		// inside a step may wait on the step itself.
		s.group = s.firstKey > 0 && s.name != "watch" && !slices.Contains(s.flags, "blocking")
		// What may wait on more than the node's own commit: a client
		// event loop hands a connection sending one to a goroutine.
		s.blocks = slices.Contains(s.flags, "blocking") || s.name == "wait" || s.name == "shutdown" || s.name == "mesh"
		s.write = slices.Contains(s.flags, "write")
		s.denyOOM = slices.Contains(s.flags, "denyoom")
		s.data = s.firstKey > 0 || s.write || slices.Contains(s.flags, "readonly")
		commands[s.name] = s
	}
	assignStatSlots()
}

// sortedCommands lists the table by name, for stable COMMAND output.
func sortedCommands() []*commandSpec {
	out := make([]*commandSpec, 0, len(commands))
	for _, s := range commands {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Redis's error replies, to the byte.
const (
	errSyntax     = "ERR syntax error"
	errNotInteger = "ERR value is not an integer or out of range"
	errWrongType  = "WRONGTYPE Operation against a key holding the wrong kind of value"
)

func errInvalidExpire(cmd string) string {
	return "ERR invalid expire time in '" + cmd + "' command"
}

// replyErr is an error whose text is a complete Redis error reply.
type replyErr string

func (e replyErr) Error() string { return string(e) }

// writeErr answers a failed command: Redis errors as they are, anything else
// (storage, clock) as a generic error that names the cause.
func (c *client) writeErr(err error) {
	var re replyErr
	switch {
	case errors.As(err, &re):
		c.w.WriteError(string(re))
	case errors.Is(err, keyspace.ErrKeyTooLong):
		c.w.WriteError("ERR " + err.Error())
	case errors.Is(err, keyspace.ErrLogFailing):
		// As Redis answers when its append-only file cannot be written.
		c.w.WriteError(sanitizeError("MISCONF " + err.Error()))
	default:
		c.w.WriteError(sanitizeError("ERR " + err.Error()))
	}
}

// parseInt parses a Redis integer argument as Redis does (record.ParseInt).
func parseInt(b []byte) (int64, bool) { return record.ParseInt(b) }

func equalFold(b []byte, s string) bool { return strings.EqualFold(string(b), s) }

// deadline turns a relative or absolute expiry argument into Unix ms, or
// reports the value invalid (out of range, or not positive where Redis
// insists).
func deadline(nowMillis, v int64, unitMillis int64, absolute bool) (int64, bool) {
	if v > math.MaxInt64/unitMillis || v < math.MinInt64/unitMillis {
		return 0, false
	}
	ms := v * unitMillis
	if absolute {
		return ms, true
	}
	if ms > 0 && ms > math.MaxInt64-nowMillis {
		return 0, false
	}
	return nowMillis + ms, true
}
