package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/merkle"
	"github.com/redmesh/redmesh/mesh"
)

// maxRootAt bounds the frame holding a peer's mesh.RootAt.
const maxRootAt = 48

// Merkle sessions over /redmesh/merkle/4 (/redmesh/merkle/3 with a peer of
// an earlier version, its records in that version's encoding:
// versions.go): each frame holds one encoded
// merkle.Message (merkle.Marshal), in the order the sessions produce them.
// Once its session is done each side sends one last frame, a mesh.RootAt
// (its Merkle root and its log's head), so both learn the other's root for
// the peer choice, and a node whose root is the peer's moves its cursor in
// the peer's log to that head.

// runSession runs one reconciliation with p as initiator and reports
// whether it completed.
func (m *Mesh) runSession(p peer.ID, fallback bool) bool {
	// One session initiated at a time: two sessions repairing the same
	// keys from two peers would only move them twice.
	m.sessionMu.Lock()
	defer m.sessionMu.Unlock()
	start := time.Now()
	res, err := m.initiate(p)
	m.st.sessions.Add(1)
	if err != nil {
		m.st.sessionsFailed.Add(1)
		if m.ctx.Err() == nil {
			m.log.Debug("merkle session failed", "peer", p.String(), "err", err)
		}
		return false
	}
	if res.Equal {
		m.st.sessionsEqual.Add(1)
	} else {
		m.log.Debug("merkle session", "peer", p.String(), "pulled", len(res.Pulled), "pushed", len(res.Pushed),
			"fallback", fallback, "took", time.Since(start).Round(time.Millisecond))
	}
	return true
}

func (m *Mesh) initiate(p peer.ID) (merkle.Result, error) {
	s, enc, err := m.open(m.ctx, p, merkleIDs)
	if err != nil {
		return merkle.Result{}, err
	}
	defer s.Close()
	sess, err := merkle.NewInitiator(merkle.Config{Shape: merkle.DefaultShape, Local: m.merkleLocal(enc), Salt: randUint64()})
	if err != nil {
		s.Reset()
		return merkle.Result{}, err
	}
	out, err := sess.Start()
	if err != nil {
		s.Reset()
		return merkle.Result{}, err
	}
	if err := m.drive(s, sess, out); err != nil {
		return merkle.Result{}, err
	}
	return sess.Result(), nil
}

// serveMerkle is the responder side of a session a peer opened.
func (m *Mesh) serveMerkle(s Stream) {
	defer s.Close()
	select {
	case m.merkleSlots <- struct{}{}:
		defer func() { <-m.merkleSlots }()
	default:
		s.Reset() // busy: the peer tries again next round
		return
	}
	m.mu.Lock()
	accept := false
	if ps := m.peers[s.Remote()]; ps != nil {
		accept = m.r.AcceptSession(ps.mid)
	}
	m.mu.Unlock()
	if !accept {
		s.Reset() // not now (mesh.Replicator.AcceptSession): the peer tries again next round
		return
	}
	sess, err := merkle.NewResponder(merkle.Config{Shape: merkle.DefaultShape, Local: m.merkleLocal(encodingOf(s.Protocol()))})
	if err != nil {
		s.Reset()
		return
	}
	if err := m.drive(s, sess, merkle.Output{}); err != nil && m.ctx.Err() == nil {
		m.log.Debug("merkle session (responder) failed", "peer", s.Remote().String(), "err", err)
	}
}

// drive sends first's messages, then steps the session with every frame
// received until it is done, merging the records that arrive; then the
// roots are exchanged. A session in which a record was refused
// (mesh.Admit) runs to its end but reports an error.
func (m *Mesh) drive(s Stream, sess *merkle.Session, first merkle.Output) error {
	p := s.Remote()
	r, w := streamIO(s)
	var buf bytes.Buffer
	var enc []byte
	send := func(msgs []merkle.Message) error {
		for _, msg := range msgs {
			enc = merkle.AppendMessage(enc[:0], msg)
			if err := writeFrame(w, enc); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	s.SetDeadline(time.Now().Add(ioTimeout))
	if err := send(first.Msgs); err != nil {
		s.Reset()
		return err
	}
	refused := 0 // records mesh.Admit refused: the repair is not complete
	for !sess.Done() {
		s.SetDeadline(time.Now().Add(ioTimeout))
		msg, err := readMessage(m, p, "merkle session", r, maxFrame, &buf, merkle.Unmarshal)
		if err != nil {
			s.Reset()
			return err
		}
		out, err := sess.Step(msg)
		if len(out.Records) > 0 {
			cerr := checkRecords(out.Records)
			if cerr == nil {
				cerr = checkEncoding(out.Records, m.wireEncoding)
			}
			if cerr != nil {
				m.misbehaved(p, "merkle session", cerr)
				s.Reset()
				return cerr
			}
			n, aerr := m.apply(p, out.Records)
			m.st.keysRepaired.Add(uint64(n))
			if r, ok := errors.AsType[*mesh.RefusedError](aerr); ok {
				refused += r.Count
			} else if aerr != nil {
				s.Reset()
				return aerr
			}
		}
		if serr := send(out.Msgs); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			if errors.Is(err, merkle.ErrProtocol) || errors.Is(err, merkle.ErrMalformed) {
				m.misbehaved(p, "merkle session", err)
			}
			s.Reset()
			return err
		}
	}
	// Roots, for the choice of the next session's peer, each with its log's
	// head and last local write (read before the root): a peer whose root
	// is ours moves our cursor in its log there (mesh.Table.ObserveRootAt).
	head, own := m.rootHead()
	ours := mesh.RootAt{Epoch: m.epoch, Head: head, Root: m.local.MerkleRoot(), Own: own}
	if err := writeFrame(w, mesh.AppendRootAt(enc[:0], ours)); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	rootAt, err := readMessage(m, p, "merkle session", r, maxRootAt, &buf, decodeRootAt)
	if err != nil {
		return fmt.Errorf("peer's root: %w", err)
	}
	// The replicator takes the roots: a peer whose root is ours moves our
	// cursor in its log to its head, and writes of its own we still lack
	// are read from its log.
	m.step(func() {
		if ps := m.peers[p]; ps != nil {
			ps.lastSync = time.Now()
			m.r.Step(ps.mid, mesh.RootsMsg{Theirs: *rootAt, Ours: ours.Root})
		}
	})
	m.synced.Store(true)
	if refused > 0 {
		// Not completed: a fallback session must not count the peer's log
		// as applied up to its head.
		return fmt.Errorf("%d records refused for their clock", refused)
	}
	return nil
}
