// Package bridge keeps a Redis server (the backend) and a redmesh node in
// sync: it takes the backend's dataset in (also as a one-off import), writes
// what the node commits to the backend, and turns changes made straight to
// the backend into local writes of the node, each with a fresh version.
//
// The backend holds plain Redis values; the node holds versions and merge
// state. They meet in State, a key as a Redis server holds it, and in its
// Digest, which is what the bridge remembers of what the backend holds.
package bridge

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/redmesh/redmesh/bridge/whole"
	"github.com/redmesh/redmesh/record"
)

// Kind is a backend key's type as far as the bridge models it.
type Kind uint8

// Kinds. Whole is a type redmesh does not model (stream, module types),
// carried whole: its DUMP payload, written with RESTORE, last writer wins.
// Other is a key the bridge cannot carry (it changed type while read, its
// payload could not be read or restored): reported and left alone.
const (
	None Kind = iota
	String
	Hash
	Set
	ZSet
	List
	Whole
	Other
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case String:
		return "string"
	case Hash:
		return "hash"
	case Set:
		return "set"
	case ZSet:
		return "zset"
	case List:
		return "list"
	case Whole:
		return "whole"
	}
	return "other"
}

// kindOf maps Redis's TYPE reply.
func kindOf(redisType string) Kind {
	switch redisType {
	case "none":
		return None
	case "string":
		return String
	case "hash":
		return Hash
	case "set":
		return Set
	case "zset":
		return ZSet
	case "list":
		return List
	}
	return Whole
}

// State is one key as a Redis server holds it. A counter is a string, as in
// Redis. Fields (name, value, name, value ...) and Members are in name order;
// a sorted set's Fields are its members and their scores (as scoreText
// writes them), a list's Members its elements in list order.
type State struct {
	Kind    Kind
	Type    string // Redis's TYPE for Whole and Other
	Str     []byte // a string's value; a Whole key's DUMP payload
	Fields  [][]byte
	Members [][]byte
	// At is the deadline in Unix milliseconds (PEXPIRETIME), 0 for none.
	At int64
}

// FromRecord is what a Redis server should hold for a node's record: nothing
// if the key is not live.
func FromRecord(rec record.Record, live bool) State {
	if !live {
		return State{}
	}
	s := State{At: rec.Expiry.At}
	switch rec.Kind() {
	case record.KindString:
		s.Kind, s.Str = String, rec.StringData()
		if typ, payload, ok := whole.Unwrap(s.Str); ok {
			s.Kind, s.Type, s.Str = Whole, typ, payload
		}
	case record.KindHash:
		s.Kind = Hash
		rec.Typed.EachField(func(name, value []byte) bool {
			s.Fields = append(s.Fields, name, value)
			return true
		})
	case record.KindSet:
		s.Kind = Set
		rec.Typed.EachMember(func(name []byte) bool {
			s.Members = append(s.Members, name)
			return true
		})
	case record.KindZSet:
		s.Kind = ZSet
		var es []record.ZEntry
		v := rec.Typed.ZView()
		v.Ascend(0, func(e record.ZEntry) bool {
			es = append(es, e)
			return true
		})
		slices.SortFunc(es, func(a, b record.ZEntry) int { return bytes.Compare(a.Name, b.Name) })
		for _, e := range es {
			s.Fields = append(s.Fields, e.Name, []byte(scoreText(e.Score)))
		}
	case record.KindList:
		s.Kind = List
		v := rec.Typed.ListView()
		v.Ascend(0, func(e record.Elem) bool {
			s.Members = append(s.Members, e.Value)
			return true
		})
	default:
		s.Kind, s.Type = Other, rec.Kind().String()
	}
	return s
}

// scoreText is a score as the bridge compares and writes it: "%.17g", as
// the backend's scripts format it too (string.format), so that the two
// sides' digests agree whatever the backend's own reply format.
func scoreText(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', 17, 64)
}

// normalScore is a score the backend replied with, as scoreText writes it.
func normalScore(b []byte) []byte {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return b // not a score: the digest will differ, and the key is read again
	}
	return []byte(scoreText(f))
}

// sortFields orders field pairs by name, as FromRecord lists them.
func sortFields(f [][]byte) [][]byte {
	type pair struct{ k, v []byte }
	ps := make([]pair, 0, len(f)/2)
	for i := 0; i+1 < len(f); i += 2 {
		ps = append(ps, pair{f[i], f[i+1]})
	}
	slices.SortFunc(ps, func(a, b pair) int { return bytes.Compare(a.k, b.k) })
	out := f[:0]
	for _, p := range ps {
		out = append(out, p.k, p.v)
	}
	return out
}

func sortMembers(m [][]byte) { slices.SortFunc(m, bytes.Compare) }

// Digest sums a State up in 64 bits: equal states have equal digests
// whatever the order their elements were read in, and 0 is an absent key.
// Each element is hashed on its own (SHA-1 of its length-prefixed parts, the
// first 8 bytes) and the hashes XORed, so a server-side script can compute
// the same digest with redis.sha1hex and no sorting.
func (s State) Digest() uint64 {
	var d uint64
	switch s.Kind {
	case None:
		return 0
	case String:
		d = elemHash("string", s.Str)
	case Hash:
		d = elemHash("hash")
		for i := 0; i+1 < len(s.Fields); i += 2 {
			d ^= elemHash("", s.Fields[i], s.Fields[i+1])
		}
	case Set:
		d = elemHash("set")
		for _, m := range s.Members {
			d ^= elemHash("", m)
		}
	case ZSet:
		d = elemHash("zset")
		for i := 0; i+1 < len(s.Fields); i += 2 {
			d ^= elemHash("", s.Fields[i], s.Fields[i+1])
		}
	case List:
		d = elemHash("list")
		for i, m := range s.Members {
			d ^= listElemHash(i, valueHash(m))
		}
	case Whole:
		d = elemHash("whole:"+s.Type, s.Str)
	default:
		d = elemHash("other:" + s.Type)
	}
	return withDeadline(d, s.At)
}

// withDeadline completes a digest d of a key's value with its deadline at.
func withDeadline(d uint64, at int64) uint64 {
	if at != 0 {
		d ^= elemHash("pxat", strconv.AppendInt(nil, at, 10))
	}
	if d == 0 { // 0 is reserved for an absent key
		d = 1
	}
	return d
}

// listElemHash is a list element's part of its list's digest: its index
// and its hash (valueHash), so that a list's digest can be computed from
// its elements' hashes alone (see listDigest).
func listElemHash(i int, h uint64) uint64 {
	return elemHash("", strconv.AppendInt(nil, int64(i), 10), fmt.Appendf(nil, "%016x", h))
}

// listDigest is the Digest of a list whose elements have hashes names
// (valueHash) and whose deadline is at.
func listDigest(names []uint64, at int64) uint64 {
	d := elemHash("list")
	for i, h := range names {
		d ^= listElemHash(i, h)
	}
	return withDeadline(d, at)
}

// elemHash is the first 8 bytes of SHA-1 over tag and parts, each part
// after its length and a colon (tag only if not empty).
func elemHash(tag string, parts ...[]byte) uint64 {
	h := sha1.New()
	var buf []byte
	if tag != "" {
		buf = strconv.AppendInt(buf, int64(len(tag)), 10)
		buf = append(buf, ':')
		buf = append(buf, tag...)
	}
	for _, p := range parts {
		buf = strconv.AppendInt(buf, int64(len(p)), 10)
		buf = append(buf, ':')
		buf = append(buf, p...)
	}
	h.Write(buf)
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}
