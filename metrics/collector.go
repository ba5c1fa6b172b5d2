package metrics

import (
	"math/bits"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/node"
)

// collector turns a node's Stats into Prometheus metrics at scrape time:
// nothing is counted twice, and the command path does no work for
// Prometheus.
type collector struct {
	stats func() (node.Stats, bool) // false until the node is open
	ready func() bool
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("redmesh_"+name, help, labels, nil)
}

var (
	descUp                  = desc("ready", "1 when the node is ready to serve (data loaded; where peers were known at start, synced with one).")
	descCommands            = desc("commands_total", "Commands run, by command (as Redis names them: get, config|get).", "cmd")
	descCommandsFailed      = desc("commands_failed_total", "Commands that ran and answered an error, by command.", "cmd")
	descCommandsRejected    = desc("commands_rejected_total", "Commands refused before running (arity, authentication), by command.", "cmd")
	descCommandDuration     = desc("command_duration_seconds", "Time commands took to run, by command (a pipelined write batch's shared commit excluded).", "cmd")
	descErrors              = desc("errors_total", "Error replies by kind: the error's prefix, as Redis's errorstats (ERR, WRONGTYPE...).", "kind")
	descErrorReplies        = desc("error_replies_total", "Every error reply, as INFO's total_error_replies.")
	descConnections         = desc("connections_received_total", "Client connections accepted.")
	descRejectedConnections = desc("connections_rejected_total", "Client connections refused (maxclients, protected mode).")
	descClients             = desc("connected_clients", "Client connections open.")
	descCommandsProcessed   = desc("commands_processed_total", "Commands processed, every kind (INFO's total_commands_processed).")
	descHits                = desc("keyspace_hits_total", "Reads that found their key.")
	descMisses              = desc("keyspace_misses_total", "Reads that did not find their key.")
	descExpired             = desc("expired_keys_total", "Keys removed by the expiry sweep.")
	descKeys                = desc("keys", "Keys held.")
	descExpiring            = desc("expiring_keys", "Keys held with a deadline.")
	descLogFirst            = desc("log_first_seq", "Sequence number of the oldest entry of the write-ahead log.")
	descLogHead             = desc("log_head_seq", "Sequence number of the newest entry of the write-ahead log.")
	descLogBytes            = desc("log_bytes", "Size of the retained write-ahead log.")
	descDiskBytes           = desc("disk_bytes", "Size of the data directory.")
	descTombstones          = desc("tombstones", "Entries kept for deleted or expired keys, so that a peer that missed the delete cannot bring the key back.")
	descTombstonesCollected = desc("tombstones_collected_total", "Tombstones dropped once every member had applied them.")
	descCheckpointAge       = desc("checkpoint_age_seconds", "Time since the last checkpoint of the keyspace was written or loaded (since start if none was): start-up replays the log written since.")
	descCheckpointBytes     = desc("checkpoint_bytes", "Size of the last checkpoint.")
	descSkew                = desc("clock_skew_refused_total", "Remote versions refused for being further ahead of this node's clock than --max-clock-skew.")

	descPeers            = desc("mesh_peers", "Peers known.")
	descLocalSeq         = desc("mesh_local_writes_seq", "Sequence number of this node's latest local write (WAIT acknowledges up to it).")
	descPeerConnected    = desc("peer_connected", "1 while the link to the peer is up.", "peer")
	descPeerIn           = desc("peer_received_bytes_total", "Bytes received from the peer.", "peer")
	descPeerOut          = desc("peer_sent_bytes_total", "Bytes sent to the peer.", "peer")
	descPeerAcked        = desc("peer_acknowledged_seq", "This node's local writes the peer acknowledged, up to this sequence number.", "peer")
	descPeerUnacked      = desc("peer_unacknowledged_writes", "This node's local writes the peer has not acknowledged.", "peer")
	descPeerBehind       = desc("peer_entries_behind", "Entries of the peer's log this node has not applied, as far as it knows the peer's head.", "peer")
	descPeerBehindFor    = desc("peer_behind_seconds", "How long since this node last held every entry of the peer's log it knew of (0 when not behind).", "peer")
	descPeerLastSync     = desc("peer_last_sync_timestamp_seconds", "End of the last Merkle session with the peer (Unix time; absent before the first).", "peer")
	descPeerRootEqual    = desc("peer_merkle_root_equal", "1 when the peer's last reported Merkle root equals this node's.", "peer")
	descSessions         = desc("merkle_sessions_total", "Merkle (anti-entropy) sessions run.")
	descSessionsFailed   = desc("merkle_sessions_failed_total", "Merkle sessions that failed.")
	descSessionsEqual    = desc("merkle_sessions_equal_total", "Merkle sessions that found the roots equal.")
	descKeysRepaired     = desc("merkle_keys_repaired_total", "Keys repaired by Merkle sessions.")
	descCatchUps         = desc("catchups_total", "Catch-ups from peers' logs started.")
	descCatchUpEntries   = desc("catchup_entries_total", "Log entries read from peers in catch-ups.")
	descCatchUpFallbacks = desc("catchup_fallbacks_total", "Catch-ups that fell back to a Merkle session (the peer's log no longer held our cursor).")
	descPushSent         = desc("push_records_sent_total", "Local writes pushed to peers.")
	descPushReceived     = desc("push_records_received_total", "Records received in pushes, relayed copies and copies already held included.")
	descPushApplied      = desc("push_records_applied_total", "Pushed records that changed something here.")
	descPushDropped      = desc("push_dropped_total", "Pushes dropped.")
	descPushDroppedStr   = desc("push_dropped_stream_total", "Pushes dropped at a peer's push stream (its queue full), once for each peer; part of push_dropped_total.")
	descPushRelayed      = desc("push_relayed_total", "Copies of other nodes' pushes sent on to a peer (a partial overlay), once for each peer.")
	descPushRelayDropped = desc("push_relay_dropped_total", "Copies of other nodes' pushes to relay that a peer's full push queue could not take, once for each peer.")
	descPushHeld         = desc("push_held_total", "Pushes that arrived with every record already here (a relayed copy, or covered by a catch-up), dropped unmerged.")
	descBadMessages      = desc("mesh_bad_messages_total", "Malformed messages from peers (each disconnects and bans the peer).")
	descStableLag        = desc("gc_stable_lag_seconds", "How far the stable time (every member has applied every write up to it; what garbage collection may drop) is behind the clock.")
	descOwnStableLag     = desc("gc_own_stable_lag_seconds", "How far this node's writes are behind being applied by every member.")
	descForgotten        = desc("gc_forgotten_members", "Members forgotten (redmesh forget, --forget-after): they no longer hold collection back.")
	descForgotReturned   = desc("gc_forgotten_returned_total", "Forgotten members that came back.")
	descSetAside         = desc("gc_set_aside_records_total", "Records of forgotten members back that held writes the mesh had collected, set aside instead of merged.")
)

var allDescs = []*prometheus.Desc{
	descUp, descCommands, descCommandsFailed, descCommandsRejected, descCommandDuration, descErrors,
	descErrorReplies, descConnections, descRejectedConnections, descClients, descCommandsProcessed,
	descHits, descMisses, descExpired, descKeys, descExpiring, descLogFirst, descLogHead, descLogBytes,
	descDiskBytes, descTombstones, descTombstonesCollected, descCheckpointAge, descCheckpointBytes, descSkew, descPeers, descLocalSeq, descPeerConnected, descPeerIn, descPeerOut,
	descPeerAcked, descPeerUnacked, descPeerBehind, descPeerBehindFor, descPeerLastSync,
	descPeerRootEqual, descSessions, descSessionsFailed, descSessionsEqual, descKeysRepaired,
	descCatchUps, descCatchUpEntries, descCatchUpFallbacks, descPushSent, descPushReceived,
	descPushApplied, descPushDropped, descPushDroppedStr, descPushRelayed, descPushRelayDropped, descPushHeld, descBadMessages, descStableLag, descOwnStableLag, descForgotten,
	descForgotReturned, descSetAside,
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// durationBuckets are the histogram's bounds: every second power of two of
// nanoseconds of the node's finer histogram, 256 ns to 17 s.
var durationBuckets = func() []int {
	var idx []int
	for i := range node.LatencyBuckets - 1 {
		b := node.LatencyBucketBound(i)
		if b >= 256 && b&(b-1) == 0 && bits.TrailingZeros64(uint64(b))%2 == 0 {
			idx = append(idx, i)
		}
	}
	return idx
}()

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, b2f(c.ready()))
	s, ok := c.stats()
	if !ok {
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for i := range s.Commands {
		cs := &s.Commands[i]
		counter(descCommands, cs.Calls, cs.Name)
		counter(descCommandsFailed, cs.Failed, cs.Name)
		counter(descCommandsRejected, cs.Rejected, cs.Name)
		buckets := make(map[float64]uint64, len(durationBuckets))
		var cum uint64
		next := 0
		for _, bi := range durationBuckets {
			for ; next <= bi; next++ {
				cum += cs.Latency[next]
			}
			buckets[node.LatencyBucketBound(bi).Seconds()] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descCommandDuration, cs.Calls, cs.Time.Seconds(), buckets, cs.Name)
	}
	for kind, v := range s.Errors {
		counter(descErrors, v, kind)
	}
	counter(descErrorReplies, s.ErrorReplies)
	counter(descConnections, s.ConnectionsReceived)
	counter(descRejectedConnections, s.RejectedConnections)
	gauge(descClients, float64(s.ConnectedClients))
	counter(descCommandsProcessed, s.CommandsProcessed)
	counter(descHits, s.KeyspaceHits)
	counter(descMisses, s.KeyspaceMisses)
	counter(descExpired, s.ExpiredKeys)
	gauge(descKeys, float64(s.Keys))
	gauge(descExpiring, float64(s.ExpiringKeys))
	gauge(descLogFirst, float64(s.LogFirst))
	gauge(descLogHead, float64(s.LogLast))
	gauge(descLogBytes, float64(s.LogBytes))
	gauge(descDiskBytes, float64(s.DiskBytes))
	gauge(descTombstones, float64(s.Tombstones))
	counter(descTombstonesCollected, s.TombstonesCollected)
	gauge(descCheckpointAge, time.Since(s.CheckpointAt).Seconds())
	gauge(descCheckpointBytes, float64(s.CheckpointBytes))
	counter(descSkew, s.RefusedClockSkew)
	counter(descSetAside, s.SetAside)
	m := s.Mesh
	if m == nil {
		return
	}
	lag := func(d *prometheus.Desc, ts hlc.Timestamp) {
		if ts != 0 { // none found yet
			gauge(d, max(0, time.Since(ts.Time()).Seconds()))
		}
	}
	lag(descStableLag, m.Stable)
	lag(descOwnStableLag, m.OwnStable)
	gauge(descForgotten, float64(m.Forgotten))
	counter(descForgotReturned, m.ForgottenReturned)
	gauge(descPeers, float64(len(m.Peers)))
	gauge(descLocalSeq, float64(m.LastLocalSeq))
	for _, p := range m.Peers {
		gauge(descPeerConnected, b2f(p.Connected), p.ID)
		counter(descPeerIn, uint64(max(p.BytesIn, 0)), p.ID)
		counter(descPeerOut, uint64(max(p.BytesOut, 0)), p.ID)
		gauge(descPeerAcked, float64(p.Acked), p.ID)
		gauge(descPeerUnacked, float64(p.Unacked), p.ID)
		gauge(descPeerBehind, float64(p.Behind), p.ID)
		gauge(descPeerBehindFor, p.BehindFor.Seconds(), p.ID)
		if !p.LastSync.IsZero() {
			gauge(descPeerLastSync, float64(p.LastSync.UnixNano())/float64(time.Second), p.ID)
		}
		gauge(descPeerRootEqual, b2f(p.RootKnown && p.Root == s.MerkleRoot), p.ID)
	}
	counter(descSessions, m.Sessions)
	counter(descSessionsFailed, m.SessionsFailed)
	counter(descSessionsEqual, m.SessionsEqual)
	counter(descKeysRepaired, m.KeysRepaired)
	counter(descCatchUps, m.CatchUps)
	counter(descCatchUpEntries, m.CatchUpEntries)
	counter(descCatchUpFallbacks, m.Fallbacks)
	counter(descPushSent, m.PushRecords)
	counter(descPushReceived, m.PushReceived)
	counter(descPushApplied, m.PushApplied)
	counter(descPushDropped, m.PushDropped)
	counter(descPushDroppedStr, m.PushDroppedStream)
	counter(descPushRelayed, m.PushRelayed)
	counter(descPushRelayDropped, m.PushRelayDropped)
	counter(descPushHeld, m.PushHeld)
	counter(descBadMessages, m.BadMessages)
}
