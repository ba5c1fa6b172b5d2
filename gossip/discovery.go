package gossip

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/redmesh/redmesh/mesh"
	"github.com/redmesh/redmesh/wal"
)

// Discovery: bootstrap peers (--peer), peers remembered in the store from
// earlier runs, peer exchange (/redmesh/peers/1: a node asks each linked
// peer for itself and the peers it is connected to, with their addresses,
// when the link comes up and again while it stays up), and mDNS on a LAN.
// Every peer found is dialled, and redialled with exponential backoff while
// it is not connected.

const (
	minBackoff = time.Second
	maxBackoff = time.Minute
	// maxBackoffLost caps the backoff instead for a peer whose stable link
	// closed less than lostRecently ago. Such a peer is mostly behind a
	// partition or restarting, and only a dial that gets through notices the
	// heal: under the full cap a mesh split for two minutes stayed split for
	// up to a minute after the network was whole (46 s in a chaos run).
	maxBackoffLost = 5 * time.Second
	lostRecently   = 10 * time.Minute
	// A linked peer is asked for its peers at once, then again after 1 s,
	// 2 s, 4 s ... up to every exchangeEvery: what it tells at the moment a
	// link comes up is only what it knew then. Two nodes that join a third
	// together are each listed to the other only by an answer that comes
	// after both linked it; asked once each, the earlier asker never hears
	// of the later one, and if the later one was handed no address for the
	// earlier (below), the two never link.
	exchangeEvery = 5 * time.Minute
)

// want adds p to the peers to keep connected. pinned peers (bootstrap) are
// kept whatever happens.
func (m *Mesh) want(p peer.ID, pinned bool) {
	if p == m.self {
		return
	}
	m.step(func() {
		if m.forgot[p] && !pinned {
			return // forgotten (stable.go): not dialled unless named by --peer
		}
		d := m.wanted[p]
		if d == nil {
			d = &dialState{}
			m.wanted[p] = d
			m.peersDirty = true
			m.r.Member(m.midOf(p)) // holds collection back until it reports
		}
		d.pinned = d.pinned || pinned
	})
}

// maintain dials wanted peers that are not connected (with backoff), has
// the replicator look at the push gaps and a wanted bootstrap, and saves
// the peer list and the catch-up cursors when they changed.
func (m *Mesh) maintain() {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	lastSave, lastCursorSave := time.Now(), time.Now()
	// The first pass runs at once: a restarted node redials its remembered
	// peers without waiting a tick, which is part of its rejoin time.
	for first := true; ; first = false {
		if !first {
			select {
			case <-m.ctx.Done():
				return
			case <-t.C:
			}
		}
		now := time.Now()
		m.mu.Lock()
		var dial []peer.ID
		for p, d := range m.wanted {
			if d.dialing || now.Before(d.next) || m.tr.Connected(p) {
				continue
			}
			d.dialing = true
			dial = append(dial, p)
		}
		dirty := m.peersDirty && now.Sub(lastSave) > 2*time.Second
		cursors := m.cursorsDirty && now.Sub(lastCursorSave) > 2*time.Second
		if cursors {
			m.cursorsDirty = false
		}
		m.mu.Unlock()
		// A push gone missing reads the origin's log; an interrupted
		// bootstrap goes on.
		m.step(func() { m.r.CheckGaps(now) })
		for _, p := range dial {
			m.goRun(func() { m.dial(p) })
		}
		if dirty {
			lastSave = now
			m.savePeers()
		}
		if cursors {
			lastCursorSave = now
			m.saveCursors() // syncs: the records they cover are durable first
		}
	}
}

// dial dials p, unless no address is known for it: then it looks again a
// second later, without backing off, as peer exchange or mDNS may bring one
// any time. Counted as failed dials, a peer first heard of with no address
// would back off to a minute, and be dialled up to a minute after an
// address came. (Connected is asked first: PeerAddrs waits for identify on
// a link.)
func (m *Mesh) dial(p peer.ID) {
	var err error
	nowhere := !m.tr.Connected(p) && len(m.tr.PeerAddrs(p)) == 0
	if !nowhere {
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		err = m.tr.Connect(ctx, p)
		cancel()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.wanted[p]
	if d == nil {
		return
	}
	d.dialing = false
	if nowhere {
		d.next = time.Now().Add(minBackoff)
		return
	}
	if err == nil {
		return // the backoff is reset once the link proves stable (linkDown)
	}
	d.failed(time.Now())
	m.log.Debug("dial peer", "peer", p.String(), "err", err, "retry_in", d.backoff)
}

// stableLink is how long a link must last for its end to reset the backoff.
// A peer that refuses us after the handshake (we are not on its allowlist)
// closes each link at once; without this we would redial it every tick.
const stableLink = 10 * time.Second

// failed schedules the next dial after a failure, backing off.
func (d *dialState) failed(now time.Time) {
	limit := maxBackoff
	if !d.lostAt.IsZero() && now.Sub(d.lostAt) < lostRecently {
		limit = maxBackoffLost
	}
	if d.backoff == 0 {
		d.backoff = minBackoff
	} else {
		d.backoff = min(2*d.backoff, limit)
	}
	d.next = now.Add(jitter(d.backoff))
}

// jitter is a random wait between half of d and d ("equal jitter"): nodes
// of a mesh that restarted together, or lost a peer together, do not
// redial in lockstep.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// linkDown schedules the redial after a link closed: within a second if it
// had been up a while (at a random moment, as every peer of a node that
// went away redials it), else as after a failed dial.
func (d *dialState) linkDown(now time.Time) {
	if now.Sub(d.upSince) >= stableLink {
		d.backoff, d.next, d.lostAt = 0, now.Add(rand.N(minBackoff)), now
		return
	}
	d.failed(now)
}

// The peer list (peer exchange and the remembered peers) is
//
//	uvarint count | per peer: uvarint len | peer ID | uvarint naddrs | per addr: uvarint len | multiaddr bytes
//
// The answer to peer exchange (answer) lists this node first, at the
// addresses it listens on, then the peers it is connected to; the list
// saved lists every wanted peer. A node learns where a peer that dialled
// it listens from identify, which libp2p runs once per connection, within
// 5 s: on a loaded machine it can fail, and then only the peer's own word,
// in its answer, says where it listens. Without it the node lists the peer
// with no address, and a node that learns of it there has nothing to dial.
func (m *Mesh) appendPeerList(dst []byte, answer bool) []byte {
	ids := []peer.ID{}
	if answer {
		ids = append(ids, m.self)
	}
	m.mu.Lock()
	for p := range m.wanted {
		if len(ids) == maxPeersListed {
			break
		}
		if answer && !m.tr.Connected(p) {
			continue
		}
		ids = append(ids, p)
	}
	m.mu.Unlock()
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, p := range ids {
		dst = appendBytes(dst, []byte(p))
		var addrs []ma.Multiaddr
		if p == m.self {
			addrs = m.listenAddrs()
		} else {
			addrs = m.tr.PeerAddrs(p)
		}
		var keep [][]byte
		for _, a := range addrs {
			if b := a.Bytes(); len(b) <= maxAddrLen && len(keep) < maxAddrsPerPeer {
				keep = append(keep, b)
			}
		}
		dst = binary.AppendUvarint(dst, uint64(len(keep)))
		for _, b := range keep {
			dst = appendBytes(dst, b)
		}
	}
	return dst
}

// listenAddrs are the addresses this node listens on, as it tells them.
func (m *Mesh) listenAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range m.tr.Addrs() {
		if ai, err := peer.AddrInfoFromString(s); err == nil {
			out = append(out, ai.Addrs...)
		}
	}
	return out
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

var errBadPeerList = errors.New("malformed peer list")

func decodePeerList(b []byte) ([]peer.AddrInfo, error) {
	d := &reader{b: b}
	n := d.uvarint()
	if n > maxPeersListed {
		return nil, errBadPeerList
	}
	var out []peer.AddrInfo
	for i := uint64(0); i < n && d.err == nil; i++ {
		id, err := peer.IDFromBytes(d.bytes(128))
		if d.err != nil {
			break
		}
		if err != nil {
			return nil, errBadPeerList
		}
		na := d.uvarint()
		if na > maxAddrsPerPeer {
			return nil, errBadPeerList
		}
		ai := peer.AddrInfo{ID: id}
		for j := uint64(0); j < na && d.err == nil; j++ {
			a, err := ma.NewMultiaddrBytes(d.bytes(maxAddrLen))
			if d.err == nil && err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		out = append(out, ai)
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadPeerList
	}
	return out, nil
}

type reader struct {
	b   []byte
	err error
}

func (d *reader) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadPeerList
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) bytes(limit uint64) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > limit || n > uint64(len(d.b)) {
		d.err = errBadPeerList
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

// servePeers answers peer exchange: this node and the peers it is
// connected to.
func (m *Mesh) servePeers(s Stream) {
	defer s.Close()
	s.SetDeadline(time.Now().Add(ioTimeout))
	w := bufio.NewWriter(s)
	if writeFrame(w, m.appendPeerList(nil, true)) == nil {
		w.Flush()
	}
}

// exchangePeers asks p for its peers and keeps them, at once and then
// again while the link (link, the peer's linkUp count) stays up, at
// growing intervals (exchangeEvery). A failed exchange is tried again
// within a minute: the stable time does not move until every linked peer
// has told us its peers (mesh.Stability).
func (m *Mesh) exchangePeers(p peer.ID, link uint64) {
	wait := time.Second
	for {
		most := exchangeEvery
		if !m.exchangePeersOnce(p) {
			most = time.Minute
		}
		t := time.NewTimer(wait)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, most)
		m.mu.Lock()
		ps := m.peers[p]
		up := ps != nil && ps.connected && ps.link == link
		m.mu.Unlock()
		if !up {
			return // the link closed; the next one asks anew
		}
	}
}

// exchangePeersOnce asks p for its peers once, and reports whether it had
// an answer. What p says of where it listens itself is kept as what
// identify would have told (p's loopback addresses only over loopback).
func (m *Mesh) exchangePeersOnce(p peer.ID) bool {
	s, err := m.tr.Open(m.ctx, p, protoPeers)
	if err != nil {
		return false
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(ioTimeout))
	var buf bytes.Buffer
	ais, err := readMessage(m, p, "peer exchange", bufio.NewReader(s), maxPeersFrame, &buf, decodePeerList)
	if err != nil {
		return false
	}
	m.mu.Lock()
	var linkAddr string
	if ps := m.peers[p]; ps != nil {
		linkAddr = ps.addr
	}
	m.mu.Unlock()
	for _, ai := range ais {
		if ai.ID == m.self || !m.tr.Allowed(ai.ID) {
			continue
		}
		addrs := ai.Addrs
		if ai.ID == p {
			addrs = reachableFrom(addrs, linkAddr)
		}
		m.tr.AddAddrs(ai.ID, addrs, true)
		m.want(ai.ID, false)
	}
	m.step(func() {
		if ps := m.peers[p]; ps != nil && ps.connected {
			m.r.Step(ps.mid, mesh.PeersMsg{}) // its members are ours: the stable time may move
		}
	})
	return true
}

// reachableFrom keeps of the addresses a peer says it listens on those
// identify would keep, given the link's remote address (link): over
// loopback every one; from a private address all but loopback; from a
// public one the public ones. The peer's 127.0.0.1 is not ours, and we
// would hand it on.
func reachableFrom(addrs []ma.Multiaddr, link string) []ma.Multiaddr {
	remote, err := ma.NewMultiaddr(link)
	switch {
	case err != nil, manet.IsIPLoopback(remote):
		return addrs
	case manet.IsPrivateAddr(remote):
		return ma.FilterAddrs(addrs, func(a ma.Multiaddr) bool { return !manet.IsIPLoopback(a) })
	case manet.IsPublicAddr(remote):
		return ma.FilterAddrs(addrs, manet.IsPublicAddr)
	}
	return addrs
}

// savePeers remembers the known peers and their addresses, so that a
// restart finds the mesh without --peer.
func (m *Mesh) savePeers() {
	b := m.appendPeerList(nil, false)
	m.mu.Lock()
	m.peersDirty = false
	m.mu.Unlock()
	if err := m.store.PutMetaSync(metaPeers, b); err != nil && !errors.Is(err, wal.ErrClosed) {
		m.log.Error("save peers", "err", err)
	}
}

// loadState restores the remembered peers.
func (m *Mesh) loadState() {
	if b, ok, err := m.store.GetMeta(metaPeers); err == nil && ok {
		ais, err := decodePeerList(b)
		if err != nil {
			m.log.Warn("remembered peers unreadable", "err", err)
		}
		for _, ai := range ais {
			if ai.ID == m.self {
				continue
			}
			m.tr.AddAddrs(ai.ID, ai.Addrs, true)
			m.want(ai.ID, false)
			m.step(func() {
				m.r.AddPeer(m.peer(ai.ID).mid)
			})
		}
		if len(ais) > 0 {
			m.log.Info("remembered peers", "count", len(ais))
		}
	}
	m.mu.Lock()
	m.peersDirty = false
	m.mu.Unlock()
}
