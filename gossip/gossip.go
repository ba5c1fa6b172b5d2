package gossip

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Local is the node as the mesh sees it: the one write path for records
// from peers, and the Merkle index.
type Local interface {
	// ApplyRemote merges records from a peer (mesh.Admit, then the write
	// path) and returns how many changed something; a *mesh.RefusedError
	// if Admit refused some (the others are merged). Writes up to horizon
	// (0: none) the node no longer holds are set aside, not merged: the
	// peer is a forgotten member back (stable.go).
	ApplyRemote(ctx context.Context, recs []merkle.Record, horizon hlc.Timestamp) (int, error)
	MerkleLocal() merkle.Local
	MerkleRoot() uint64
	Snapshotter
	// SetAsideBelow takes out of the keyspace every write up to horizon
	// (record.Fresh against nothing), listing what it takes as set aside,
	// and returns how many keys it changed: this node was forgotten by the
	// mesh, which has collected deletes up to horizon that its old records
	// would bring back. Its peers refill what they still hold.
	SetAsideBelow(horizon hlc.Timestamp) (int, error)
	// Frontier is the log's last sequence number and a clock reading taken
	// together, with every write up to that number committed: every local
	// write stamped up to ts is at or before seq (stable.go).
	Frontier() (seq uint64, ts hlc.Timestamp, err error)
}

// Mesh is a node's link to its peers over libp2p.
type Mesh struct {
	cfg   Config
	log   *slog.Logger
	store *wal.Store
	local Local
	tr    Transport
	self  peer.ID

	epoch uint64 // this node's log epoch

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards r, the replication policy (drive.go), and what the mesh
	// keeps beside it.
	mu sync.Mutex
	r  *mesh.Replicator
	// decisions, if set before the mesh starts, sees every Ready of r (a
	// test compares them with the simulator's).
	decisions func(mesh.Ready)
	// runs are the catch-ups' log streams, by peer; acks the
	// acknowledgements the replicator decided on, for ackSender.
	runs       map[mesh.PeerID]*logRun
	acks       []mesh.AckTo
	peers      map[peer.ID]*peerState
	pids       map[mesh.PeerID]peer.ID
	wanted     map[peer.ID]*dialState
	peersDirty bool
	// cursorsDirty: catch-up cursors moved since they were last saved.
	cursorsDirty bool

	pushMu    sync.Mutex
	pending   []pushItem
	lastLocal uint64 // seq of the latest local write
	// committed is the seq of the latest entry Committed took, local or
	// not: the log's head moves at the commit, before Committed runs.
	committed  uint64
	localSeqs  localSeqs
	pushSignal chan struct{}
	ackSignal  chan struct{}
	ackChanged chan struct{} // closed and replaced when an ack arrives
	// syncWanted: an acknowledgement waits for a sync (ackSender makes one
	// under --fsync no).
	syncWanted  atomic.Bool
	linked      atomic.Int32 // peers connected now
	sessionMu   sync.Mutex
	merkleSlots chan struct{}
	// snapshotSlots bounds the snapshots served at once.
	snapshotSlots chan struct{}

	st stats
	// expectSync: peers were known at start (given or remembered), so the
	// node is ready only once it has synced with one (synced).
	expectSync bool
	synced     atomic.Bool
	// startedEmpty: the node held no key when the mesh started, and its
	// log ended at startLocal.
	startedEmpty bool
	startLocal   uint64
	// syncInterval is cfg.SyncInterval, changeable while the mesh runs;
	// intervalSignal wakes the anti-entropy loop when it changes, so a
	// shorter period does not wait out the longer one's tick.
	syncInterval   atomic.Int64
	intervalSignal chan struct{}

	// The forgotten members (stable.go), under m.mu, by peer ID: saved,
	// and not dialled.
	forgot      map[peer.ID]bool
	forgotDirty bool

	// wireEncoding is the newest record encoding this node writes to
	// peers, which picks the protocols' versions it speaks: this build's
	// own; a test's node of the build before, Encoding1.
	wireEncoding record.Encoding
}

// SyncInterval is the anti-entropy period.
func (m *Mesh) SyncInterval() time.Duration { return time.Duration(m.syncInterval.Load()) }

// SetSyncInterval changes the anti-entropy period: the next round is d
// from now.
func (m *Mesh) SetSyncInterval(d time.Duration) {
	if d > 0 {
		m.syncInterval.Store(int64(d))
		select {
		case m.intervalSignal <- struct{}{}:
		default:
		}
	}
}

type stats struct {
	sessions, sessionsFailed, sessionsEqual atomic.Uint64
	keysRepaired                            atomic.Uint64
	catchUps, catchUpsByLog, fallbacks      atomic.Uint64
	catchUpEntries                          atomic.Uint64
	pushBatches, pushRecords                atomic.Uint64
	pushReceived, pushApplied               atomic.Uint64
	pushDropped, pushDroppedStream          atomic.Uint64
	pushRelayed, pushRelayDropped, pushHeld atomic.Uint64
	badMessages                             atomic.Uint64
	bootstraps, bootstrapKeys               atomic.Uint64
	snapshotsServed                         atomic.Uint64
	forgottenReturned                       atomic.Uint64
}

// peerState is what the mesh keeps about one peer's connection, across
// disconnections; what the replication policy knows of it is the
// replicator's.
type peerState struct {
	id        peer.ID
	mid       mesh.PeerID
	addr      string
	connected bool
	lastSync  time.Time
	// ackStream is the stream we opened to acknowledge the peer's writes,
	// on which it asks (WAIT); ackReset: the last one failed, so the next
	// says everything again.
	ackStream Stream
	ackW      *bufio.Writer
	ackReset  bool
	// The stream the peer opened to acknowledge our writes, on which we
	// ask (ackInMu orders the asking).
	ackIn   Stream
	ackInW  *bufio.Writer
	ackInMu sync.Mutex
	// push is the stream our pushes go to the peer on (pushstream.go).
	push *pushOut
	// versionLogged names the protocols of which the peer speaks no
	// version of ours, logged once on this link (versions.go).
	versionLogged map[string]bool
	// downSince is when its link last closed; link counts the times it
	// came up (a peer exchange goes on while its link is the same).
	downSince time.Time
	link      uint64
}

type dialState struct {
	next    time.Time
	backoff time.Duration
	dialing bool
	pinned  bool      // a bootstrap peer: never forgotten
	upSince time.Time // when the current or last link came up
	lostAt  time.Time // when a stable link to the peer last closed
}

// Meta names in the store.
const (
	metaEpoch   = "mesh-log-epoch"
	metaOpen    = "mesh-open" // present while a node runs: absent after a clean stop
	metaCursors = "mesh-cursors"
	metaPeers   = "mesh-peers"
)

// Start starts the mesh: the libp2p host, discovery, push, catch-up and
// anti-entropy. It refuses to start in protected mode (see Config.Listen).
func Start(cfg Config, store *wal.Store, local Local) (*Mesh, error) {
	cfg.setDefaults()
	listen, notes, err := cfg.listenAddrs()
	if err != nil {
		return nil, err
	}
	boot, err := parsePeers(cfg.Peers)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		cfg.Logger.Warn(n)
	}
	m, err := newMesh(cfg, store, local)
	if err != nil {
		return nil, err
	}
	name := "open" // the mesh's name: its mDNS service
	if cfg.PSK != nil {
		sum := sha256.Sum256(cfg.PSK)
		name = "psk-" + hex.EncodeToString(sum[:8])
	}
	tr, err := newP2P(&m.cfg, name, listen)
	if err != nil {
		return nil, err
	}
	if err := m.start(tr, boot); err != nil {
		tr.Close()
		return nil, err
	}
	m.log.Info("mesh listening", "peer_id", m.self.String(), "addrs", strings.Join(m.Addrs(), " "),
		"private_network", cfg.PSK != nil, "allowlist", len(cfg.AllowPeers), "log_epoch", m.epoch)
	return m, nil
}

// newMesh is a mesh on its store, its log's epoch open, not started.
func newMesh(cfg Config, store *wal.Store, local Local) (*Mesh, error) {
	cfg.setDefaults()
	m := &Mesh{
		cfg: cfg, log: cfg.Logger, store: store, local: local,
		peers:          map[peer.ID]*peerState{},
		wanted:         map[peer.ID]*dialState{},
		pushSignal:     make(chan struct{}, 1),
		ackSignal:      make(chan struct{}, 1),
		intervalSignal: make(chan struct{}, 1),
		ackChanged:     make(chan struct{}),
		merkleSlots:    make(chan struct{}, maxInboundMerkle),
		snapshotSlots:  make(chan struct{}, maxSnapshotStreams),
		runs:           map[mesh.PeerID]*logRun{},
		pids:           map[mesh.PeerID]peer.ID{},
		forgot:         map[peer.ID]bool{},
		wireEncoding:   record.Encoding2,
	}
	m.syncInterval.Store(int64(cfg.SyncInterval))
	if err := m.openEpoch(); err != nil {
		return nil, err
	}
	_, m.lastLocal = store.LogBounds()
	m.committed = m.lastLocal
	m.localSeqs.floor = m.lastLocal
	return m, nil
}

// start runs the mesh over transport tr, which it closes on failure: the
// replicator from what was saved, then the peers to dial, and only then,
// with everything in place, the transport's events.
func (m *Mesh) start(tr Transport, boot []peer.AddrInfo) error {
	m.tr, m.self = tr, tr.Self()
	m.ctx, m.cancel = context.WithCancel(context.Background())
	rc, err := m.loadStability()
	if err != nil {
		m.cancel()
		return err
	}
	rc.Self = m.midOf(m.self)
	rc.Epoch, rc.Head, rc.LogMax = m.epoch, m.lastLocal+1, logReplyEntries
	rc.Always = m.store.Fsync() == wal.FsyncAlways
	rc.ForgetAfter, rc.Intn = m.cfg.ForgetAfter, randIntN
	rc.Cursors = m.loadCursors()
	m.r = mesh.NewReplicator(rc)
	m.loadState()
	m.loadBootstrap()
	m.startedEmpty, m.startLocal = m.local.Empty(), m.lastLocal
	for _, ai := range boot {
		if ai.ID == m.self {
			continue
		}
		m.tr.AddAddrs(ai.ID, ai.Addrs, true)
		m.want(ai.ID, true)
	}
	m.mu.Lock()
	m.expectSync = len(m.wanted) > 0
	if m.expectSync && m.startedEmpty {
		m.r.Table().WantBootstrap()
	}
	m.mu.Unlock()
	if err := m.tr.Start(events{m}); err != nil {
		m.cancel()
		return err
	}
	m.goRun(m.publisher)
	m.goRun(m.maintain)
	m.goRun(m.antiEntropy)
	m.goRun(m.ackSender)
	return nil
}

// events is the mesh as its transport's Handler.
type events struct{ m *Mesh }

func (e events) LinkUp(p peer.ID, addr string) { e.m.linkUp(p, addr) }
func (e events) LinkDown(p peer.ID)            { e.m.linkDown(p) }
func (e events) Found(p peer.ID)               { e.m.want(p, false) }

func (e events) Protocols() []protocol.ID { return e.m.protocols() }

// Stream serves a stream a peer opened; the record-carrying ones in the
// encoding of the version negotiated (versions.go).
func (e events) Stream(proto protocol.ID, s Stream) {
	switch proto {
	case protoLog, protoLog2:
		e.m.serveLog(s)
	case protoMerkle, protoMerkle3:
		e.m.serveMerkle(s)
	case protoAck:
		e.m.serveAck(s)
	case protoPush, protoPush4:
		e.m.servePush(s)
	case protoPeers:
		e.m.servePeers(s)
	case protoSnapshot, protoSnapshot1:
		e.m.serveSnapshot(s)
	default:
		s.Reset()
	}
}

func (m *Mesh) goRun(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

// Addrs are the node's full mesh addresses, with /p2p/ID.
func (m *Mesh) Addrs() []string { return m.tr.Addrs() }

// ID is the node's peer ID.
func (m *Mesh) ID() peer.ID { return m.self }

// Close stops the mesh. The store must still be open: cursors and peers
// are saved, and the log is marked as cleanly closed.
func (m *Mesh) Close() error {
	m.cancel()
	err := m.tr.Close()
	m.wg.Wait()
	m.saveCursors()
	m.savePeers()
	if e := m.store.PutMetaSync(metaOpen, nil); e != nil && err == nil {
		err = e
	}
	return err
}

// openEpoch loads the log's epoch, taking a new one if the node stopped
// without closing and its fsync mode may have lost a tail of the log that
// peers had already read: their cursors must not be used against the
// shorter log.
func (m *Mesh) openEpoch() error {
	b, ok, err := m.store.GetMeta(metaEpoch)
	if err != nil {
		return err
	}
	if ok && len(b) == 8 {
		m.epoch = binary.BigEndian.Uint64(b)
	}
	mark, open, err := m.store.GetMeta(metaOpen)
	if err != nil {
		return err
	}
	unclean := open && len(mark) > 0
	if m.epoch == 0 || (unclean && m.store.Fsync() != wal.FsyncAlways) {
		if m.epoch != 0 {
			m.log.Warn("log epoch changed: the node stopped without closing and may have lost log entries peers had read")
		}
		for m.epoch == 0 {
			var r [8]byte
			rand.Read(r[:])
			m.epoch = binary.BigEndian.Uint64(r[:]) >> 1
		}
		if err := m.store.PutMetaSync(metaEpoch, binary.BigEndian.AppendUint64(nil, m.epoch)); err != nil {
			return err
		}
	}
	return m.store.PutMetaSync(metaOpen, []byte{1})
}

// peer returns the state of p, creating it. m.mu must be held.
func (m *Mesh) peer(p peer.ID) *peerState {
	ps := m.peers[p]
	if ps == nil {
		ps = &peerState{id: p, mid: m.midOf(p)}
		m.peers[p] = ps
		m.pids[ps.mid] = p
	}
	return ps
}

// midOf is p's ID in the replication policy: its node ID.
func (m *Mesh) midOf(p peer.ID) mesh.PeerID { return mesh.PeerID(m.cfg.NodeIDOf(p)) }

// linkUp runs when a connection to p opens, at addr.
func (m *Mesh) linkUp(p peer.ID, addr string) {
	up, link := false, uint64(0)
	m.step(func() {
		ps := m.peer(p)
		if ps.connected {
			return
		}
		up = true
		ps.connected = true
		ps.link++
		link = ps.link
		m.linked.Add(1)
		now := time.Now()
		ps.downSince = time.Time{}
		ps.versionLogged = nil // it may have been upgraded
		ps.addr = addr
		d := m.wanted[p]
		if d == nil {
			d = &dialState{}
			m.wanted[p] = d
		}
		d.upSince = now
		m.peersDirty = true
		m.r.LinkUp(ps.mid, now)
	})
	if !up {
		return
	}
	m.log.Info("peer connected", "peer", p.String(), "addr", addr)
	m.poke(m.ackSignal) // opens the push stream, and the ack stream, on which the peer can ask
	m.goRun(func() { m.exchangePeers(p, link) })
}

// linkDown runs when a connection to p closes.
func (m *Mesh) linkDown(p peer.ID) {
	down := false
	m.step(func() {
		ps := m.peers[p]
		// Asked under m.mu: a second connection opening meanwhile finds
		// the peer still connected in linkUp and returns, so this must see
		// it.
		if ps == nil || !ps.connected || m.tr.Connected(p) {
			return
		}
		down = true
		ps.connected = false
		m.linked.Add(-1)
		ps.downSince = time.Now()
		m.r.LinkDown(ps.mid, ps.downSince)
		if d := m.wanted[p]; d != nil {
			d.linkDown(ps.downSince)
		}
		if ps.ackStream != nil {
			ps.ackStream.Reset()
			ps.ackStream, ps.ackW, ps.ackReset = nil, nil, false
		}
		ps.closePush()
	})
	if !down {
		return
	}
	m.log.Info("peer disconnected", "peer", p.String())
	m.broadcastAck()
}

// misbehaved disconnects a peer that sent something malformed or against
// the protocol, and keeps it out for a minute.
func (m *Mesh) misbehaved(p peer.ID, what string, err error) {
	m.st.badMessages.Add(1)
	m.log.Warn("disconnecting misbehaving peer", "peer", p.String(), "in", what, "err", err)
	m.tr.Ban(p, time.Minute)
}

func (m *Mesh) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// antiEntropy asks the replicator for a round every sync interval: it
// starts a Merkle session with a peer of its choice (Ready.Sessions),
// unless the last one runs or catch-ups hold it back.
func (m *Mesh) antiEntropy() {
	interval := m.SyncInterval()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.intervalSignal: // CONFIG SET sync-interval
			interval = m.SyncInterval()
			t.Reset(interval)
			continue
		case <-t.C:
		}
		root := m.local.MerkleRoot()
		m.step(func() { m.r.Round(root) })
	}
}

func randIntN(n int) int {
	var b [8]byte
	rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// Records from peers are merged in chunks, each one step of the write path,
// so that clients' writes take turns with a long catch-up.
const (
	applyChunk      = 256
	applyChunkBytes = 1 << 20
)

// apply merges records from peer from through the node's write path, in
// chunks.
func (m *Mesh) apply(from peer.ID, recs []merkle.Record) (int, error) {
	return m.applyAt(m.asideHorizon(from), recs)
}

// applyLog is apply for entries of from's log, read in a catch-up: each
// holds its key's record as that write left it, which a cursor that lags
// may bring long after this node removed what it held and collected the
// trace or tombstone. They pass through record.Fresh at the fresh horizon
// (mesh.Stability.FreshHorizon, which the simulator runs too). The
// simulator found the old field of a replaced HSET coming back this way.
func (m *Mesh) applyLog(from peer.ID, recs []merkle.Record) (int, error) {
	m.mu.Lock()
	fresh := m.r.FreshHorizon()
	m.mu.Unlock()
	return m.applyAt(max(m.asideHorizon(from), fresh), recs)
}

// applyAt merges records, in chunks, setting aside writes up to horizon
// this node no longer holds. Records mesh.Admit refuses are left out and
// the rest merged; the error is then one *mesh.RefusedError for them all.
func (m *Mesh) applyAt(horizon hlc.Timestamp, recs []merkle.Record) (int, error) {
	total, done := 0, 0
	var refused *mesh.RefusedError
	for len(recs) > 0 {
		n, size := 0, 0
		for n < len(recs) && n < applyChunk && (n == 0 || size+len(recs[n].Key)+len(recs[n].Payload) <= applyChunkBytes) {
			size += len(recs[n].Key) + len(recs[n].Payload)
			n++
		}
		applied, err := m.local.ApplyRemote(m.ctx, recs[:n], horizon)
		total += applied
		if r, ok := errors.AsType[*mesh.RefusedError](err); ok {
			if refused == nil {
				refused = &mesh.RefusedError{First: done + r.First, Err: r.Err, AdmitAt: r.AdmitAt}
			}
			refused.Count += r.Count
		} else if err != nil {
			return total, err
		}
		recs, done = recs[n:], done+n
	}
	if refused != nil {
		return total, refused
	}
	return total, nil
}
