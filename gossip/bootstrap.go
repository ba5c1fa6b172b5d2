package gossip

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// Bootstrap over /redmesh/snapshot/2 (/redmesh/snapshot/1 with a peer of
// an earlier version, in its encoding: versions.go): a node that holds nothing streams a
// peer's keyspace (mesh.SnapshotRequest, then mesh.SnapshotChunk frames in
// key-hash order until Done), applying each chunk through the one write
// path, then reads the peer's log from where the snapshot began. The
// policy (when to bootstrap, where to resume, what the cursor becomes) is
// mesh's; this file moves the bytes.

const (
	// snapshotChunkBytes is the record bytes asked per chunk by default: one write-path
	// step applies a chunk (about 8,000 keys of 100 bytes), so a client's
	// write waits for at most a few milliseconds of it.
	snapshotChunkBytes = 1 << 20
	// The server bounds what a receiver may ask.
	minSnapshotChunk = 4 << 10
	maxSnapshotChunk = 8 << 20
	// snapshotBuffers: chunks in memory on the receiving side at once (one
	// being read, one queued, snapshotApplying being applied).
	snapshotBuffers  = 2 + snapshotApplying
	snapshotApplying = 2
	// maxSnapshotStreams bounds the snapshots a node serves at once.
	maxSnapshotStreams = 2
	maxSnapshotRequest = 64
	// bootstrapSaveEvery: how often the progress is saved (each save syncs
	// the log, so that the records it covers are durable first).
	bootstrapSaveEvery = time.Second
	// syncLogEvery: how often a long sync logs its progress.
	syncLogEvery  = 5 * time.Second
	metaBootstrap = "mesh-bootstrap"
)

// Snapshotter is what serving a snapshot reads from the node.
type Snapshotter interface {
	// SnapshotRange visits keys in key-hash order from `from` on, as
	// keyspace.Table.SnapshotRange does.
	SnapshotRange(from uint64, fn func(h uint64, key []byte, rec record.Record) bool) (next uint64, done bool)
	// SnapshotSize estimates the whole snapshot: keys and bytes.
	SnapshotSize() (keys, bytes int64)
	// Empty reports whether the node holds no key at all (not even a
	// tombstone).
	Empty() bool
}

// bootstrap streams p's snapshot and applies it. It returns nil once the
// snapshot is complete (p's cursor is then where it began).
func (m *Mesh) bootstrap(p peer.ID, mid mesh.PeerID) error {
	m.mu.Lock()
	req := m.r.Table().SnapshotRequestFor(mid, uint32(cmp.Or(m.cfg.SnapshotChunkBytes, snapshotChunkBytes)))
	m.mu.Unlock()
	m.st.bootstraps.Add(1)
	s, _, err := m.open(m.ctx, p, snapshotIDs)
	if err != nil {
		return err
	}
	defer s.Close()
	decode := carrying(m.wireEncoding, decodeSnapshotChunk, func(c *mesh.SnapshotChunk) []merkle.Record { return c.Records })
	r, w := streamIO(s)
	if err := writeFrame(w, mesh.AppendSnapshotRequest(nil, req)); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	m.log.Info("bootstrapping: streaming the peer's keyspace", "peer", p.String(), "from_hash", fmt.Sprintf("%016x", req.From))

	// A reader decodes and checks chunks while the previous one is applied;
	// snapshotBuffers bound what is in memory.
	type item struct {
		c   *mesh.SnapshotChunk
		buf *bytes.Buffer
	}
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	free := make(chan *bytes.Buffer, snapshotBuffers)
	for range snapshotBuffers {
		free <- new(bytes.Buffer)
	}
	chunks := make(chan item)
	var rerr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(chunks)
		for {
			var buf *bytes.Buffer
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			chunk, err := readMessage(m, p, "snapshot", r, maxFrame, buf, decode)
			if err != nil {
				rerr = err
				return
			}
			select {
			case chunks <- item{chunk, buf}:
			case <-ctx.Done():
				return
			}
			if chunk.Done {
				return
			}
		}
	})
	defer func() {
		cancel()
		s.Reset()
		wg.Wait()
	}()

	// Chunks hold disjoint keys and applying is a merge, so two are applied
	// at once: one is published while the last one's commit is written.
	// Progress is taken in stream order, each chunk once its records are
	// committed.
	type applying struct {
		item
		err chan error
	}
	inflight := make(chan applying, snapshotApplying-1)
	wg.Go(func() {
		defer close(inflight)
		for it := range chunks {
			a := applying{it, make(chan error, 1)}
			wg.Go(func() {
				var err error
				if len(it.c.Records) > 0 {
					_, err = m.local.ApplyRemote(ctx, it.c.Records, m.asideHorizon(p))
				}
				a.err <- err
			})
			select {
			case inflight <- a:
			case <-ctx.Done():
				return
			}
		}
	})

	start, lastSave, lastLog := time.Now(), time.Now(), time.Now()
	first := true
	var keys0 uint64
	for a := range inflight {
		c := a.c
		if err := <-a.err; err != nil {
			return fmt.Errorf("apply snapshot chunk: %w", err)
		}
		m.mu.Lock()
		done, err := m.r.Table().SnapshotChunk(mid, first, c)
		prog, _ := m.r.Table().BootstrapProgress()
		m.mu.Unlock()
		free <- a.buf
		if err != nil {
			m.misbehaved(p, "snapshot", err)
			return err
		}
		if first {
			keys0 = prog.Keys - uint64(len(c.Records))
			if prog.Keys > uint64(len(c.Records)) {
				m.log.Info("bootstrap resumes where it stopped", "peer", p.String(),
					"keys_done", prog.Keys-uint64(len(c.Records)), "from_hash", fmt.Sprintf("%016x", req.From))
			}
		}
		// The first chunk's progress is saved at once: it names the
		// stream's start, which a resumed bootstrap must keep.
		saveNow := first
		first = false
		m.st.bootstrapKeys.Add(uint64(len(c.Records)))
		now := time.Now()
		if done {
			// The records are in the log; the cursor that replaces the
			// progress is saved (synced) before the progress goes.
			m.saveCursors()
			if err := m.store.PutMetaSync(metaBootstrap, nil); err != nil && !errors.Is(err, wal.ErrClosed) {
				m.log.Error("clear bootstrap progress", "err", err)
			}
			took := now.Sub(start)
			m.log.Info("bootstrap complete: reading the peer's log from where the snapshot began", "peer", p.String(),
				"keys", prog.Keys, "bytes", prog.Bytes, "took", took.Round(time.Millisecond),
				"keys_per_s", int64(float64(prog.Keys-keys0)/max(took.Seconds(), 1e-3)), "log_from", prog.Start.Next)
			return nil
		}
		if saveNow || now.Sub(lastSave) >= bootstrapSaveEvery {
			lastSave = now
			m.saveBootstrap(prog)
		}
		if now.Sub(lastLog) >= syncLogEvery {
			lastLog = now
			m.log.Info("bootstrap progress", "peer", p.String(), "keys", prog.Keys, "keys_total", prog.KeysTotal,
				"bytes", prog.Bytes, "bytes_total", prog.BytesTotal, "percent", percent(prog.Bytes, prog.BytesTotal),
				"elapsed", now.Sub(start).Round(time.Second))
		}
	}
	if rerr == nil {
		rerr = io.ErrUnexpectedEOF
	}
	m.mu.Lock()
	prog, _ := m.r.Table().BootstrapProgress()
	m.mu.Unlock()
	if prog.Begun {
		m.saveBootstrap(prog)
	}
	return fmt.Errorf("snapshot stream: %w", rerr)
}

func percent(done, total uint64) int {
	if total == 0 {
		return 0
	}
	return int(min(100, done*100/total))
}

// saveBootstrap saves the bootstrap's progress, after the records it covers
// (the save syncs the log).
func (m *Mesh) saveBootstrap(b mesh.BootstrapState) {
	if err := m.store.PutMetaSync(metaBootstrap, mesh.AppendBootstrap(nil, b)); err != nil && !errors.Is(err, wal.ErrClosed) {
		m.log.Error("save bootstrap progress", "err", err)
	}
}

// loadBootstrap resumes an interrupted bootstrap after a restart.
func (m *Mesh) loadBootstrap() {
	b, ok, err := m.store.GetMeta(metaBootstrap)
	if err != nil || !ok || len(b) == 0 {
		return
	}
	st, err := mesh.DecodeBootstrap(b)
	if err != nil {
		m.log.Warn("bootstrap progress unreadable: starting it over", "err", err)
		st = mesh.BootstrapState{}
	}
	m.mu.Lock()
	m.r.Table().RestoreBootstrap(st)
	m.mu.Unlock()
	m.log.Info("an interrupted bootstrap will resume", "keys_done", st.Keys, "bytes_done", st.Bytes,
		"next_hash", fmt.Sprintf("%016x", st.Next))
}

// setServing marks p as a peer we stream a snapshot to: no Merkle session
// is started with it meanwhile.
func (m *Mesh) setServing(p peer.ID, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tp := m.r.Table().Get(m.midOf(p)); tp != nil {
		tp.Serving = on
	}
}

// serveSnapshot streams our keyspace to a bootstrapping peer.
func (m *Mesh) serveSnapshot(s Stream) {
	defer s.Close()
	p := s.Remote()
	select {
	case m.snapshotSlots <- struct{}{}:
		defer func() { <-m.snapshotSlots }()
	default:
		s.Reset() // busy: the peer tries again later
		return
	}
	enc := encodingOf(s.Protocol())
	r, w := streamIO(s)
	var in bytes.Buffer
	s.SetDeadline(time.Now().Add(ioTimeout))
	req, err := readMessage(m, p, "snapshot request", r, maxSnapshotRequest, &in, decodeSnapshotRequest)
	if err != nil {
		return
	}
	m.setServing(p, true)
	defer m.setServing(p, false)
	limit := int(min(max(req.MaxBytes, minSnapshotChunk), maxSnapshotChunk))
	// The log's head is read before the keyspace: every write the stream
	// may miss is at the head or after it, which the peer reads next.
	_, last := m.store.LogBounds()
	keys, size := m.local.SnapshotSize()
	c := mesh.SnapshotChunk{Epoch: m.epoch, Head: last + 1, KeysTotal: uint64(max(keys, 0)), BytesTotal: uint64(max(size, 0))}
	start, from, sent := time.Now(), req.From, 0
	var data, out []byte
	var offs [][3]int
	var recs []merkle.Record
	m.log.Info("serving a snapshot", "peer", p.String(), "from_hash", fmt.Sprintf("%016x", from), "keys", keys)
	for {
		data, offs, recs = data[:0], offs[:0], recs[:0]
		next, done := m.local.SnapshotRange(from, func(_ uint64, key []byte, rec record.Record) bool {
			k := len(data)
			data = append(data, key...)
			v := len(data)
			data = record.AppendBinaryAs(data, rec, enc)
			offs = append(offs, [3]int{k, v, len(data)})
			return len(data) < limit
		})
		for _, o := range offs {
			recs = append(recs, merkle.Record{Key: data[o[0]:o[1]:o[1]], Payload: data[o[1]:o[2]:o[2]]})
		}
		c.Next, c.Done, c.Records = next, done, recs
		out = mesh.AppendSnapshotChunk(out[:0], &c)
		if err := writeFrame(w, out); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			m.log.Debug("snapshot stream ended", "peer", p.String(), "err", err)
			return
		}
		sent += len(recs)
		if done {
			m.st.snapshotsServed.Add(1)
			m.log.Info("snapshot served", "peer", p.String(), "keys", sent, "took", time.Since(start).Round(time.Millisecond))
			// Wait for the peer to close: the last chunk must not be cut
			// off by our closing first.
			s.CloseWrite()
			io.Copy(io.Discard, io.LimitReader(r, 1))
			return
		}
		from = next
	}
}
