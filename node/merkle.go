package node

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// merkleIndex is the node's Merkle tree over its keyspace. The keyspace's
// commit hook moves each changed key's entry from its old versions to its new
// ones (O(1) per write), in commit order, so the tree never reflects a write
// that did not commit. It lives in memory and is rebuilt from the keyspace
// at start-up (see bench/RESULTS.md for the time).
type merkleIndex struct {
	mu   sync.Mutex
	tree *merkle.Tree
	// built is closed once rebuild has filled the tree. The rebuild runs
	// while the mesh starts, links and reads its peers' logs: what would
	// write to the keyspace or read the tree waits for it (wait), and the
	// root reads 0 until then, which no tree has.
	built chan struct{}
	// buckets holds a commit's buckets, for the tree's prefetch; under mu.
	buckets []uint32
}

func newMerkleIndex() (*merkleIndex, error) {
	tree, err := merkle.NewTree(merkle.DefaultShape)
	if err != nil {
		return nil, fmt.Errorf("merkle tree: %w", err)
	}
	return &merkleIndex{tree: tree, built: make(chan struct{})}, nil
}

// wait returns once the tree holds the keyspace loaded at start-up. A write
// to the keyspace must not come sooner: the rebuild, reading the table,
// could count it, and the commit hook then count it again.
func (m *merkleIndex) wait() { <-m.built }

// committed is the keyspace's OnCommit hook.
func (m *merkleIndex) committed(entries []wal.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buckets = m.buckets[:0]
	for _, e := range entries {
		m.buckets = append(m.buckets, m.tree.Shape().BucketOfHash(e.Hash)) // Hash is merkle.KeyHash
	}
	m.tree.Prefetch(m.buckets)
	var prev, now [3]merkle.Version
	for i, e := range entries {
		m.tree.UpdateIn(m.buckets[i], e.Key, mesh.AppendMerkleVersions(prev[:0], e.Prev), mesh.AppendMerkleVersions(now[:0], e.Now))
	}
	if cap(m.buckets) > 1<<16 {
		m.buckets = nil // a bulk commit's: not kept for every commit after
	}
}

// moved is the keyspace's OnLocal hook: a sweep or a collection moved key's
// entry from its old versions to its new ones (none once removed). The
// digest is a sum, so it need not be ordered with the commits around it.
func (m *merkleIndex) moved(key []byte, prev, now [3]record.Version) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var p, n [3]merkle.Version
	m.tree.Update(key, mesh.AppendMerkleVersions(p[:0], prev), mesh.AppendMerkleVersions(n[:0], now))
}

// rebuild fills the tree from every key's versions, once.
func (m *merkleIndex) rebuild(t *keyspace.Table) (time.Duration, error) {
	defer close(m.built)
	start := time.Now()
	// Hashing every key is the work: split it across the cores, one tree
	// each, and add the trees' leaves (a leaf digest is a sum).
	trees := make([]*merkle.Tree, runtime.GOMAXPROCS(0))
	for i := range trees {
		t, err := merkle.NewTree(m.tree.Shape())
		if err != nil {
			return 0, err
		}
		trees[i] = t
	}
	t.Each(len(trees), func(w int, key []byte, rec record.Record) {
		trees[w].Update(key, nil, mesh.MerkleVersions(rec.Versions()))
	})
	tree := trees[0]
	for _, t := range trees[1:] {
		for b := range uint32(tree.Shape().Leaves()) {
			tree.SetLeaf(b, tree.Leaf(b)+t.Leaf(b))
		}
	}
	m.mu.Lock()
	m.tree = tree
	m.mu.Unlock()
	return time.Since(start), nil
}

// root is the tree's root, or 0 while it is being built.
func (m *merkleIndex) root() uint64 {
	select {
	case <-m.built:
	default:
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tree.Root()
}

// MerkleRoot is the root digest of the node's Merkle tree: 0, which no
// tree's root is, while it is built at start-up.
func (n *Node) MerkleRoot() uint64 { return n.merkle.root() }

// MerkleLocal is the node's side of a reconciliation session.
func (n *Node) MerkleLocal() merkle.Local { return merkleLocal{n} }

type merkleLocal struct{ n *Node }

func (l merkleLocal) Digest(level int, idx uint32) uint64 {
	m := l.n.merkle
	m.wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tree.Digest(level, idx)
}

func (l merkleLocal) AppendEntries(dst []merkle.Entry, bucket uint32) ([]merkle.Entry, error) {
	// The keyspace's hash groups are merkle.KeyHash's: a bucket's keys
	// are a few chains.
	lo, hi := merkle.DefaultShape.BucketRange(bucket)
	l.n.db.Table().EachInHashRange(lo, hi, func(key []byte, rec record.Record) bool {
		if vs := mesh.MerkleVersions(rec.Versions()); vs != nil {
			dst = append(dst, merkle.Entry{Key: bytes.Clone(key), Versions: vs})
		}
		return true
	})
	return dst, nil
}

func (l merkleLocal) Payload(key []byte) ([]byte, error) {
	rec := l.n.db.Get(key)
	if !rec.Written() {
		return nil, nil
	}
	return record.Encode(rec), nil
}

// ApplyRemote merges records received from a peer through the one write
// path. A record carrying a version further ahead of this node's clock than
// --max-clock-skew is refused and counted, never applied: one bad clock must
// not win every conflict. The others are merged, and the error is then a
// *mesh.RefusedError, so that the caller does not count the batch as
// applied. Writes up to horizon (0: none) that this node no longer holds
// are set aside (record.Fresh): the mesh collected them, and the peer, a
// forgotten member back, would bring them back. It returns how many
// records changed something.
func (n *Node) ApplyRemote(ctx context.Context, recs []merkle.Record, horizon hlc.Timestamp) (applied int, err error) {
	n.merkle.wait()
	type decoded struct {
		key []byte
		rec record.Record
	}
	batch := make([]decoded, 0, len(recs))
	var refused *mesh.RefusedError
	for i, r := range recs {
		rec, err := record.Decode(r.Payload)
		if err != nil {
			return 0, fmt.Errorf("record for %q from peer: %w", r.Key, err)
		}
		if err := mesh.Admit(n.clock, rec); err != nil {
			if refused == nil {
				refused = &mesh.RefusedError{First: i, Err: fmt.Errorf("key %q: %w", r.Key, err), AdmitAt: mesh.AdmitAt(n.clock, rec)}
			}
			refused.Count++
			continue
		}
		batch = append(batch, decoded{r.Key, rec})
	}
	if refused != nil {
		// One line per batch: a peer whose clock runs ahead sends every one of
		// its writes this way, and a line each flooded the log (tens of
		// thousands in a chaos run); INFO counts them all (hlc_refused_skew).
		n.log.Warn("refused remote records", "count", refused.Count, "first", refused.Err)
	}
	collectTo := hlc.Timestamp(n.collectHorizon())
	now := n.nowMillis()
	err = n.db.Update(ctx, func(tx *keyspace.Tx) error {
		applied = 0
		for _, d := range batch {
			if collectedAlready(tx, d.key, d.rec, collectTo, now) {
				continue
			}
			if collectTo != 0 && d.rec.Typed.HasTraces() {
				// Traces this node has collected (or would at its next
				// pass): a peer whose stable time lags behind still holds
				// them, and taking them back at every Merkle session
				// until it collects them too kept the two nodes' roots
				// apart and made each session repair keys that differed
				// in nothing a client sees.
				d.rec = d.rec.WithoutTracesUpTo(collectTo)
			}
			_, changed, err := n.apply(tx, d.key, n.fresh(tx, d.key, d.rec, horizon))
			if err != nil {
				return err
			}
			if changed {
				applied++
			}
		}
		n.blocked.serve(tx, 0) // before any client's next command, as a local push does
		return nil
	})
	if err == nil && refused != nil {
		err = refused
	}
	return applied, err
}

// collectedAlready reports whether rec, a peer's record of a key this node
// does not hold, is one collection would take out at once (a tombstone, a
// sweep, at or before the horizon): a peer whose stable time lags behind
// sends it back by Merkle repair, and storing it only to collect it again
// would churn while their stable times differ.
func collectedAlready(tx *keyspace.Tx, key []byte, rec record.Record, horizon hlc.Timestamp, now int64) bool {
	if horizon == 0 || rec.Exists() && !rec.Expired(now) {
		return false
	}
	if _, gone, _ := rec.Collect(horizon, now); !gone {
		return false
	}
	cur, _ := tx.Peek(key)
	return !cur.Written()
}
