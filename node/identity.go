package node

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

const metaIdentity = "identity"

// loadIdentity reads the node's libp2p private key from the store, creating
// it on first start. The key is the node's identity in the mesh; the node ID
// that versions its writes derives from it, so it must survive restarts.
func loadIdentity(s *wal.Store) (crypto.PrivKey, error) {
	b, ok, err := s.GetMeta(metaIdentity)
	if err != nil {
		return nil, err
	}
	if ok {
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("decode identity key: %w", err)
		}
		return k, nil
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate identity key: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode identity key: %w", err)
	}
	if err := s.PutMetaSync(metaIdentity, b); err != nil {
		return nil, err
	}
	return k, nil
}

// NodeIDOf derives the 64-bit node ID that tie-breaks versions from a peer ID:
// the first 8 bytes of its SHA-256. 64 bits keep every register small; two
// nodes of a mesh sharing an ID is a 1-in-2^32 event even at 65,536 nodes,
// and would only matter for two writes to one key in the same HLC tick.
func NodeIDOf(id peer.ID) record.NodeID {
	sum := sha256.Sum256([]byte(id))
	return record.NodeID(binary.BigEndian.Uint64(sum[:8]))
}
