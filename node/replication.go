package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/gossip"
	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/wal"
)

// The node's side of the mesh: it starts the gossip layer with the node's
// identity and hands it every commit (after the Merkle index has taken it),
// and the gossip layer sends records from peers back through ApplyRemote,
// the one write path.

// startMesh starts the gossip layer, unless the configuration disables it.
func (n *Node) startMesh() error {
	cfg := n.cfg.Mesh
	if cfg.Disabled {
		return nil
	}
	cfg.Identity = n.key
	cfg.Self = uint64(n.id)
	cfg.NodeIDOf = func(p peer.ID) uint64 { return uint64(NodeIDOf(p)) }
	cfg.Logger = n.log
	m, err := gossip.Start(cfg, n.wal, n)
	if err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	n.mesh.Store(m)
	return nil
}

// stopMesh stops the gossip layer; the store must still be open.
func (n *Node) stopMesh() {
	if m := n.mesh.Swap(nil); m != nil {
		if err := m.Close(); err != nil {
			n.log.Warn("stop mesh", "err", err)
		}
	}
}

// committed is the keyspace's commit hook: the Merkle index first, then eager
// push of the local writes among the entries.
func (n *Node) committed(entries []wal.Entry) {
	n.merkle.committed(entries)
	n.blocked.written(entries) // local writes and peers' records alike wake blocked clients
	if m := n.mesh.Load(); m != nil {
		m.Committed(entries)
	}
	if fn := n.commitHook.Load(); fn != nil { // OnCommit (local.go)
		(*fn)(entries)
	}
}

// MeshAddrs are the node's full mesh multiaddrs (nil without a mesh).
func (n *Node) MeshAddrs() []string {
	if m := n.mesh.Load(); m != nil {
		return m.Addrs()
	}
	return nil
}

// waitReplicas is WAIT: block until numreplicas peers have applied every
// local write made so far (so every write of this client), or the timeout
// passes (0: forever), and answer how many have. It runs on the client's
// goroutine, outside the write path.
func (n *Node) waitReplicas(c *client, numreplicas int64, timeout time.Duration) int {
	m := n.mesh.Load()
	if m == nil {
		return 0
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return m.WaitAcks(ctx, m.LastLocalSeq(), int(min(numreplicas, 1<<30)), timeout)
}

// infoMesh is the mesh part of INFO replication.
func infoMesh(n *Node) []string {
	m := n.mesh.Load()
	lines := []string{
		kv("mesh_merkle_root", strconv.FormatUint(n.MerkleRoot(), 16)),
		kv("mesh_refused_clock_skew", utoa(n.clock.Refused())),
	}
	if m == nil {
		return append(lines, "mesh_enabled:0")
	}
	in := m.Info()
	lines = append(lines,
		"mesh_enabled:1",
		kv("mesh_peer_id", in.PeerID),
		kv("mesh_addrs", joinComma(in.Addrs)),
		kv("mesh_log_epoch", utoa(in.Epoch)),
		kv("mesh_last_local_seq", utoa(in.LastLocalSeq)),
		kv("mesh_peers", itoa(int64(len(in.Peers)))),
		kv("mesh_connected_peers", itoa(int64(in.Connected))),
	)
	lines = append(lines, kv("mesh_ready", itoa(int64(connFlag(m.Ready())))))
	b := in.Bootstrap
	lines = append(lines,
		kv("mesh_sync_in_progress", itoa(int64(connFlag(m.SyncInProgress())))),
		kv("mesh_bootstrap_in_progress", itoa(int64(connFlag(in.Bootstrapping)))),
		kv("mesh_bootstrap_keys", utoa(b.Keys)),
		kv("mesh_bootstrap_keys_total", utoa(b.KeysTotal)),
		kv("mesh_bootstrap_bytes", utoa(b.Bytes)),
		kv("mesh_bootstrap_bytes_total", utoa(b.BytesTotal)),
		kv("mesh_bootstraps", utoa(in.Bootstraps)),
		kv("mesh_bootstrap_keys_received", utoa(in.BootstrapKeys)),
		kv("mesh_snapshots_served", utoa(in.SnapshotsServed)),
	)
	stuck := int64(0)
	if !in.StableStuckSince.IsZero() {
		stuck = time.Since(in.StableStuckSince).Milliseconds()
	}
	aside, _ := n.setAside.snapshot()
	lines = append(lines,
		kv("gc_stable_ms", itoa(in.Stable.Millis())),
		kv("gc_stable_lag_ms", itoa(stableLag(in.Stable))),
		kv("gc_own_stable_ms", itoa(in.OwnStable.Millis())),
		kv("gc_held_back_by", in.Holder),
		kv("gc_stable_unchanged_ms", itoa(stuck)),
		kv("gc_forgotten_members", itoa(int64(in.Forgotten))),
		kv("gc_forgotten_returned", utoa(in.ForgottenReturned)),
		kv("gc_set_aside_records", utoa(aside)),
		kv("gc_tombstones", itoa(n.tombstones())),
		kv("gc_collected", utoa(n.stats.collected.Load())),
	)
	root := n.MerkleRoot()
	for i, p := range in.Peers {
		last := "-1"
		if !p.LastSync.IsZero() {
			last = itoa(int64(time.Since(p.LastSync) / time.Millisecond))
		}
		peerRoot, equal := "-", 0
		if p.RootKnown {
			peerRoot = strconv.FormatUint(p.Root, 16)
			equal = connFlag(p.Root == root)
		}
		lines = append(lines, fmt.Sprintf("mesh_peer%d:id=%s,addr=%s,connected=%d,last_sync_ms_ago=%s,unacked=%d,acked_seq=%d,ack_lag_ms=%d,"+
			"cursor=%s,behind=%d,behind_ms=%d,root=%s,root_equal=%d,bytes_in=%d,bytes_out=%d,"+
			"bootstrap_keys=%d,bootstrap_keys_total=%d,bootstrap_bytes=%d,bootstrap_bytes_total=%d,stable_ms=%d,forgotten=%d",
			i, p.ID, p.Addr, connFlag(p.Connected), last, p.Unacked, p.Acked, p.AckLag.Milliseconds(),
			p.Cursor, p.Behind, p.BehindFor.Milliseconds(), peerRoot, equal, p.BytesIn, p.BytesOut,
			p.Bootstrap.Keys, p.Bootstrap.KeysTotal, p.Bootstrap.Bytes, p.Bootstrap.BytesTotal,
			p.Stable.Millis(), connFlag(p.Forgotten)))
	}
	lines = append(lines,
		kv("mesh_sessions", utoa(in.Sessions)),
		kv("mesh_sessions_failed", utoa(in.SessionsFailed)),
		kv("mesh_sessions_equal", utoa(in.SessionsEqual)),
		kv("mesh_keys_repaired", utoa(in.KeysRepaired)),
		kv("mesh_catchups", utoa(in.CatchUps)),
		kv("mesh_catchups_by_log", utoa(in.CatchUpsByLog)),
		kv("mesh_catchup_entries", utoa(in.CatchUpEntries)),
		kv("mesh_catchup_fallbacks", utoa(in.Fallbacks)),
		kv("mesh_push_batches_sent", utoa(in.PushBatches)),
		kv("mesh_push_records_sent", utoa(in.PushRecords)),
		kv("mesh_push_records_received", utoa(in.PushReceived)),
		kv("mesh_push_records_applied", utoa(in.PushApplied)),
		kv("mesh_push_dropped", utoa(in.PushDropped)),
		kv("mesh_push_dropped_stream", utoa(in.PushDroppedStream)),
		kv("mesh_push_relayed", utoa(in.PushRelayed)),
		kv("mesh_push_relay_dropped", utoa(in.PushRelayDropped)),
		kv("mesh_push_held", utoa(in.PushHeld)),
		kv("mesh_bad_messages", utoa(in.BadMessages)),
	)
	return lines
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// ReadPeerID returns the peer ID of the node whose data directory is dir,
// creating its identity if it has none yet. It opens the store briefly, so
// it fails while a node runs on dir.
func ReadPeerID(dir string) (peer.ID, error) {
	s, err := wal.Open(wal.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		if errors.Is(err, wal.ErrLocked) {
			return "", fmt.Errorf("%s is in use by a running node: stop it, or ask it (redis-cli INFO replication shows mesh_peer_id, and its log shows it at start)", dir)
		}
		return "", err
	}
	defer s.Close()
	key, err := loadIdentity(s)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(key)
}

func connFlag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// stableLag is how far the stable time is behind the clock, in ms; -1 while
// there is none.
func stableLag(st hlc.Timestamp) int64 {
	if st == 0 {
		return -1
	}
	return max(0, time.Now().UnixMilli()-st.Millis())
}
