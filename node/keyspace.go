package node

import (
	"bytes"
	"strconv"
	"time"

	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// Keyspace commands beyond those of keys.go: RENAME, COPY, KEYS, RANDOMKEY,
// TOUCH, EXPIRETIME, FLUSHDB.

const errNoSuchKey = "ERR no such key"

func cmdRename(n *Node, c *client, args [][]byte)   { renameGeneric(n, c, args, false) }
func cmdRenameNX(n *Node, c *client, args [][]byte) { renameGeneric(n, c, args, true) }

// renameGeneric is RENAME and RENAMENX: in one write-path step the
// destination gets the source's value and deadline at a new version, and the
// source a tombstone.
func renameGeneric(n *Node, c *client, args [][]byte, nx bool) {
	src, dst := args[1], args[2]
	done := false
	err := c.update(func(tx *keyspace.Tx) error {
		done = false
		now := n.nowMillis()
		cur, err := tx.Get(src)
		if err != nil {
			return err
		}
		if !cur.Live(now) {
			return replyErr(errNoSuchKey)
		}
		if bytes.Equal(src, dst) {
			done = !nx
			return nil
		}
		if nx && liveKey(tx, dst, now) {
			return nil
		}
		if err := n.putCopy(tx, dst, cur); err != nil {
			return err
		}
		if err := n.deleteKey(tx, src); err != nil {
			return err
		}
		done = true
		return nil
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case nx:
		c.w.WriteInt(boolInt(done))
	default:
		c.w.WriteString("OK")
	}
}

// putCopy writes src's value and deadline to key, at new versions: both
// registers at one, and each element of a hash, set, sorted set or list at one of its own (a
// copy is a new write, not the source's writes again). A counter is copied as
// the string it reads as.
func (n *Node) putCopy(tx *keyspace.Tx, key []byte, src record.Record) error {
	if src.Kind() == record.KindString {
		v, err := n.newVersion()
		if err != nil {
			return err
		}
		return n.put(tx, key, record.Record{Value: record.Value{Version: v, Data: src.StringData()}, Expiry: record.Expiry{Version: v, At: src.Expiry.At}})
	}
	w, err := n.replaceTyped(tx, key, src.Kind())
	if err != nil {
		return err
	}
	w.rec.Expiry = record.Expiry{Version: w.v, At: src.Expiry.At}
	switch src.Kind() {
	case record.KindHash:
		src.Typed.EachField(func(name, value []byte) bool {
			err = w.setField(name, value)
			return err == nil
		})
	case record.KindSet:
		src.Typed.EachMember(func(name []byte) bool {
			err = w.addMember(name)
			return err == nil
		})
	case record.KindZSet:
		eachZEntry(src.Typed, func(e record.ZEntry) bool {
			_, err = w.op.SetScore(e.Name, e.Score)
			return err == nil
		})
	case record.KindList:
		var last []byte
		src.Typed.ListView().Ascend(0, func(e record.Elem) bool {
			last, err = w.op.PushListed(last, nil, e.Value)
			return err == nil
		})
	}
	if err != nil {
		return err
	}
	return w.commit(tx)
}

// cmdCopy is COPY source destination [DB 0] [REPLACE]. There is one database.
func cmdCopy(n *Node, c *client, args [][]byte) {
	replace := false
	for i := 3; i < len(args); i++ {
		switch {
		case equalFold(args[i], "replace"):
			replace = true
		case equalFold(args[i], "db") && i+1 < len(args):
			db, ok := parseInt(args[i+1])
			if !ok {
				c.w.WriteError(errNotInteger)
				return
			}
			if db < -1<<31 || db > 1<<31-1 {
				c.w.WriteError("ERR value is out of range, value must between -2147483648 and 2147483647")
				return
			}
			if db != 0 {
				c.w.WriteError("ERR DB index is out of range")
				return
			}
			i++
		default:
			c.w.WriteError(errSyntax)
			return
		}
	}
	src, dst := args[1], args[2]
	if bytes.Equal(src, dst) {
		c.w.WriteError("ERR source and destination objects are the same")
		return
	}
	done := false
	err := c.update(func(tx *keyspace.Tx) error {
		done = false
		now := n.nowMillis()
		cur, err := tx.Get(src)
		if err != nil {
			return err
		}
		if !cur.Live(now) {
			return nil
		}
		if !replace && liveKey(tx, dst, now) {
			return nil
		}
		if err := n.putCopy(tx, dst, cur); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(boolInt(done))
}

func cmdExpireTime(n *Node, c *client, args [][]byte)  { expireTime(n, c, args[1], false) }
func cmdPExpireTime(n *Node, c *client, args [][]byte) { expireTime(n, c, args[1], true) }

// expireTime is EXPIRETIME and PEXPIRETIME: -2 for no key, -1 for no
// deadline, else the deadline in Unix seconds (rounded, as Redis does) or ms.
func expireTime(n *Node, c *client, key []byte, millis bool) {
	rec, live, err := c.read(key)
	switch {
	case err != nil:
		c.writeErr(err)
	case !live:
		c.w.WriteInt(-2)
	case rec.Expiry.At == 0:
		c.w.WriteInt(-1)
	case millis:
		c.w.WriteInt64(rec.Expiry.At)
	default:
		c.w.WriteInt64((rec.Expiry.At + 500) / 1000)
	}
}

// cmdKeys is KEYS pattern, over the whole keyspace as in Redis (SCAN is the
// incremental way). Keys come in keyspace order, which, as Redis's, is no
// order a client may rely on.
func cmdKeys(n *Node, c *client, args [][]byte) {
	pattern := args[1]
	all := string(pattern) == "*"
	now := n.nowMillis()
	var keys [][]byte
	n.db.Table().Scan(0, func(key []byte, rec record.Record) bool {
		if rec.Live(now) && (all || globMatch(pattern, key, false)) {
			keys = append(keys, key)
		}
		return true
	})
	c.w.WriteArray(len(keys))
	for _, k := range keys {
		c.w.WriteBulk(k)
	}
}

// cmdRandomKey picks a random point of the keyspace (keys are laid out by
// hash) and answers the first live key from there, wrapping around once.
func cmdRandomKey(n *Node, c *client, args [][]byte) {
	now := n.nowMillis()
	var found []byte
	pick := func(key []byte, rec record.Record) bool {
		if rec.Live(now) {
			found = key
			return false
		}
		return true
	}
	if n.db.Table().Scan(keyspace.RandomCursor(), pick); found == nil && n.db.KeyCount() > 0 {
		n.db.Table().Scan(0, pick)
	}
	if found == nil {
		c.w.WriteNull()
		return
	}
	c.w.WriteBulk(found)
}

// flushChunk is how many keys one step of FLUSHDB deletes.
const flushChunk = 256

// cmdFlush is FLUSHDB and FLUSHALL [ASYNC|SYNC]: a versioned delete (a
// tombstone, as DEL writes) of every key, so that the flush reaches other
// nodes and no older write elsewhere brings a key back. It walks the keyspace
// in steps of flushChunk keys, each its own write-path step, so that no
// transaction grows with the keyspace. It is therefore NOT atomic as a whole:
// other clients' commands run between the steps, and a key written during
// the flush into the part of the keyspace already walked survives it.
func cmdFlush(n *Node, c *client, args [][]byte) {
	if len(args) > 2 || (len(args) == 2 && !equalFold(args[1], "sync") && !equalFold(args[1], "async")) {
		c.w.WriteError(errSyntax)
		return
	}
	if err := n.flush(c); err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteString("OK")
}

func (n *Node) flush(c *client) error {
	cursor := uint64(0)
	for {
		var keys [][]byte
		next := n.db.Table().Scan(cursor, func(key []byte, rec record.Record) bool {
			if rec.Exists() {
				keys = append(keys, key)
			}
			return len(keys) < flushChunk
		})
		if len(keys) > 0 {
			err := c.update(func(tx *keyspace.Tx) error {
				for _, k := range keys {
					if cur, _ := tx.Peek(k); !cur.Exists() {
						continue
					}
					if err := n.deleteKey(tx, k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// cmdTime answers the node's clock: Unix seconds and microseconds.
func cmdTime(n *Node, c *client, args [][]byte) {
	now := n.now()
	c.w.WriteArray(2)
	c.w.WriteBulkString(strconv.FormatInt(now.Unix(), 10))
	c.w.WriteBulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
}

// cmdWait is WAIT numreplicas timeout (milliseconds, 0: forever): it blocks
// until numreplicas peers have acknowledged applying every write this node
// made up to now (so every write of this client), or the timeout passes,
// and answers how many have. It runs outside the write path, never holding
// the write lock.
func cmdWait(n *Node, c *client, args [][]byte) {
	numreplicas, ok := parseInt(args[1])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	timeout, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError("ERR timeout is not an integer or out of range")
		return
	}
	if timeout < 0 {
		c.w.WriteError("ERR timeout is negative")
		return
	}
	c.w.WriteInt(n.waitReplicas(c, numreplicas, time.Duration(timeout)*time.Millisecond))
}
