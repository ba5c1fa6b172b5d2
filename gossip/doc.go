// Package gossip is a redmesh node's mesh over libp2p: the host (TCP with
// Noise and QUIC, the node's identity, a private network key, an allowlist
// gater and a resource manager), discovery (bootstrap peers, remembered
// peers, peer exchange, mDNS), eager push over GossipSub, log catch-up and
// Merkle sessions over streams, and the acknowledgements WAIT waits for.
//
// It drives the same pure code as the simulator: mesh for the peer table,
// sync-peer choice, catch-up cursors, turns and batching, each origin's
// push progress, acknowledgements and the stable time, and merkle for the
// reconciliation session. Every record it receives goes to the node's one
// write path through Local.ApplyRemote.
//
// Protocols (every stream frame is uvarint(length) then the bytes, bounded
// per protocol):
//
//	/redmesh/log/2     mesh.LogRequest → mesh.LogReply, repeated
//	/redmesh/merkle/2  merkle messages, then each side's mesh.RootAt
//	/redmesh/ack/3     mesh.Ack: writes applied, how far synced, how far ours are stable, [asideBelow]; the other way mesh.AppendAckWant: asked for
//	/redmesh/peers/1   the peers a node is connected to, with addresses
//	GossipSub topic /redmesh/push/2/<mesh>: 1 | epoch | prev | to | mesh push
package gossip
