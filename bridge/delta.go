package bridge

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// maxRemovedNames bounds the names of removed elements the bridge keeps per
// key owed to the backend; beyond it the key is written whole.
const maxRemovedNames = 4096

// noteRemoved keeps, per key, the names of the hash fields and set and
// sorted-set members the committed entries removed (their traces), so that
// a delta can remove them from the backend: a base holds only their hashes.
// It runs under b.mu.
func (b *Bridge) noteRemoved(e wal.Entry) {
	t := e.Record.Typed
	if t == nil || len(t.Removed) == 0 || t.Kind == record.KindList {
		return
	}
	names := b.removed[string(e.Key)]
	if names == nil {
		names = map[string]struct{}{}
		b.removed[string(e.Key)] = names
	}
	for _, r := range t.Removed {
		if len(names) >= maxRemovedNames {
			return
		}
		names[string(r.Name)] = struct{}{}
	}
}

// takeRemoved hands over the removed names kept for key.
func (b *Bridge) takeRemoved(key string) map[string]struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := b.removed[key]
	delete(b.removed, key)
	return names
}

// keepRemoved gives back names takeRemoved handed over, for a write that
// did not happen.
func (b *Bridge) keepRemoved(key string, names map[string]struct{}) {
	if len(names) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	have := b.removed[key]
	if have == nil {
		b.removed[key] = names
		return
	}
	for n := range names {
		if len(have) >= maxRemovedNames {
			return
		}
		have[n] = struct{}{}
	}
}

// deltaArgs are deltaScript's arguments (mark: the marker channel) that take
// the backend from base e to the node's state s of the same key by writing
// only what differs: hash fields (HSET/HDEL), set members (SADD/SREM),
// sorted-set members (ZADD/ZREM), a list's ends (LPOP/RPOP counts, LPUSH/RPUSH), the deadline;
// each element written over is checked first. ok is false where a delta
// cannot say it — another type, a string, a removed element whose name is
// not among removed, a list sharing no run with its base — and the key is
// written whole.
func deltaArgs(mark string, s State, e *base, removed map[string]struct{}) (args []any, ok bool) {
	if e == nil || Kind(e.Kind) != s.Kind {
		return nil, false
	}
	var checks, cmds []any
	nchecks, ncmds := 0, 0
	check := func(name, want string) {
		checks = append(checks, name, want)
		nchecks++
	}
	cmd := func(name string, cargs ...any) {
		cmds = append(cmds, name, len(cargs))
		cmds = append(cmds, cargs...)
		ncmds++
	}
	hex := func(v uint64) string { return fmt.Sprintf("%016x", v) }
	switch s.Kind {
	case Hash, Set, ZSet:
		have := make(map[uint64]struct{}, max(len(s.Fields)/2, len(s.Members)))
		var put, del []any
		switch s.Kind {
		case Hash:
			for i := 0; i+1 < len(s.Fields); i += 2 {
				f, v := s.Fields[i], s.Fields[i+1]
				nh := xxhash.Sum64(f)
				have[nh] = struct{}{}
				q, in := part(e, nh)
				if in && q == valueHash(v) {
					continue
				}
				want := ""
				if in {
					want = hex(q)
				}
				check(string(f), want)
				put = append(put, f, v)
			}
		case ZSet:
			for i := 0; i+1 < len(s.Fields); i += 2 {
				m, sc := s.Fields[i], s.Fields[i+1]
				nh := xxhash.Sum64(m)
				have[nh] = struct{}{}
				q, in := part(e, nh)
				if in && q == scoreBits(sc) {
					continue
				}
				want := ""
				if in {
					want = scoreText(math.Float64frombits(q))
				}
				check(string(m), want)
				put = append(put, sc, m) // ZADD takes the score first
			}
		case Set:
			for _, m := range s.Members {
				nh := xxhash.Sum64(m)
				have[nh] = struct{}{}
				if _, in := part(e, nh); in {
					continue
				}
				check(string(m), "0")
				put = append(put, m)
			}
		}
		gone := 0
		for i := range e.Elems.Len() {
			if _, ok := have[e.Elems.Names[i]]; !ok {
				gone++
			}
		}
		for name := range removed {
			nh := xxhash.Sum64String(name)
			if _, ok := have[nh]; ok {
				continue
			}
			q, in := part(e, nh)
			if !in {
				continue
			}
			switch s.Kind {
			case Hash:
				check(name, hex(q))
			case Set:
				check(name, "1")
			case ZSet:
				check(name, scoreText(math.Float64frombits(q)))
			}
			del = append(del, name)
			gone--
		}
		if gone != 0 {
			return nil, false // a removed element's name is not known
		}
		add, rem := "HSET", "HDEL"
		switch s.Kind {
		case Set:
			add, rem = "SADD", "SREM"
		case ZSet:
			add, rem = "ZADD", "ZREM"
		}
		if len(put) > 0 {
			cmd(add, put...)
		}
		if len(del) > 0 {
			cmd(rem, del...)
		}
	case List:
		was, now := baseListHashes(e), listHashes(s.Members)
		i, k, run := commonRun(was, now)
		if run == 0 {
			return nil, false
		}
		tail := len(was) - i - run
		check("len", strconv.Itoa(len(was)))
		for j := range len(was) {
			if j < i || j >= len(was)-tail {
				check(strconv.Itoa(j), hex(e.Elems.Names[j]))
			}
		}
		if i > 0 {
			cmd("LPOP", i)
		}
		if tail > 0 {
			cmd("RPOP", tail)
		}
		if k > 0 {
			head := make([]any, k) // LPUSH puts its last argument first
			for j, v := range s.Members[:k] {
				head[k-1-j] = v
			}
			cmd("LPUSH", head...)
		}
		if k+run < len(s.Members) {
			rest := make([]any, 0, len(s.Members)-k-run)
			for _, v := range s.Members[k+run:] {
				rest = append(rest, v)
			}
			cmd("RPUSH", rest...)
		}
	default:
		return nil, false
	}
	if s.At != e.At {
		if s.At == 0 {
			cmd("PERSIST")
		} else {
			cmd("PEXPIREAT", s.At)
		}
	}
	expire := int64(-1)
	if e.At != 0 {
		expire = e.At
	}
	args = slices.Grow(args, 5+len(checks)+len(cmds))
	args = append(args, mark, s.Kind.String(), expire, nchecks)
	args = append(args, checks...)
	args = append(args, ncmds)
	return append(args, cmds...), true
}
