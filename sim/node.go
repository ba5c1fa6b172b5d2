package sim

import (
	"bytes"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
)

// node is one simulated redmesh node: its storage, clock, log, peers and
// durability state. Everything it does happens in Sim's event handlers.
type node struct {
	idx  int
	id   record.NodeID
	pid  mesh.PeerID
	up   bool
	gone bool   // left the mesh for good
	inc  uint32 // incarnation: bumped by crash and restart, so stale events are ignored
	// group is the node's side of the current partition (0 when none).
	group int32

	st    *store
	merge MergeFunc
	clock *hlc.Clock
	hwm   hlc.Timestamp // the clock's persisted high-water mark (synced when written)
	skew  time.Duration
	drift float64 // parts per million

	// r is the node's replication core, the one a real node runs: it
	// decides, the simulator carries out (drive). It lives across crashes,
	// as a node's saved state does (Restart).
	r *mesh.Replicator
	// streams is the catch-up stream to each peer (the latest run's);
	// ackFifo the arrival time of the last message on the acknowledgement
	// stream to each; pushLinks the push stream to each.
	streams   map[mesh.PeerID]*logStream
	ackFifo   map[mesh.PeerID]*int64
	pushLinks []pushLink
	// gapCheck: a look at the push gaps is scheduled (gossip's maintain
	// loop looks every gapCheckEvery).
	gapCheck bool

	// The write-ahead log: applied mutations, log[i] has sequence number
	// logFirst+i, the first being 1 (as the node's log). A catch-up serves
	// each entry's record as the write left it, as the node's log does, or
	// with LogAsCurrent the key's current record (see Config.LogAsCurrent
	// for where the two differ).
	epoch    uint64
	logFirst uint64
	log      []logEntry

	// Durability: what a crash would undo.
	synced     uint64    // log head at the last sync
	undo       []undoRec // store changes since the last sync, in order
	durCursors []mesh.PeerCursor
	syncs      uint64  // syncs done (each completes as it begins)
	pending    []int32 // acknowledged client writes not yet synced

	push        mesh.Batcher[pushItem]
	flushQueued bool
	busy        int64 // the uplink is busy until then

	sent    [numClasses]byteCount
	refused uint64 // hlc refusals by earlier incarnations' clocks

	gc gcState // garbage collection (stable.go)
}

// undoRec is a store change to undo: key id held old (nil: nothing).
type undoRec struct {
	id  uint32
	old *record.Record
}

type byteCount struct{ meta, payload int64 }

func (n *node) head() uint64 { return n.logFirst + uint64(len(n.log)) }

// rootAt is the node's Merkle root with its log's epoch and head, and its
// last local write.
func (n *node) rootAt() mesh.RootAt {
	return mesh.RootAt{Epoch: n.epoch, Head: n.head(), Root: n.st.tree.Root(), Own: min(n.gc.lastLocal, n.head()-1)}
}

func (n *node) appendLog(id uint32, rec *record.Record, retain int) {
	n.log = append(n.log, logEntry{id, rec})
	if len(n.log) > retain+retain/4+16 {
		drop := len(n.log) - retain
		copy(n.log, n.log[drop:])
		n.log = n.log[:retain]
		n.logFirst += uint64(drop)
	}
}

// truncateLog drops the entries from seq on (a crash lost them).
func (n *node) truncateLog(seq uint64) {
	if seq < n.logFirst {
		n.log, n.logFirst = n.log[:0], seq
		return
	}
	if seq < n.head() {
		n.log = n.log[:seq-n.logFirst]
	}
}

// wall is the node's clock reading at virtual time now: true time plus its
// offset and drift.
func (s *Sim) wall(n *node) time.Time {
	t := time.Duration(s.now)
	return s.epoch.Add(t + time.Duration(float64(t)*n.drift/1e6) + n.skew)
}

func (s *Sim) newClock(n *node) {
	n.clock = hlc.NewClock(hlc.Config{
		Now:       func() time.Time { return s.wall(n) },
		MaxSkew:   s.cfg.MaxSkew,
		HighWater: n.hwm,
		// The mark is a synced write on a real node, so it survives a crash.
		Persist: func(t hlc.Timestamp) error { n.hwm = t; return nil },
	})
}

// apply is the one write path: merge with the node's merge rule, store, log,
// and remember how to undo it if a crash comes before the next sync. It
// reports whether anything won.
func (s *Sim) apply(n *node, id uint32, in record.Record) bool {
	op := n.st.ref(id)
	var old record.Record
	if op != nil {
		old = *op
	}
	merged, changed := n.merge(old, in)
	if !changed {
		return false
	}
	// Interned only when kept: most records received lose.
	merged.Value.Data = s.internFor(id, merged.Value.Data)
	// Watch the merge against the order every node must follow.
	if merged.Value.Version.Compare(old.Value.Version) < 0 || merged.Expiry.Version.Compare(old.Expiry.Version) < 0 {
		s.ck.regressions++
		if old.Value.Tombstone && !merged.Value.Tombstone {
			s.ck.resurrections++
		}
	}
	// A key a node collected (its delete or expiry every member had) must
	// not come back with a value older than what removed it.
	if int(id) < len(s.ck.collected) && !merged.Value.Tombstone && !merged.Value.Version.IsZero() &&
		merged.Value.Version.Compare(s.ck.collected[id]) < 0 {
		s.ck.resurrections++
	}
	if c, collected := s.collectIngress(n, id, merged); collected {
		if record.Equal(c, old) {
			return false
		}
		merged = c
	}
	p := s.logRecord(id, merged)
	n.st.replace(id, old, p)
	n.appendLog(id, p, s.cfg.LogRetain)
	if s.cfg.Fsync != FsyncAlways {
		n.undo = append(n.undo, undoRec{id, op})
	}
	s.tr.change(s, n, id, old, merged)
	return true
}

// sync makes everything the node has written durable (fsync, or the OS
// flush under "no").
func (s *Sim) sync(n *node) {
	n.undo = n.undo[:0]
	n.synced = n.head()
	n.durCursors = n.r.Cursors()
	n.syncs++
	n.r.Synced(n.syncs, n.syncs+1)
	for _, w := range n.pending {
		s.ck.writes[w].synced = true
	}
	n.pending = n.pending[:0]
}

// write is a client's SET or DEL at n, acknowledged when it returns true.
func (s *Sim) write(n *node, key []byte, data []byte, tomb bool, ttl time.Duration) {
	if !n.up {
		s.ck.unavailable++
		return
	}
	ts, err := n.clock.Now()
	if err != nil {
		s.ck.unavailable++
		return
	}
	id := s.keys.id(key)
	s.tr.grow(s.keys.len())
	if n.st.get(id).Typed != nil {
		// A write over typed state also removes and resets what it
		// observed: the typed checker must know.
		args := [][]byte{[]byte("DEL"), key}
		if !tomb {
			args = [][]byte{[]byte("SET"), key, data}
		}
		s.command(n, args)
		return
	}
	v := record.Version{TS: ts, Node: n.id}
	rec := record.Record{Value: record.Value{Version: v, Tombstone: tomb}, Expiry: record.Expiry{Version: v}}
	if !tomb {
		rec.Value.Data = s.intern(data)
		if ttl > 0 {
			// SET key value PX ttl: the deadline by the node's wall clock.
			rec.Expiry.At = s.wall(n).UnixMilli() + ttl.Milliseconds()
		}
	}
	always := s.cfg.Fsync == FsyncAlways
	s.ck.writes = append(s.ck.writes, writeRec{key: id, ver: v, ts: v.TS, tomb: tomb, node: int32(n.idx), synced: always, at: s.now})
	if !always {
		n.pending = append(n.pending, int32(len(s.ck.writes)-1))
	}
	s.applyLocal(n, id, rec)
}

// applyLocal applies a client's write at n, notes it as n's latest local
// write (what peers acknowledge) and hands it to eager push.
func (s *Sim) applyLocal(n *node, id uint32, rec record.Record) {
	if !s.apply(n, id, rec) {
		return
	}
	n.gc.lastLocal = n.head() - 1
	s.lastWrite = max(s.lastWrite, rec.Newest().TS)
	s.queuePush(n, id)
}

// crash stops n. Under fsync always nothing is lost; otherwise the store,
// the log and the peer cursors go back to the last sync, the log takes a new
// epoch if it lost entries it may have served, and the acknowledged writes
// not yet synced are marked at risk.
func (s *Sim) crash(n *node) {
	if !n.up {
		return
	}
	s.tr.nodeDown(s, n)
	n.up = false
	n.inc++
	n.flushQueued, n.streams, n.ackFifo, n.pushLinks, n.gapCheck = false, nil, nil, nil, false
	n.push.Reset()
	n.refused += n.clock.Refused()
	s.st.crashes++
	if s.cfg.Fsync != FsyncAlways {
		for i := len(n.undo) - 1; i >= 0; i-- {
			n.st.restore(n.undo[i].id, n.undo[i].old)
		}
		s.st.rolledBack += int64(len(n.undo))
		for _, w := range n.pending {
			s.ck.writes[w].atRisk = true
		}
		if n.synced < n.head() {
			n.truncateLog(n.synced)
			n.epoch++
		}
		n.undo, n.pending = n.undo[:0], n.pending[:0]
	}
	// What the node saved survives: its cursors as of the last sync (all
	// of them under always, where every commit is one).
	cursors := n.durCursors
	if s.cfg.Fsync == FsyncAlways {
		cursors = n.r.Cursors()
	}
	n.r.Restart(n.epoch, n.head(), cursors)
	inc := n.inc
	for _, p := range n.r.Table().Peers() {
		o := s.nodes[s.byID[p.ID]]
		s.at(s.now+int64(s.cfg.Network.Detect), func() {
			if n.inc == inc { // still down, same incarnation
				s.linkDown(o, n)
			}
		})
	}
}

// counterID is the identity n's counter increments go under in this
// incarnation (record.CounterID), as a real node's run.
func (n *node) counterID() record.NodeID { return record.CounterID(n.id, uint64(n.inc)) }

// restart brings n back with what survived its crash.
func (s *Sim) restart(n *node) {
	if n.up || n.gone {
		return
	}
	n.up = true
	n.inc++
	n.busy = s.now
	s.newClock(n)
	s.gcStart(n)
	s.tr.nodeUp(s, n)
	s.startTicks(n)
	if s.fullMesh() {
		s.linkAll(n) // nodes that joined while it was down
	}
	for _, p := range n.r.Table().Peers() {
		s.scheduleLinkUp(n, s.nodes[s.byID[p.ID]])
	}
}

// linkAll makes n a peer of every node of the mesh it does not know yet
// (a full mesh stays one, as peer exchange keeps a real mesh) and links
// it to those up.
func (s *Sim) linkAll(n *node) {
	for _, o := range s.nodes {
		if o == n || o.gone || n.r.Table().Get(o.pid) != nil {
			continue
		}
		n.r.AddPeer(o.pid)
		o.r.AddPeer(n.pid)
		if o.up && n.up {
			s.scheduleLinkUp(n, o)
		}
	}
}

// leave removes n from the mesh for good; its peers forget it once they
// notice, and those left with few links make a new one.
func (s *Sim) leave(n *node) {
	if n.gone {
		return
	}
	if n.up {
		s.tr.nodeDown(s, n)
		n.refused += n.clock.Refused()
	}
	n.up, n.gone = false, true
	n.inc++
	s.st.left++
	for _, p := range n.r.Table().Peers() {
		o := s.nodes[s.byID[p.ID]]
		s.at(s.now+int64(s.cfg.Network.Detect), func() {
			// The operator forgets it (redmesh forget): it no longer
			// holds collection back.
			o.r.RemovePeer(n.pid, s.wall(o))
			delete(o.streams, n.pid)
			delete(o.ackFifo, n.pid)
			o.dropPushLink(n.pid)
			s.drive(o)
			if !o.gone && o.r.Table().Len() < max(1, s.cfg.Degree/4) {
				s.linkRandom(o, 1)
			}
		})
	}
}

// join adds a new, empty node linked to random live nodes (to every live
// node in a full mesh).
func (s *Sim) join() *node {
	n := s.newNode()
	s.gcStart(n)
	s.tr.nodeUp(s, n)
	if s.fullMesh() {
		s.linkAll(n)
	} else {
		s.linkRandom(n, max(1, s.cfg.Degree/2))
	}
	s.startTicks(n)
	s.st.joined++
	return n
}

func (s *Sim) newNode() *node {
	n := &node{idx: len(s.nodes), up: true, epoch: 1, logFirst: 1}
	for {
		n.id = record.NodeID(s.rng.Uint64())
		if _, dup := s.byID[mesh.PeerID(n.id)]; !dup && n.id != 0 {
			break
		}
	}
	n.pid = mesh.PeerID(n.id)
	n.r = mesh.NewReplicator(mesh.ReplicatorConfig{
		Self: n.pid, Epoch: n.epoch, Head: n.head(), LogMax: uint32(s.cfg.CatchUpBatch),
		Always:      s.cfg.Fsync == FsyncAlways || s.cfg.AckUnsynced,
		ForgetAfter: s.cfg.ForgetAfter, Intn: s.rng.IntN, NoCatchUp: s.cfg.NoCatchUp, Fanout: s.cfg.RelayFanout,
	})
	st, err := newStore(s.keys)
	if err != nil {
		panic(err) // the shape was validated
	}
	n.st = st
	n.merge = record.MergeInto
	if s.cfg.Merge != nil {
		if m := s.cfg.Merge(n.idx); m != nil {
			n.merge = m
		}
	}
	n.push.Max = s.cfg.PushBatch
	s.newClock(n)
	s.byID[n.pid] = int32(n.idx)
	s.nodes = append(s.nodes, n)
	return n
}

// startTicks starts n's periodic work: anti-entropy and, unless every write
// is synced at once, the fsync (or OS flush) timer. Phases are random.
func (s *Sim) startTicks(n *node) {
	inc := n.inc
	si := int64(s.cfg.SyncInterval)
	var tick func()
	tick = func() {
		if n.inc != inc {
			return
		}
		// ±5% per round, so nodes do not stay in lockstep.
		s.at(s.now+si-si/20+s.rng.Int64N(si/10+1), tick)
		s.syncRound(n)
	}
	s.at(s.now+s.rng.Int64N(si), tick)
	s.startGC(n)
	var period int64
	switch s.cfg.Fsync {
	case FsyncEverysec:
		period = int64(time.Second)
	case FsyncNo:
		period = int64(s.cfg.OSFlush)
	default:
		return
	}
	var flush func()
	flush = func() {
		if n.inc != inc {
			return
		}
		s.sync(n)
		s.at(s.now+period, flush)
	}
	s.at(s.now+s.rng.Int64N(period), flush)
}

// logEntry is one log entry: the key and its record as the write left it,
// one copy shared by every node that logged the same record (Sim.logRecord).
type logEntry struct {
	id  uint32
	rec *record.Record
}

// loggedKey names a plain record (no typed state) some node logged: with
// its interned value, what tells it from every other record of the key.
type loggedKey struct {
	id     uint32
	tomb   bool
	at     int64
	v, exp record.Version
}

// logRecord returns the copy of rec a log entry of key id holds. A write
// is applied, and logged, by every node it reaches: one copy of it for
// all of them, not one each (at 10,000 nodes, a gigabyte of heap). A
// typed record's state differs from node to node with what each merged,
// and is not shared.
func (s *Sim) logRecord(id uint32, rec record.Record) *record.Record {
	if rec.Typed != nil {
		return &rec
	}
	// Most often it is the key's record logged last, which the nodes a
	// write reaches log one after the other: found so without the map's
	// look-up, a few cache misses in a map the run has long left.
	if int(id) >= len(s.lastLogged) {
		s.lastLogged = append(s.lastLogged, make([]*record.Record, int(id)+1-len(s.lastLogged))...)
	}
	if p := s.lastLogged[id]; p != nil && p.Value.Version == rec.Value.Version && p.Value.Tombstone == rec.Value.Tombstone &&
		p.Expiry == rec.Expiry && bytes.Equal(p.Value.Data, rec.Value.Data) {
		return p
	}
	k := loggedKey{id: id, tomb: rec.Value.Tombstone, at: rec.Expiry.At, v: rec.Value.Version, exp: rec.Expiry.Version}
	p := s.logged[k]
	if p == nil || !bytes.Equal(p.Value.Data, rec.Value.Data) {
		p = &rec
		s.logged[k] = p
	}
	s.lastLogged[id] = p
	return p
}

// internFor is intern for a value of key id, which is most often the
// value of the key's record logged last (logRecord).
func (s *Sim) internFor(id uint32, data []byte) []byte {
	if data != nil && int(id) < len(s.lastLogged) {
		if p := s.lastLogged[id]; p != nil && p.Value.Data != nil && bytes.Equal(p.Value.Data, data) {
			return p.Value.Data
		}
	}
	return s.intern(data)
}
