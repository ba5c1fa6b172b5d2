// Package mesh holds the replication policies that every transport of a
// redmesh node shares: which peer to reconcile with, where to resume reading
// a peer's write-ahead log, when to give up on the log and fall back to a
// Merkle session, and how fresh writes are batched for eager push.
//
// It is pure, like merkle: no IO, no goroutines, no clocks and no random
// source of its own (callers pass one in). The simulator drives it through
// its event queue; the libp2p gossip layer drives the same code over real
// streams. What travels on the wire for log catch-up and eager push is
// encoded here too (wire.go), so both see the same bytes.
//
// # The replication core
//
// Replicator (replicator.go) puts the pieces below together into one state
// machine in the shape of etcd raft's RawNode: Step for what arrives from
// a peer, Tick and CheckGaps for time, calls for local events, and Ready
// for what to do (log requests, fallback sessions, bootstraps,
// anti-entropy sessions, acknowledgements, cursors and the stable time to
// save, members to forget, own writes to set aside). It owns every piece
// of per-peer and per-origin state the policy needs; the driver owns the
// sockets, the store and the clock.
//
// # Peers
//
// A Table is what a node knows about the peers it has links to: whether each
// is connected now, the last Merkle root it reported, and a Cursor into its
// log. Cursors survive disconnections; that is what makes a short outage
// cheap.
//
// ChooseSyncPeer picks the partner of the next anti-entropy round: at random
// among connected peers, preferring those whose last known root differs from
// ours (or is unknown), since a session with an equal peer finds nothing.
//
// # Catch-up
//
// On connecting to a peer a node reads the peer's log from its cursor:
//
//	StartCatchUp      → LogRequest{Epoch, From, Root}
//	peer: ServeLog    → LogReply{Epoch, Head, entries [From, Next)} or Truncated
//	CatchUpReply      → ReadLog (more to read), Idle (caught up) or Reconcile
//
// Each request carries the reader's Merkle root. A peer whose root is the
// same answers with its head and no entries, whatever the cursor: the reader
// already holds everything (or something newer than everything) before it.
//
// A log has an epoch, which changes whenever the log loses a tail it had
// already served (a crash under a lazy fsync mode), so a cursor is only ever
// used against the log it was taken from. When the peer's log no longer holds
// the cursor (truncated by retention, another epoch, or no cursor at all) the
// node runs one Merkle session with that peer instead and, once it completes,
// takes the peer's head at the time of the request as its new cursor: every
// entry before it was in the peer's store when the session started, so the
// session brought it. A node with data never takes a full copy.
//
// # Bootstrap
//
// A node that holds nothing would walk every key of a Merkle session, so
// when the log cannot serve it (ChooseRepair) it streams the peer's
// snapshot instead (snapshot.go): chunks in key-hash order, each checked
// whole, from the key hash where the last stream of any peer stopped
// (BootstrapState, which the node saves), then reads the peer's log from
// where its stream began. While a bootstrap is wanted or runs
// (Bootstrapping) the node takes part in no Merkle session, and
// ChooseSyncPeer leaves out the peers a node streams its snapshot to.
//
// # Stability
//
// Stability (stable.go) works out the stable time for garbage collection:
// from samples of the node's log and clock, peers' acknowledgements of its
// writes (the synced part) and their reports of how far their own writes
// are stable, the time up to which every member has applied every write.
// It does not move while a linked member has not told us its peers. It also
// says when a silent member may be forgotten (only while linked to a
// majority) and how far a catch-up's old entries are filtered
// (FreshHorizon: the stable time).
//
// # Progress, catch-up turns and acknowledgements
//
// Progress (progress.go) is how far a node has applied one origin's own
// writes, from the origin's pushes (each says which range of its log it
// holds) and log reads; a push that came after a lost or late one waits,
// and a gap that outlasts its patience sends the node to the origin's log.
// CatchUps (catchups.go) starts catch-ups, one per peer, lets one read at a
// time, and holds anti-entropy rounds back while they run; a node serves
// no session a peer opens while it reads that peer's log (AcceptSession). What a node
// tells an origin of its Progress travels as an Ack (ack.go), batched by
// AckOut unless the origin asked for one (WAIT), and counted for garbage
// collection only as far as it is synced here (Durable).
//
// # Eager push
//
// A Batcher collects fresh writes and releases a batch when it holds Max
// records or when the caller's queue has emptied (Flush), so a burst goes out
// in few messages and a lone write goes out at once. A batch holds only the
// node's own writes and goes, with its header (PushHeader: which range of
// the node's log it holds, and a hop budget), to every peer linked to it
// (Replicator.PushTargets). On a partial overlay receivers relay it on
// (relay.go: PushHeld, Relay).
package mesh
