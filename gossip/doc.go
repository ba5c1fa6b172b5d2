// Package gossip is a redmesh node's mesh: discovery (bootstrap peers,
// remembered peers, peer exchange, mDNS), eager push, log catch-up,
// snapshots and Merkle sessions over streams, and the acknowledgements
// WAIT waits for, over a Transport: libp2p's (the host: TCP with Noise
// and QUIC, the node's identity, a private network key, an allowlist
// gater and a resource manager), or, in tests, an in-memory one.
//
// Every replication decision is mesh.Replicator's, the core the simulator
// drives too (Mesh.step), and merkle runs the reconciliation session.
// Every record it receives goes to the node's one write path through
// Local.ApplyRemote.
//
// Protocols (every stream frame is uvarint(length) then the bytes, bounded
// per protocol):
//
//	/redmesh/log/3     mesh.LogRequest → mesh.LogReply, repeated
//	/redmesh/merkle/4  merkle messages, then each side's mesh.RootAt
//	/redmesh/ack/3     mesh.Ack: writes applied, how far synced, how far ours are stable, [asideBelow]; the other way mesh.AppendAckWant: asked for
//	/redmesh/peers/1   the node itself and the peers it is connected to, with addresses
//	/redmesh/snapshot/2  mesh.SnapshotRequest → mesh.SnapshotChunk, repeated until Done
//	/redmesh/push/5    2 | epoch | prev | to | hops | [origin] | mesh push, repeated: the opener's pushes and those it relays
//
// and, for a peer of the build before counts' short form, /redmesh/log/2,
// /redmesh/merkle/3, /redmesh/snapshot/1 and /redmesh/push/4: the same
// messages, their records in record.Encoding1 (versions.go).
package gossip
