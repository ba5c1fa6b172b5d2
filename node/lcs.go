package node

// LCS (Redis's t_string.c): the longest common subsequence of two strings,
// by the same dynamic programme as Redis, so that among several longest
// subsequences it answers the same one, with the same match ranges.

const (
	errLCSTypes    = "ERR The specified keys must contain string values"
	errLCSLenIdx   = "ERR If you want both the length and indexes, please just use IDX."
	errLCSTooLarge = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
)

// lcsMatch is one range of IDX's answer.
type lcsMatch struct{ aStart, aEnd, bStart, bEnd uint32 }

func cmdLCS(n *Node, c *client, args [][]byte) {
	var strs [2][]byte
	for i, key := range args[1:3] {
		s, _, err := c.readString(key)
		if err == replyErr(errWrongType) {
			err = replyErr(errLCSTypes)
		}
		if err != nil {
			c.writeErr(err)
			return
		}
		strs[i] = s
	}
	a, b := strs[0], strs[1]
	var getLen, getIdx, withMatchLen bool
	var minMatchLen int64
	for j := 3; j < len(args); j++ {
		switch opt := args[j]; {
		case equalFold(opt, "IDX"):
			getIdx = true
		case equalFold(opt, "LEN"):
			getLen = true
		case equalFold(opt, "WITHMATCHLEN"):
			withMatchLen = true
		case equalFold(opt, "MINMATCHLEN") && j < len(args)-1:
			v, ok := parseInt(args[j+1])
			if !ok {
				c.w.WriteError(errNotInteger)
				return
			}
			minMatchLen = max(v, 0)
			j++
		default:
			c.w.WriteError(errSyntax)
			return
		}
	}
	if getLen && getIdx {
		c.w.WriteError(errLCSLenIdx)
		return
	}
	// Redis's bound on the table: its 32-bit cells within proto-max-bulk-len.
	alen, blen := uint32(len(a)), uint32(len(b))
	if cells := (uint64(alen) + 1) * (uint64(blen) + 1); cells*4 > uint64(n.maxStringLen()) {
		c.w.WriteError(errLCSTooLarge)
		return
	}
	w := int(blen) + 1
	tab := make([]uint32, (int(alen)+1)*w)
	at := func(i, j uint32) uint32 { return tab[int(j)+int(i)*w] }
	for i := uint32(1); i <= alen; i++ {
		for j := uint32(1); j <= blen; j++ {
			switch {
			case a[i-1] == b[j-1]:
				tab[int(j)+int(i)*w] = at(i-1, j-1) + 1
			default:
				tab[int(j)+int(i)*w] = max(at(i-1, j), at(i, j-1))
			}
		}
	}
	idx := at(alen, blen)
	total := idx
	if getLen && !getIdx {
		c.w.WriteInt64(int64(total))
		return
	}
	result := make([]byte, idx)
	var matches []lcsMatch
	aStart, aEnd, bStart, bEnd := alen, uint32(0), uint32(0), uint32(0)
	for i, j := alen, blen; i > 0 && j > 0; {
		emit := false
		if a[i-1] == b[j-1] {
			result[idx-1] = a[i-1]
			if aStart == alen {
				aStart, aEnd, bStart, bEnd = i-1, i-1, j-1, j-1
			} else if aStart == i && bStart == j {
				aStart--
				bStart--
			} else {
				emit = true
			}
			if aStart == 0 || bStart == 0 {
				emit = true
			}
			idx--
			i--
			j--
		} else {
			if at(i-1, j) > at(i, j-1) {
				i--
			} else {
				j--
			}
			if aStart != alen {
				emit = true
			}
		}
		if emit {
			if matchLen := aEnd - aStart + 1; minMatchLen == 0 || int64(matchLen) >= minMatchLen {
				matches = append(matches, lcsMatch{aStart, aEnd, bStart, bEnd})
			}
			aStart = alen
		}
	}
	if !getIdx {
		c.w.WriteBulk(result)
		return
	}
	c.w.WriteArray(4)
	c.w.WriteBulkString("matches")
	c.w.WriteArray(len(matches))
	for _, m := range matches {
		c.w.WriteArray(2 + boolInt(withMatchLen))
		c.w.WriteArray(2)
		c.w.WriteInt64(int64(m.aStart))
		c.w.WriteInt64(int64(m.aEnd))
		c.w.WriteArray(2)
		c.w.WriteInt64(int64(m.bStart))
		c.w.WriteInt64(int64(m.bEnd))
		if withMatchLen {
			c.w.WriteInt64(int64(m.aEnd - m.aStart + 1))
		}
	}
	c.w.WriteBulkString("len")
	c.w.WriteInt64(int64(total))
}
