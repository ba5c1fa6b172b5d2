// Package node is one redmesh node: the write path (apply), the Redis
// commands, and the RESP server that clients talk to.
//
// Every mutation, whether a client's command or a peer's push, log catch-up
// or Merkle repair, ends in Node.apply inside a keyspace transaction: merge
// with the record in memory, then publish and log the result if it won.
package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Node is a running redmesh node.
type Node struct {
	cfg    Config
	log    *slog.Logger
	wal    *wal.Store   // the write-ahead log and metadata
	db     *keyspace.DB // the keyspace
	clock  *hlc.Clock
	merkle *merkleIndex
	key    crypto.PrivKey
	peerID peer.ID
	id     record.NodeID
	// counterID is this run's identity for counter increments
	// (record.CounterID): a run after a crash that lost increments never
	// continues the old run's counts.
	counterID record.NodeID
	started   time.Time
	runID     string
	// clockOffset is ClockOffset, which MESH CLOCKOFFSET may change.
	clockOffset atomic.Int64

	ln       net.Listener
	clients  sync.Map                     // uint64 → *client
	loops    atomic.Pointer[[]*eventLoop] // serve the clients, where the platform has them (Serve)
	nclients atomic.Int64
	clientID atomic.Uint64
	stats    stats
	cmds     *commandStats               // per command and per error: see cmdstats.go
	live     liveSettings                // what CONFIG SET changes: see live.go
	mesh     atomic.Pointer[gossip.Mesh] // nil until started, or without a mesh
	setAside setAside                    // peers' records kept out by record.Fresh
	// commitHook is called after each commit (OnCommit, local.go).
	commitHook atomic.Pointer[func([]wal.Entry)]
	infoHook   atomic.Pointer[func() []string] // INFO's Bridge section (SetInfo, local.go)
	// Memory against --maxmemory (memory.go): the heap beside the
	// keyspace's table, sampled; the limit (CONFIG SET changes it); and
	// whether the last sample was over it.
	memOverhead     atomic.Uint64
	maxMemory       atomic.Int64
	serveStale      atomic.Bool    // --serve-stale-data (bootstrap.go)
	rememberedPeers atomic.Bool    // the store remembers peers from an earlier run: see collect.go
	watching        watching       // the keys clients WATCH, which collection leaves be
	blocked         blockedClients // clients waiting in blocking commands (blocking.go)
	wasOver         atomic.Bool
	// tracesPending says a typed key may hold removal traces for the
	// collector: set by a write that left one, or by a pass that could not
	// collect one yet (collect.go).
	tracesPending atomic.Bool

	stop  chan struct{} // closed once the clients are gone, to stop the background work
	wg    sync.WaitGroup
	conns connTracker   // the goroutines serving clients: see shutdown.go
	shut  shutdownState // see shutdown.go
}

type stats struct {
	connections atomic.Uint64
	expiredKeys atomic.Uint64
	collected   atomic.Uint64 // records collection removed or rewrote (collect.go), sweeps not counted
	// sweptSinceRelease counts the keys swept since the sweep last returned
	// memory to the OS (collect.go).
	sweptSinceRelease atomic.Uint64
	panics            atomic.Uint64
	memoryPeak        atomic.Uint64 // the highest used_memory INFO has seen
	// closed holds the counts of the connections that closed; the open
	// ones keep their own. countsMu orders a closing connection's move of
	// its counts here against INFO's sum, which would otherwise count them
	// twice or not at all for a moment.
	closed   counts
	countsMu sync.Mutex
}

// counts are the command and keyspace counters INFO reports, kept per
// connection: one counter for the node, updated by every command, has two
// threads serving clients take turns at its cache line (without the
// counters at all GET -P 16 did about 5% more; kept per connection, about
// half of that, within the noise).
type counts struct {
	commands, hits, misses atomic.Uint64
}

func (c *counts) add(o *counts) {
	c.commands.Add(o.commands.Load())
	c.hits.Add(o.hits.Load())
	c.misses.Add(o.misses.Load())
}

func (c *counts) reset() {
	c.commands.Store(0)
	c.hits.Store(0)
	c.misses.Store(0)
}

// counts sums the counts of every connection, open or closed.
func (n *Node) counts() *counts {
	n.stats.countsMu.Lock()
	defer n.stats.countsMu.Unlock()
	sum := &counts{}
	sum.add(&n.stats.closed)
	n.clients.Range(func(_, v any) bool {
		sum.add(&v.(*client).counts)
		return true
	})
	return sum
}

// CommandsProcessed is how many commands the node has answered, INFO's
// total_commands_processed.
func (n *Node) CommandsProcessed() uint64 { return n.counts().commands.Load() }

const metaHighWater = "hlc-high-water"

// Open opens the node's storage and identity and binds its RESP listener; Serve
// then serves clients.
func Open(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	mi, err := newMerkleIndex()
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, started: time.Now(), stop: make(chan struct{}), merkle: mi, runID: newRunID(), cmds: newCommandStats()}
	n.clockOffset.Store(int64(cfg.ClockOffset))
	n.live.init(&cfg)
	n.conns.init()
	n.shut.done = make(chan struct{})
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	opening := time.Now()
	store, err := wal.Open(wal.Options{
		Dir:          cfg.DataDir,
		Fsync:        cfg.Fsync,
		RetainBytes:  cfg.WALRetainBytes,
		RetainAge:    cfg.WALRetainAge,
		MemoryBudget: cfg.MemoryBudget,
		Logger:       cfg.Logger,
		Now:          n.now,
		Stable:       n.logStable,
	})
	if err != nil {
		return nil, err
	}
	n.wal = store
	n.log.Info("store opened", "took", time.Since(opening).Round(time.Millisecond))
	n.rememberedPeers.Store(gossip.RememberedPeers(store))
	db, err := keyspace.Open(keyspace.Options{Log: store, Logger: cfg.Logger, OnCommit: n.committed, OnLocal: n.merkle.moved})
	if err != nil {
		store.Close()
		return nil, err
	}
	n.db = db
	n.maxMemory.Store(cfg.MaxMemory)
	n.serveStale.Store(!cfg.StaleDataRefused)
	n.sampleMemory()
	// The Merkle index is rebuilt while the mesh starts and links: a
	// rejoining node's first catch-up is asked for and read meanwhile, and
	// only its apply waits for the index (merkleIndex.wait).
	type rebuilt struct {
		took time.Duration
		err  error
	}
	done := make(chan rebuilt, 1)
	go func() {
		took, err := n.merkle.rebuild(db.Table())
		done <- rebuilt{took, err}
	}()
	fail := func(err error) (*Node, error) {
		n.merkle.wait() // the rebuild reads the table
		db.Close()
		store.Close()
		return nil, err
	}
	if err := n.init(); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fail(fmt.Errorf("listen for RESP clients: %w", err))
	}
	n.ln = ln
	if err := n.startMesh(); err != nil {
		ln.Close()
		return fail(err)
	}
	// Clients write only once the index is whole.
	r := <-done
	if r.err != nil {
		n.stopMesh()
		ln.Close()
		return fail(r.err)
	}
	n.log.Info("merkle index rebuilt", "keys", db.KeyCount(), "took", r.took.Round(time.Millisecond))
	return n, nil
}

func (n *Node) init() error {
	key, err := loadIdentity(n.wal)
	if err != nil {
		return err
	}
	n.key = key
	if n.peerID, err = peer.IDFromPrivateKey(key); err != nil {
		return fmt.Errorf("derive peer ID: %w", err)
	}
	n.id = NodeIDOf(n.peerID)

	var hw hlc.Timestamp
	if b, ok, err := n.wal.GetMeta(metaHighWater); err != nil {
		return err
	} else if ok && len(b) == 8 {
		hw = hlc.Timestamp(binary.BigEndian.Uint64(b))
	}
	n.clock = hlc.NewClock(hlc.Config{
		Now:       n.now,
		MaxSkew:   n.cfg.MaxClockSkew,
		HighWater: hw,
		Persist: func(t hlc.Timestamp) error {
			return n.wal.PutMetaSync(metaHighWater, binary.BigEndian.AppendUint64(nil, uint64(t)))
		},
	})
	// The clock never repeats a timestamp, across restarts too: one names
	// this run.
	start, err := n.clock.Now()
	if err != nil {
		return fmt.Errorf("clock: %w", err)
	}
	n.counterID = record.CounterID(n.id, uint64(start))
	return nil
}

// now is the node's wall clock.
func (n *Node) now() time.Time { return time.Now().Add(time.Duration(n.clockOffset.Load())) }

func (n *Node) nowMillis() int64 { return n.now().UnixMilli() }

// Addr is the RESP listener's address.
func (n *Node) Addr() net.Addr { return n.ln.Addr() }

// PeerID is the node's libp2p identity.
func (n *Node) PeerID() peer.ID { return n.peerID }

// ID is the node ID that tie-breaks this node's versions.
func (n *Node) ID() record.NodeID { return n.id }

// eventLoops are the loops serving the clients, once Serve has started.
func (n *Node) eventLoops() []*eventLoop {
	if p := n.loops.Load(); p != nil {
		return *p
	}
	return nil
}

// Serve serves RESP clients until ctx ends or Close is called.
func (n *Node) Serve(ctx context.Context) error {
	var loops []*eventLoop
	for range n.cfg.IOThreads {
		loop, err := newEventLoop(n)
		if err != nil {
			for _, l := range loops {
				l.close()
			}
			return err
		}
		if loop == nil {
			break
		}
		loops = append(loops, loop)
	}
	n.loops.Store(&loops)
	n.wg.Add(6 + len(loops))
	defer n.wg.Done()
	for _, l := range loops {
		go l.run()
	}
	accepted := 0     // connections, spread over the loops in turn
	n.conns.started() // a shutdown waits for the accept loop too
	defer n.conns.ended()
	go n.every(sweepInterval, n.sweepExpired)
	go n.collector()
	go n.every(100*time.Millisecond, n.sampleMemory)
	go n.every(100*time.Millisecond, n.sampleOps)
	go n.every(hlc.DefaultWindow/10, n.extendClock)
	go func() {
		select {
		case <-ctx.Done():
			n.ln.Close()
		case <-n.stop:
		}
	}()
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			n.log.Error("accept RESP client", "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		n.conns.started()
		accepted++
		if len(loops) == 0 || !loops[accepted%len(loops)].accept(nc) {
			go n.serveConn(nc)
		}
	}
}

// Close stops serving, closes client connections (the commands they run
// finish first) and closes the store after the writes already accepted,
// with a checkpoint. A shutdown under way is joined.
func (n *Node) Close() error {
	return n.shutdown(ShutdownOptions{Now: true}, shutdownMode{})
}

// apply is the one write path: merge rec into key's record, and if it wins,
// store and log the result in the transaction tx. Local commands, and later
// peer pushes, log catch-up and Merkle repairs, all come through here (or
// through put, the same merge for a local write of the value register).
func (n *Node) apply(tx *keyspace.Tx, key []byte, rec record.Record) (record.Record, bool, error) {
	out, changed, err := tx.Apply(key, rec)
	n.noteTraces(out, err)
	return out, changed, err
}

// noteTraces tells collection that a write left traces to collect.
func (n *Node) noteTraces(out record.Record, err error) {
	if err == nil && out.Typed.HasTraces() {
		n.tracesPending.Store(true)
	}
}

// newVersion stamps a local write.
func (n *Node) newVersion() (record.Version, error) { return n.newVersions(1) }

// newVersions stamps k local writes at once: the first version is returned,
// the others follow it, one timestamp apart (hlc.Clock.NowN).
func (n *Node) newVersions(k int) (record.Version, error) {
	ts, err := n.clock.NowN(k)
	if err != nil {
		return record.Version{}, err
	}
	return record.Version{TS: ts, Node: n.id}, nil
}

// every runs fn every d until the node closes.
func (n *Node) every(d time.Duration, fn func()) {
	defer n.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// extendClock persists the clock's next high-water mark ahead of time (see
// hlc.Clock.Extend): the synced write it takes, a millisecond on a quiet
// node and tens under load, would otherwise hold up every write once per
// window, waiting in the middle of a batch.
func (n *Node) extendClock() {
	if err := n.clock.Extend(); err != nil && !errors.Is(err, wal.ErrClosed) {
		n.log.Error("persist the clock's high-water mark", "err", err)
	}
}
