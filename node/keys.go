package node

import (
	"strconv"
	"strings"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// cmdGet is GET. Outside a transaction it writes the reply straight from
// the keyspace, without a copy of the value.
func cmdGet(n *Node, c *client, args [][]byte) {
	if c.tx == nil {
		now := n.nowMillis()
		var err error
		n.db.View(args[1], func(rec record.Record) {
			var live bool
			switch live, err = liveString(rec, now); {
			case err != nil:
			case !live:
				c.counts.misses.Add(1)
				c.w.WriteNull()
			default:
				c.counts.hits.Add(1)
				c.w.WriteBulk(rec.StringData())
			}
		})
		if err != nil {
			c.writeErr(err)
		}
		return
	}
	data, live, err := c.readString(args[1])
	switch {
	case err != nil:
		c.writeErr(err)
	case !live:
		c.w.WriteNull()
	default:
		c.w.WriteBulk(data)
	}
}

// extOptions are the options of SET and GETEX, parsed as Redis 7's
// parseExtendedStringArgumentsOrReply does, quirks included (EX may be
// given twice; the last wins).
type extOptions struct {
	nx, xx, get, keepTTL, persist bool
	ex, px, exat, pxat            bool
	expiry                        []byte // the expiry argument as given, nil for none
	unit                          int64  // ms per unit of expiry
	absolute                      bool
}

// parseExtended parses SET's options (set) or GETEX's. Only the syntax is
// checked here; the expiry value is checked when the command runs, as in
// Redis, so that a syntax error anywhere wins over a bad number.
func parseExtended(args [][]byte, set bool) (extOptions, error) {
	var o extOptions
	for i := 0; i < len(args); i++ {
		a := args[i]
		hasNext := i+1 < len(args)
		noTTL := !o.keepTTL && !o.persist
		switch {
		case set && equalFold(a, "nx") && !o.xx:
			o.nx = true
		case set && equalFold(a, "xx") && !o.nx:
			o.xx = true
		case set && equalFold(a, "get"):
			o.get = true
		case set && equalFold(a, "keepttl") && !o.persist && !o.ex && !o.px && !o.exat && !o.pxat:
			o.keepTTL = true
		case !set && equalFold(a, "persist") && !o.keepTTL && !o.ex && !o.px && !o.exat && !o.pxat:
			o.persist = true
		case equalFold(a, "ex") && noTTL && !o.px && !o.exat && !o.pxat && hasNext:
			o.ex, o.unit, o.absolute = true, 1000, false
			o.expiry, i = args[i+1], i+1
		case equalFold(a, "px") && noTTL && !o.ex && !o.exat && !o.pxat && hasNext:
			o.px, o.unit, o.absolute = true, 1, false
			o.expiry, i = args[i+1], i+1
		case equalFold(a, "exat") && noTTL && !o.ex && !o.px && !o.pxat && hasNext:
			o.exat, o.unit, o.absolute = true, 1000, true
			o.expiry, i = args[i+1], i+1
		case equalFold(a, "pxat") && noTTL && !o.ex && !o.px && !o.exat && hasNext:
			o.pxat, o.unit, o.absolute = true, 1, true
			o.expiry, i = args[i+1], i+1
		default:
			return o, replyErr(errSyntax)
		}
	}
	return o, nil
}

func cmdSet(n *Node, c *client, args [][]byte) {
	key, val := args[1], args[2]
	o, err := parseExtended(args[3:], true)
	if err != nil {
		c.writeErr(err)
		return
	}
	// One variable for what the step reports, so that the closure
	// capturing it costs one allocation, not one per variable.
	var r struct {
		old           record.Record
		oldLive, done bool
	}
	err = c.update(func(tx *keyspace.Tx) error {
		r.done = false
		now := n.nowMillis()
		at := int64(0)
		if o.expiry != nil {
			var err error
			if at, err = expireMillis(now, o.expiry, o.unit, o.absolute, "set"); err != nil {
				return err
			}
		}
		if o.get || o.nx || o.xx || o.keepTTL {
			// Without GET the old value's data is not needed: peek, and
			// spare the storage read.
			cur, _ := tx.Peek(key)
			if o.get {
				var err error
				if cur, err = tx.Get(key); err != nil {
					return err
				}
				if _, err := liveString(cur, now); err != nil {
					return err // GET of a key of another type: WRONGTYPE, nothing set
				}
			}
			r.old, r.oldLive = cur, cur.Live(now)
			if (o.nx && r.oldLive) || (o.xx && !r.oldLive) {
				return nil
			}
		}
		v, err := n.newVersion()
		if err != nil {
			return err
		}
		rec := record.Record{Value: record.Value{Version: v, Data: val}}
		if !o.keepTTL || !r.oldLive {
			// KEEPTTL leaves the expiry register alone; on a key that is
			// not there, there is no TTL to keep.
			rec.Expiry = record.Expiry{Version: v, At: at}
		}
		if err := n.put(tx, key, rec); err != nil {
			return err
		}
		r.done = true
		return nil
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case o.get && r.oldLive:
		c.w.WriteBulk(r.old.StringData())
	case o.get || !r.done:
		c.w.WriteNull()
	default:
		c.w.WriteString("OK")
	}
}

// tombstone is what DEL writes: both registers at one version, so a later
// SET KEEPTTL finds no stale deadline.
func tombstone(v record.Version) record.Record {
	return record.Record{Value: record.Value{Version: v, Tombstone: true}, Expiry: record.Expiry{Version: v}}
}

// deleteKey writes a tombstone for key at a new version, through apply.
func (n *Node) deleteKey(tx *keyspace.Tx, key []byte) error {
	v, err := n.newVersion()
	if err != nil {
		return err
	}
	err = n.put(tx, key, tombstone(v))
	return err
}

func cmdDel(n *Node, c *client, args [][]byte) {
	deleted := 0
	err := c.update(func(tx *keyspace.Tx) error {
		deleted = 0
		now := n.nowMillis()
		for _, key := range args[1:] {
			if !liveKey(tx, key, now) {
				continue
			}
			if err := n.deleteKey(tx, key); err != nil {
				return err
			}
			deleted++
		}
		return nil
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(deleted)
}

func cmdExists(n *Node, c *client, args [][]byte) {
	count := 0
	for _, key := range args[1:] {
		_, live, err := c.read(key)
		if err != nil {
			c.writeErr(err)
			return
		}
		if live {
			count++
		}
	}
	c.w.WriteInt(count)
}

func cmdExpire(n *Node, c *client, args [][]byte)    { expireGeneric(n, c, args, 1000, false) }
func cmdPExpire(n *Node, c *client, args [][]byte)   { expireGeneric(n, c, args, 1, false) }
func cmdExpireAt(n *Node, c *client, args [][]byte)  { expireGeneric(n, c, args, 1000, true) }
func cmdPExpireAt(n *Node, c *client, args [][]byte) { expireGeneric(n, c, args, 1, true) }

// expireGeneric is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX/XX/GT/LT,
// checked in Redis's order: options, then the number, then the key. It
// writes only the expiry register, so it never undoes a concurrent SET on
// another node. A deadline already past deletes the key, as in Redis.
func expireGeneric(n *Node, c *client, args [][]byte, unit int64, absolute bool) {
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch {
		case equalFold(a, "nx"):
			nx = true
		case equalFold(a, "xx"):
			xx = true
		case equalFold(a, "gt"):
			gt = true
		case equalFold(a, "lt"):
			lt = true
		default:
			c.w.WriteError("ERR Unsupported option " + string(a))
			return
		}
	}
	if nx && (xx || gt || lt) {
		c.w.WriteError("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		c.w.WriteError("ERR GT and LT options at the same time are not compatible")
		return
	}
	v, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	name := strings.ToLower(string(args[0]))
	result := 0
	err := c.update(func(tx *keyspace.Tx) error {
		result = 0
		now := n.nowMillis()
		at, ok := deadline(now, v, unit, absolute)
		if !ok {
			return replyErr(errInvalidExpire(name))
		}
		cur, _ := tx.Peek(args[1]) // the deadline is enough: no storage read
		if !cur.Live(now) {
			return nil
		}
		has := cur.Expiry.At != 0
		switch {
		case nx && has, xx && !has:
			return nil
		case gt && (!has || at <= cur.Expiry.At):
			return nil
		case lt && has && at >= cur.Expiry.At:
			return nil
		}
		ver, err := n.newVersion()
		if err != nil {
			return err
		}
		rec := record.Record{Expiry: record.Expiry{Version: ver, At: at}}
		if at <= now {
			rec = tombstone(ver) // a deadline in the past deletes, as in Redis
		}
		if err := n.put(tx, args[1], rec); err != nil {
			return err
		}
		result = 1
		return nil
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(result)
}

// ttlMillis is what TTL and PTTL report: -2 for no key, -1 for no deadline,
// else the milliseconds left.
func (c *client) ttlMillis(n *Node, key []byte) (int64, error) {
	rec, live, err := c.read(key)
	if err != nil || !live {
		return -2, err
	}
	if rec.Expiry.At == 0 {
		return -1, nil
	}
	return max(rec.Expiry.At-n.nowMillis(), 0), nil
}

func cmdTTL(n *Node, c *client, args [][]byte) {
	ms, err := c.ttlMillis(n, args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	if ms >= 0 {
		ms = (ms + 500) / 1000
	}
	c.w.WriteInt64(ms)
}

func cmdPTTL(n *Node, c *client, args [][]byte) {
	ms, err := c.ttlMillis(n, args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt64(ms)
}

func cmdPersist(n *Node, c *client, args [][]byte) {
	result := 0
	err := c.update(func(tx *keyspace.Tx) error {
		result = 0
		cur, _ := tx.Peek(args[1])
		if !cur.Live(n.nowMillis()) || cur.Expiry.At == 0 {
			return nil
		}
		v, err := n.newVersion()
		if err != nil {
			return err
		}
		if err := n.put(tx, args[1], record.Record{Expiry: record.Expiry{Version: v}}); err != nil {
			return err
		}
		result = 1
		return nil
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(result)
}

// typeName is TYPE's answer for a record a client sees.
func typeName(rec record.Record) string { return rec.Kind().String() }

func cmdType(n *Node, c *client, args [][]byte) {
	rec, live, err := c.read(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	if !live {
		c.w.WriteString("none")
		return
	}
	c.w.WriteString(typeName(rec))
}

// scanOptions are SCAN's, HSCAN's and SSCAN's options.
type scanOptions struct {
	count        int64
	pattern, typ []byte // nil: any
}

// parseScanOptions parses [MATCH pattern] [COUNT count], and [TYPE type]
// when withType.
func parseScanOptions(args [][]byte, withType bool) (scanOptions, error) {
	o := scanOptions{count: 10}
	for i := 0; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return o, replyErr(errSyntax)
		}
		switch {
		case equalFold(args[i], "match"):
			o.pattern = args[i+1]
			if string(o.pattern) == "*" {
				o.pattern = nil // as in Redis: matches everything, the empty name too
			}
		case equalFold(args[i], "count"):
			v, ok := parseInt(args[i+1])
			if !ok {
				return o, replyErr(errNotInteger)
			}
			if v < 1 {
				return o, replyErr(errSyntax)
			}
			o.count = v
		case withType && equalFold(args[i], "type"):
			o.typ = args[i+1]
		default:
			return o, replyErr(errSyntax)
		}
	}
	return o, nil
}

// cmdScan is SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. COUNT
// bounds the rows visited, as in Redis it bounds the work done.
func cmdScan(n *Node, c *client, args [][]byte) {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		c.w.WriteError("ERR invalid cursor")
		return
	}
	o, err := parseScanOptions(args[2:], true)
	if err != nil {
		c.writeErr(err)
		return
	}
	count, pattern, typ := o.count, o.pattern, o.typ
	var keys [][]byte
	next := uint64(0)
	if cursor <= 1<<32 {
		now := n.nowMillis()
		visited := int64(0)
		next = n.db.Table().Scan(cursor, func(key []byte, rec record.Record) bool {
			visited++
			if rec.Live(now) &&
				(pattern == nil || globMatch(pattern, key, false)) &&
				(typ == nil || equalFold(typ, typeName(rec))) {
				keys = append(keys, key)
			}
			return visited < count
		})
	}
	c.w.WriteArray(2)
	c.w.WriteBulkString(strconv.FormatUint(next, 10))
	c.w.WriteArray(len(keys))
	for _, k := range keys {
		c.w.WriteBulk(k)
	}
}
