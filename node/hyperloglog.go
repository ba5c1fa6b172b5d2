package node

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/redmesh/redmesh/hll"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
)

// HyperLogLog commands (Redis's hyperloglog.c). A key PFADD or PFMERGE made
// holds a sketch (record.HLL) whose registers merge by maximum, so that
// elements added at different nodes at the same time are all counted; a
// client reads it as Redis's "HYLL" string, rebuilt from the registers. A
// string that holds a HyperLogLog (a Redis string SET here, or one COPY made)
// is read as it is, and becomes a sketch at its first PFADD or PFMERGE that
// changes a register.

const (
	errNotHLL     = "WRONGTYPE Key is not a valid HyperLogLog string value."
	errInvalidHLL = "INVALIDOBJ Corrupted HLL object detected"
)

// hllKey is a key as the HyperLogLog commands find it.
type hllKey struct {
	cur    record.Record
	live   bool
	sketch *record.HLL // the sketch the key shows, if any
	plain  []byte      // otherwise the string that holds one
}

// readHLL checks a record a HyperLogLog command reads: WRONGTYPE for another
// type, and Redis's own WRONGTYPE text for a string that is no HyperLogLog.
func readHLL(rec record.Record, now int64) (hllKey, error) {
	k := hllKey{cur: rec}
	live, err := liveString(rec, now)
	if err != nil || !live {
		return k, err
	}
	k.live = true
	if k.sketch = rec.Typed.LiveHLL(rec.Value.Version); k.sketch != nil {
		return k, nil
	}
	k.plain = rec.StringData()
	if hll.Check(k.plain) != nil {
		return k, replyErr(errNotHLL)
	}
	return k, nil
}

// maxInto raises regs to the key's registers.
func (k hllKey) maxInto(regs []byte) error {
	switch {
	case !k.live:
	case k.sketch != nil:
		for i, v := range k.sketch.Registers() {
			regs[i] = max(regs[i], v)
		}
	default:
		if err := hll.MaxInto(regs, k.plain); err != nil {
			return replyErr(errInvalidHLL)
		}
	}
	return nil
}

// registers is a copy of the key's registers.
func (k hllKey) registers() ([]byte, error) {
	regs := make([]byte, hll.Registers)
	return regs, k.maxInto(regs)
}

// dense reports whether the key's string is dense.
func (k hllKey) dense() bool {
	switch {
	case !k.live:
		return false
	case k.sketch != nil:
		return k.sketch.IsDense()
	}
	return hll.IsDense(k.plain)
}

// header is the cached cardinality field of the key's string.
func (k hllKey) header() uint64 {
	if k.sketch != nil {
		return k.sketch.Header()
	}
	return hll.Card(k.plain)
}

// raise is the registers among regs that exceed base (nil for none), as a
// delta holds them.
func raise(base, regs []byte) []byte {
	var delta []byte
	for i, v := range regs {
		if v > base[i] {
			if delta == nil {
				delta = make([]byte, hll.Registers)
			}
			delta[i] = v
		}
	}
	return delta
}

// newSketch writes key as a new sketch of registers regs: a new epoch v,
// shown by the value register at v. fresh is a key that did not exist (its
// deadline goes, as a new key has none); otherwise the key keeps its TTL, as
// Redis changes the string in place. Whatever else the record holds
// (elements, counts, the epochs of an expired sketch) is removed as a SET
// removes it.
func (n *Node) newSketch(tx *keyspace.Tx, key []byte, k hllKey, v record.Version, regs []byte, dense bool, cache record.HLLCache, fresh bool) error {
	t := k.cur.Typed.Clear(v.TS)
	if t == nil {
		t = &record.Typed{}
	}
	h := &record.HLL{Epochs: []record.HLLEpoch{{Epoch: v, Dense: dense, Regs: regs}}, Cache: cache}
	if t.HLL != nil {
		h.Removed = t.HLL.Removed
	}
	t.Kind, t.KindVersion, t.HLL = record.KindString, v, h
	rec := record.Record{Value: record.Value{Version: v}, Typed: t}
	if fresh {
		rec.Expiry = record.Expiry{Version: v}
	}
	_, _, err := n.apply(tx, key, rec)
	return err
}

// raiseSketch writes a delta of the key's sketch: registers it raised (in
// the epoch the key shows), the cache.
func (n *Node) raiseSketch(tx *keyspace.Tx, key []byte, v record.Version, delta *record.HLL) error {
	rec := record.Record{Typed: &record.Typed{Kind: record.KindString, KindVersion: v, HLL: delta}}
	_, _, err := n.apply(tx, key, rec)
	return err
}

func cmdPFAdd(n *Node, c *client, args [][]byte) {
	updated := false
	err := c.update(func(tx *keyspace.Tx) error {
		updated = false
		cur, err := tx.Get(args[1])
		if err != nil {
			return err
		}
		k, err := readHLL(cur, n.nowMillis())
		if err != nil {
			return err
		}
		var before []byte // the registers the key shows (nil: all zero)
		switch {
		case k.sketch != nil:
			before = k.sketch.Registers()
		case k.live:
			if before, err = k.registers(); err != nil {
				return err
			}
		}
		// delta: the registers the elements raise, found without a pass
		// over all of them (a dense sketch takes one PFADD after another).
		var delta []byte
		for _, e := range args[2:] {
			i, val := hll.Hash(e)
			was := byte(0)
			if before != nil {
				was = before[i]
			}
			if delta != nil {
				was = max(was, delta[i])
			}
			if val > was {
				if delta == nil {
					delta = make([]byte, hll.Registers)
				}
				delta[i] = val
			}
		}
		if k.live && delta == nil {
			return nil
		}
		updated = true
		v, err := n.newVersion()
		if err != nil {
			return err
		}
		switch {
		case !k.live:
			return n.newSketch(tx, args[1], k, v, delta, hll.NeedsDense(delta),
				record.HLLCache{Ver: v, Card: hll.CacheInvalid}, true)
		case k.sketch == nil:
			regs := maxRegisters(before, delta)
			return n.newSketch(tx, args[1], k, v, regs, k.dense() || hll.NeedsDense(regs),
				record.HLLCache{Ver: v, Card: hll.Card(k.plain), Of: record.RegsDigest(before)}, false)
		}
		// Promotion to dense is for good, as in Redis.
		promote := !k.sketch.Promoted() && hll.NeedsDense(maxRegisters(before, delta))
		return n.raiseSketch(tx, args[1], v, &record.HLL{Epochs: []record.HLLEpoch{
			{Epoch: k.cur.Value.Version, Regs: delta, Dense: promote}}})
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(boolInt(updated))
}

// maxRegisters is the register maximum of a and b, either of which may be
// nil (all zero).
func maxRegisters(a, b []byte) []byte {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	m := make([]byte, hll.Registers)
	for i := range m {
		m[i] = max(a[i], b[i])
	}
	return m
}

func cmdPFCount(n *Node, c *client, args [][]byte) {
	if len(args) > 2 {
		regs := make([]byte, hll.Registers)
		for _, key := range args[1:] {
			rec, err := c.get(key)
			if err != nil {
				c.writeErr(err)
				return
			}
			k, err := readHLL(rec, n.nowMillis())
			if err == nil {
				err = k.maxInto(regs)
			}
			if err != nil {
				c.writeErr(err)
				return
			}
		}
		c.w.WriteInt64(int64(hll.Count(regs)))
		return
	}
	rec, err := c.get(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	k, err := readHLL(rec, n.nowMillis())
	switch {
	case err != nil:
		c.writeErr(err)
		return
	case !k.live:
		c.w.WriteInt(0)
		return
	case k.header()&hll.CacheInvalid == 0:
		c.w.WriteInt64(int64(k.header()))
		return
	}
	// The cache is stale: count, and cache the count in the key, as Redis
	// does (and propagates, as we do through the log).
	var card uint64
	err = c.update(func(tx *keyspace.Tx) error {
		cur, err := tx.Get(args[1])
		if err != nil {
			return err
		}
		k, err := readHLL(cur, n.nowMillis())
		if err != nil || !k.live {
			card = 0
			return err
		}
		if h := k.header(); h&hll.CacheInvalid == 0 {
			card = h
			return nil
		}
		regs, err := k.registers()
		if err != nil {
			return err
		}
		card = hll.Count(regs)
		v, err := n.newVersion()
		if err != nil {
			return err
		}
		if k.sketch == nil {
			s := append([]byte(nil), k.plain...)
			hll.SetCard(s, card)
			return n.putValue(tx, args[1], s, true)
		}
		cache := record.HLLCache{Ver: v, Card: card, Of: record.RegsDigest(k.sketch.Registers())}
		return n.raiseSketch(tx, args[1], v, &record.HLL{Cache: cache})
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt64(int64(card))
}

func cmdPFMerge(n *Node, c *client, args [][]byte) {
	err := c.update(func(tx *keyspace.Tx) error {
		now := n.nowMillis()
		regs := make([]byte, hll.Registers)
		useDense := false
		var dest hllKey
		for i, key := range args[1:] {
			cur, err := tx.Get(key)
			if err != nil {
				return err
			}
			k, err := readHLL(cur, now)
			if err != nil {
				return err
			}
			if i == 0 {
				dest = k
			}
			useDense = useDense || k.dense()
			if err := k.maxInto(regs); err != nil {
				return err
			}
		}
		v, err := n.newVersion()
		if err != nil {
			return err
		}
		dense := useDense || hll.NeedsDense(regs)
		switch {
		case !dest.live:
			return n.newSketch(tx, args[1], dest, v, raise(make([]byte, hll.Registers), regs), dense,
				record.HLLCache{Ver: v, Card: hll.CacheInvalid}, true)
		case dest.sketch == nil:
			return n.newSketch(tx, args[1], dest, v, raise(make([]byte, hll.Registers), regs), dense || dest.dense(),
				record.HLLCache{Ver: v, Card: hll.Card(dest.plain) | hll.CacheInvalid}, false)
		}
		base, err := dest.registers()
		if err != nil {
			return err
		}
		return n.raiseSketch(tx, args[1], v, &record.HLL{
			Epochs: []record.HLLEpoch{{Epoch: dest.cur.Value.Version, Regs: raise(base, regs), Dense: dense}},
			Cache:  record.HLLCache{Ver: v, Card: dest.header() | hll.CacheInvalid},
		})
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteString("OK")
}

// toDense makes the key's string dense, as PFDEBUG GETREG and TODENSE do;
// it reports whether it was sparse.
func (n *Node) toDense(tx *keyspace.Tx, key []byte, k hllKey) (bool, error) {
	if k.dense() {
		return false, nil
	}
	if k.sketch == nil {
		s, err := hll.ToDense(k.plain)
		if err != nil {
			return false, replyErr(errInvalidHLL)
		}
		return true, n.putValue(tx, key, s, true)
	}
	v, err := n.newVersion()
	if err != nil {
		return false, err
	}
	return true, n.raiseSketch(tx, key, v, &record.HLL{Epochs: []record.HLLEpoch{{Epoch: k.cur.Value.Version, Dense: true}}})
}

func cmdPFDebug(n *Node, c *client, args [][]byte) {
	sub := args[1]
	var (
		regs    []byte
		changed bool
		k       hllKey
	)
	err := c.update(func(tx *keyspace.Tx) error {
		cur, err := tx.Get(args[2])
		if err != nil {
			return err
		}
		if k, err = readHLL(cur, n.nowMillis()); err != nil {
			return err
		}
		if !k.live {
			return replyErr("ERR The specified key does not exist")
		}
		switch {
		case equalFold(sub, "getreg"):
			if regs, err = k.registers(); err != nil {
				return err
			}
			_, err = n.toDense(tx, args[2], k)
			return err
		case equalFold(sub, "todense"):
			changed, err = n.toDense(tx, args[2], k)
			return err
		}
		return nil
	})
	switch {
	case err != nil:
		c.writeErr(err)
	case equalFold(sub, "getreg"):
		c.w.WriteArray(len(regs))
		for _, r := range regs {
			c.w.WriteInt(int(r))
		}
	case equalFold(sub, "todense"):
		c.w.WriteInt(boolInt(changed))
	case equalFold(sub, "encoding"):
		if k.dense() {
			c.w.WriteString("dense")
		} else {
			c.w.WriteString("sparse")
		}
	case equalFold(sub, "decode"):
		if k.dense() {
			c.w.WriteError("ERR HLL encoding is not sparse")
			return
		}
		s := k.plain
		if k.sketch != nil {
			s = k.sketch.String()
		}
		text, err := hll.Describe(s)
		if err != nil {
			c.w.WriteError(errInvalidHLL)
			return
		}
		c.w.WriteBulkString(text)
	default:
		c.w.WriteError(fmt.Sprintf("ERR Unknown PFDEBUG subcommand '%s'", sub))
	}
}

// cmdPFSelfTest is Redis's PFSELFTEST: registers read back what was set in
// them, through the dense and sparse encodings, and estimates of up to
// 10,000,000 elements stay within a few standard errors.
func cmdPFSelfTest(n *Node, c *client, args [][]byte) {
	if err := hllSelfTest(); err != nil {
		c.w.WriteError("ERR TESTFAILED " + err.Error())
		return
	}
	c.w.WriteString("OK")
}

func hllSelfTest() error {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	regs := make([]byte, hll.Registers)
	back := make([]byte, hll.Registers)
	for range 100 {
		for i := range regs {
			regs[i] = byte(rng.IntN(hll.MaxRegister + 1))
		}
		clear(back)
		if err := hll.MaxInto(back, hll.Encode(regs, true, 0)); err != nil {
			return err
		}
		for i := range regs {
			if back[i] != regs[i] {
				return fmt.Errorf("Register %d should be %d but is %d", i, regs[i], back[i])
			}
		}
	}
	clear(regs)
	relerr := 1.04 / math.Sqrt(hll.Registers)
	seed := rng.Uint64()
	var ele [8]byte
	checkpoint := 1
	for j := 1; j <= 10_000_000; j++ {
		x := uint64(j) ^ seed
		for b := range ele {
			ele[b] = byte(x >> (8 * b))
		}
		i, v := hll.Hash(ele[:])
		regs[i] = max(regs[i], v)
		if j != checkpoint {
			continue
		}
		s := hll.Encode(regs, false, 0)
		if j < hll.SparseMaxBytes/2 && hll.IsDense(s) {
			return errors.New("sparse encoding not used")
		}
		clear(back)
		if err := hll.MaxInto(back, s); err != nil || hll.Count(back) != hll.Count(regs) {
			return errors.New("dense/sparse disagree")
		}
		abserr := math.Abs(float64(checkpoint) - float64(hll.Count(regs)))
		maxerr := math.Ceil(relerr * 6 * float64(checkpoint))
		if j == 10 {
			maxerr = 1
		}
		if abserr > maxerr {
			return fmt.Errorf("Too big error. card:%d abserr:%d", checkpoint, int64(abserr))
		}
		checkpoint *= 10
	}
	return nil
}
