package node

import (
	"bytes"
	"math"
	"math/bits"

	"github.com/redmesh/redmesh/keyspace"
)

// Bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS,
// BITOP, BITFIELD and BITFIELD_RO work on a string's bytes, bit 0 being the
// most significant bit of the first byte. A write replaces the string's
// value register as a whole (putValue keeps a live key's TTL, as Redis
// modifies the string in place; BITOP sets its destination as SET does), so
// concurrent bit writes at different nodes keep the later whole value, not
// each bit.

const (
	errBitOffset                          = "ERR bit offset is not an integer or out of range"
	errBitValue                           = "ERR bit is not an integer or out of range"
	errBitArg                             = "ERR The bit argument must be 1 or 0."
	errBitopNot                           = "ERR BITOP NOT must be called with a single source key."
	errBitfieldType                       = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
	errOverflowType                       = "ERR Invalid OVERFLOW type specified"
	errBitfieldRO                         = "ERR BITFIELD_RO only supports the GET subcommand"
	bitfieldWrap                          = 0
	bitfieldSat                           = 1
	bitfieldFail                          = 2
	bitfieldGet                           = 0
	bitfieldSet                           = 1
	bitfieldIncrBy                        = 2
	bitopAnd, bitopOr, bitopXor, bitopNot = 0, 1, 2, 3
)

// bitOffset is Redis's getBitOffsetFromArgument: a bit offset, or with
// hash a "#n" offset counted in fields of width bits; within the largest
// string a client may build (proto-max-bulk-len).
func (n *Node) bitOffset(arg []byte, hash bool, width int) (uint64, error) {
	useHash := hash && width > 0 && len(arg) > 0 && arg[0] == '#'
	if useHash {
		arg = arg[1:]
	}
	v, ok := parseInt(arg)
	if !ok {
		return 0, replyErr(errBitOffset)
	}
	if useHash {
		v *= int64(width) // wraps as Redis's does; a negative result is refused below
	}
	if v < 0 || v>>3 >= n.maxStringLen() {
		return 0, replyErr(errBitOffset)
	}
	return uint64(v), nil
}

// growTo is s, copied, at least size bytes long (zero filled).
func growTo(s []byte, size uint64) []byte {
	out := make([]byte, max(uint64(len(s)), size))
	copy(out, s)
	return out
}

func cmdSetBit(n *Node, c *client, args [][]byte) {
	off, err := n.bitOffset(args[2], false, 0)
	if err != nil {
		c.writeErr(err)
		return
	}
	on, ok := parseInt(args[3])
	if !ok || on&^1 != 0 {
		c.w.WriteError(errBitValue)
		return
	}
	var old byte
	err = c.update(func(tx *keyspace.Tx) error {
		cur, live, err := txString(tx, args[1], n.nowMillis())
		if err != nil {
			return err
		}
		var s []byte
		if live {
			s = cur.StringData()
		}
		byt, bit := off>>3, 7-off&7
		old = 0
		if byt < uint64(len(s)) {
			old = s[byt] >> bit & 1
		}
		if live && byt < uint64(len(s)) && int64(old) == on {
			return nil
		}
		buf := growTo(s, byt+1)
		buf[byt] = buf[byt]&^(1<<bit) | byte(on)<<bit
		return n.putValue(tx, args[1], buf, live)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(int(old))
}

func cmdGetBit(n *Node, c *client, args [][]byte) {
	off, err := n.bitOffset(args[2], false, 0)
	if err != nil {
		c.writeErr(err)
		return
	}
	s, _, err := c.readString(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	bit := 0
	if byt := off >> 3; byt < uint64(len(s)) {
		bit = int(s[byt] >> (7 - off&7) & 1)
	}
	c.w.WriteInt(bit)
}

// bitRange is BITCOUNT's and BITPOS's range over a string of strlen bytes:
// start and end as bytes, and, counted in bits, masks of the bits of the
// first and last byte outside it. end was given or is the string's end.
type bitRange struct {
	start, end          int64
	firstMask, lastMask byte
	empty               bool
}

func makeBitRange(strlen, start, end int64, isBit bool) bitRange {
	total := strlen
	if isBit {
		total <<= 3
	}
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, total-1)
	r := bitRange{start: start, end: end}
	if isBit && start <= end {
		r.firstMask = ^byte((1 << (8 - start&7)) - 1)
		r.lastMask = byte((1 << (7 - end&7)) - 1)
		r.start, r.end = start>>3, end>>3
	}
	r.empty = r.start > r.end
	return r
}

// parseBitUnit is the BYTE|BIT argument.
func parseBitUnit(arg []byte) (bool, error) {
	switch {
	case equalFold(arg, "bit"):
		return true, nil
	case equalFold(arg, "byte"):
		return false, nil
	}
	return false, replyErr(errSyntax)
}

func cmdBitCount(n *Node, c *client, args [][]byte) {
	s, live, err := c.readString(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	if !live {
		c.w.WriteInt(0)
		return
	}
	r := bitRange{start: 0, end: int64(len(s)) - 1}
	switch len(args) {
	case 2:
		r.empty = len(s) == 0
	case 4, 5:
		start, ok1 := parseInt(args[2])
		if !ok1 {
			c.w.WriteError(errNotInteger)
			return
		}
		end, ok2 := parseInt(args[3])
		if !ok2 {
			c.w.WriteError(errNotInteger)
			return
		}
		if start < 0 && end < 0 && start > end {
			c.w.WriteInt(0)
			return
		}
		isBit := false
		if len(args) == 5 {
			if isBit, err = parseBitUnit(args[4]); err != nil {
				c.writeErr(err)
				return
			}
		}
		r = makeBitRange(int64(len(s)), start, end, isBit)
	default:
		c.w.WriteError(errSyntax)
		return
	}
	if r.empty {
		c.w.WriteInt(0)
		return
	}
	count := popcount(s[r.start : r.end+1])
	count -= bits.OnesCount8(s[r.start]&r.firstMask) + bits.OnesCount8(s[r.end]&r.lastMask)
	c.w.WriteInt(count)
}

func popcount(b []byte) int {
	n := 0
	for len(b) >= 8 {
		n += bits.OnesCount64(uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56)
		b = b[8:]
	}
	for _, x := range b {
		n += bits.OnesCount8(x)
	}
	return n
}

// bitpos is Redis's redisBitpos: the position of the first bit equal to bit
// in b; when there is none, -1 looking for a 1, and the bit after b looking
// for a 0 (the string reads as zero padded on the right).
func bitpos(b []byte, bit byte) int64 {
	skip := byte(0)
	if bit == 0 {
		skip = 0xff
	}
	for i, x := range b {
		if x != skip {
			if bit == 1 {
				return int64(i)*8 + int64(bits.LeadingZeros8(x))
			}
			return int64(i)*8 + int64(bits.LeadingZeros8(^x))
		}
	}
	if bit == 1 {
		return -1
	}
	return int64(len(b)) * 8
}

func cmdBitPos(n *Node, c *client, args [][]byte) {
	bitArg, ok := parseInt(args[2])
	if !ok {
		c.w.WriteError(errNotInteger)
		return
	}
	if bitArg != 0 && bitArg != 1 {
		c.w.WriteError(errBitArg)
		return
	}
	bit := byte(bitArg)
	s, live, err := c.readString(args[1])
	if err != nil {
		c.writeErr(err)
		return
	}
	if !live { // an absent key reads as endless zero bits
		c.w.WriteInt(-int(bit))
		return
	}
	r := bitRange{start: 0, end: int64(len(s)) - 1}
	endGiven := false
	switch len(args) {
	case 3:
		r.empty = len(s) == 0
	case 4, 5, 6:
		start, ok := parseInt(args[3])
		if !ok {
			c.w.WriteError(errNotInteger)
			return
		}
		isBit := false
		if len(args) == 6 {
			if isBit, err = parseBitUnit(args[5]); err != nil {
				c.writeErr(err)
				return
			}
		}
		var end int64
		if len(args) >= 5 {
			if end, ok = parseInt(args[4]); !ok {
				c.w.WriteError(errNotInteger)
				return
			}
			endGiven = true
		} else if isBit {
			end = int64(len(s))<<3 + 7
		} else {
			end = int64(len(s)) - 1
		}
		r = makeBitRange(int64(len(s)), start, end, isBit)
	default:
		c.w.WriteError(errSyntax)
		return
	}
	if r.empty {
		c.w.WriteInt(-1)
		return
	}
	start, nbytes := r.start, r.end-r.start+1
	pos := func() int64 {
		if r.firstMask != 0 {
			tmp := s[start] &^ r.firstMask
			if bit == 0 {
				tmp = s[start] | r.firstMask
			}
			if r.lastMask != 0 && nbytes == 1 {
				if bit == 1 {
					tmp &^= r.lastMask
				} else {
					tmp |= r.lastMask
				}
			}
			p := bitpos([]byte{tmp}, bit)
			if nbytes == 1 || p != -1 && p != 8 {
				return p
			}
			start++
			nbytes--
		}
		cur := nbytes
		if r.lastMask != 0 {
			cur--
		}
		if cur > 0 {
			p := bitpos(s[start:start+cur], bit)
			if nbytes == cur || p != -1 && p != cur<<3 {
				return p
			}
			start += cur
			nbytes -= cur
		}
		tmp := s[r.end] &^ r.lastMask
		if bit == 0 {
			tmp = s[r.end] | r.lastMask
		}
		return bitpos([]byte{tmp}, bit)
	}()
	if endGiven && bit == 0 && pos == nbytes<<3 {
		c.w.WriteInt(-1)
		return
	}
	if pos != -1 {
		pos += start << 3
	}
	c.w.WriteInt64(pos)
}

func cmdBitOp(n *Node, c *client, args [][]byte) {
	var op int
	switch {
	case equalFold(args[1], "and"):
		op = bitopAnd
	case equalFold(args[1], "or"):
		op = bitopOr
	case equalFold(args[1], "xor"):
		op = bitopXor
	case equalFold(args[1], "not"):
		op = bitopNot
	default:
		c.w.WriteError(errSyntax)
		return
	}
	if op == bitopNot && len(args) != 4 {
		c.w.WriteError(errBitopNot)
		return
	}
	var maxLen int
	err := c.update(func(tx *keyspace.Tx) error {
		now := n.nowMillis()
		srcs := make([][]byte, len(args)-3)
		maxLen = 0
		for i, key := range args[3:] {
			cur, live, err := txString(tx, key, now)
			if err != nil {
				return err
			}
			if live {
				srcs[i] = cur.StringData()
				maxLen = max(maxLen, len(srcs[i]))
			}
		}
		if maxLen == 0 {
			if liveKey(tx, args[2], now) {
				return n.deleteKey(tx, args[2])
			}
			return nil
		}
		res := make([]byte, maxLen)
		at := func(s []byte, j int) byte {
			if j < len(s) {
				return s[j]
			}
			return 0
		}
		for j := range res {
			out := at(srcs[0], j)
			if op == bitopNot {
				out = ^out
			}
			for _, s := range srcs[1:] {
				switch op {
				case bitopAnd:
					out &= at(s, j)
				case bitopOr:
					out |= at(s, j)
				case bitopXor:
					out ^= at(s, j)
				}
			}
			res[j] = out
		}
		return n.putString(tx, args[2], res, 0)
	})
	if err != nil {
		c.writeErr(err)
		return
	}
	c.w.WriteInt(maxLen)
}

// bitfieldOp is one BITFIELD operation.
type bitfieldOp struct {
	offset   uint64
	value    int64
	op       int
	overflow int
	bits     int
	signed   bool
}

func cmdBitField(n *Node, c *client, args [][]byte)   { bitfield(n, c, args, false) }
func cmdBitFieldRO(n *Node, c *client, args [][]byte) { bitfield(n, c, args, true) }

// parseBitfieldType is an "i<bits>" or "u<bits>" argument.
func parseBitfieldType(arg []byte) (signed bool, width int, err error) {
	if len(arg) == 0 || arg[0] != 'i' && arg[0] != 'u' {
		return false, 0, replyErr(errBitfieldType)
	}
	signed = arg[0] == 'i'
	w, ok := parseInt(arg[1:])
	if !ok || w < 1 || signed && w > 64 || !signed && w > 63 {
		return false, 0, replyErr(errBitfieldType)
	}
	return signed, int(w), nil
}

func parseBitfield(n *Node, args [][]byte) (ops []bitfieldOp, readonly bool, highest uint64, err error) {
	overflow := bitfieldWrap
	readonly = true
	for j := 2; j < len(args); j++ {
		rem := len(args) - j - 1
		var o bitfieldOp
		switch sub := args[j]; {
		case equalFold(sub, "get") && rem >= 2:
			o.op = bitfieldGet
		case equalFold(sub, "set") && rem >= 3:
			o.op = bitfieldSet
		case equalFold(sub, "incrby") && rem >= 3:
			o.op = bitfieldIncrBy
		case equalFold(sub, "overflow") && rem >= 1:
			j++
			switch {
			case equalFold(args[j], "wrap"):
				overflow = bitfieldWrap
			case equalFold(args[j], "sat"):
				overflow = bitfieldSat
			case equalFold(args[j], "fail"):
				overflow = bitfieldFail
			default:
				return nil, false, 0, replyErr(errOverflowType)
			}
			continue
		default:
			return nil, false, 0, replyErr(errSyntax)
		}
		if o.signed, o.bits, err = parseBitfieldType(args[j+1]); err != nil {
			return nil, false, 0, err
		}
		if o.offset, err = n.bitOffset(args[j+2], true, o.bits); err != nil {
			return nil, false, 0, err
		}
		if o.op != bitfieldGet {
			readonly = false
			highest = max(highest, o.offset+uint64(o.bits)-1)
			v, ok := parseInt(args[j+3])
			if !ok {
				return nil, false, 0, replyErr(errNotInteger)
			}
			o.value = v
			j++
		}
		o.overflow = overflow
		ops = append(ops, o)
		j += 2
	}
	return ops, readonly, highest, nil
}

// bitfieldReply is one operation's answer: a number, or nil where OVERFLOW
// FAIL refused it.
type bitfieldReply struct {
	v    int64
	null bool
}

func bitfield(n *Node, c *client, args [][]byte, roCommand bool) {
	ops, readonly, highest, err := parseBitfield(n, args)
	if err != nil {
		c.writeErr(err)
		return
	}
	var replies []bitfieldReply
	if readonly {
		s, _, err := c.readString(args[1])
		if err != nil {
			c.writeErr(err)
			return
		}
		for _, o := range ops {
			replies = append(replies, bitfieldReply{v: getField(s, o)})
		}
	} else {
		if roCommand {
			c.w.WriteError(errBitfieldRO)
			return
		}
		err = c.update(func(tx *keyspace.Tx) error {
			replies = replies[:0]
			cur, live, err := txString(tx, args[1], n.nowMillis())
			if err != nil {
				return err
			}
			var s []byte
			if live {
				s = cur.StringData()
			}
			buf := growTo(s, highest>>3+1)
			for _, o := range ops {
				replies = append(replies, applyField(buf, o))
			}
			if live && bytes.Equal(buf, s) {
				return nil
			}
			return n.putValue(tx, args[1], buf, live)
		})
		if err != nil {
			c.writeErr(err)
			return
		}
	}
	c.w.WriteArray(len(replies))
	for _, r := range replies {
		if r.null {
			c.w.WriteNull()
		} else {
			c.w.WriteInt64(r.v)
		}
	}
}

// getField reads a field of s, which reads as zero padded.
func getField(s []byte, o bitfieldOp) int64 {
	var buf [9]byte
	byt := o.offset >> 3
	if byt < uint64(len(s)) {
		copy(buf[:], s[byt:])
	}
	u := getUnsigned(buf[:], o.offset-byt*8, o.bits)
	if o.signed {
		return signExtend(u, o.bits)
	}
	return int64(u)
}

func getUnsigned(p []byte, offset uint64, width int) uint64 {
	var v uint64
	for range width {
		v = v<<1 | uint64(p[offset>>3]>>(7-offset&7)&1)
		offset++
	}
	return v
}

func setUnsigned(p []byte, offset uint64, width int, v uint64) {
	for j := range width {
		bit := byte(v >> (width - 1 - j) & 1)
		p[offset>>3] = p[offset>>3]&^(1<<(7-offset&7)) | bit<<(7-offset&7)
		offset++
	}
}

func signExtend(u uint64, width int) int64 {
	v := int64(u)
	if width < 64 && v&(1<<(width-1)) != 0 {
		v |= -1 << width
	}
	return v
}

// applyField runs a SET or INCRBY on buf (grown to hold it) or a GET.
func applyField(buf []byte, o bitfieldOp) bitfieldReply {
	if o.op == bitfieldGet {
		return bitfieldReply{v: getField(buf, o)}
	}
	if o.signed {
		old := signExtend(getUnsigned(buf, o.offset, o.bits), o.bits)
		var nv, ret int64
		var over int
		if o.op == bitfieldIncrBy {
			var wrapped int64
			over, wrapped = signedOverflow(old, o.value, o.bits, o.overflow)
			nv = old + o.value
			if over != 0 {
				nv = wrapped
			}
			ret = nv
		} else {
			var wrapped int64
			nv = o.value
			if over, wrapped = signedOverflow(nv, 0, o.bits, o.overflow); over != 0 {
				nv = wrapped
			}
			ret = old
		}
		if over != 0 && o.overflow == bitfieldFail {
			return bitfieldReply{null: true}
		}
		setUnsigned(buf, o.offset, o.bits, uint64(nv))
		return bitfieldReply{v: ret}
	}
	old := getUnsigned(buf, o.offset, o.bits)
	var nv, ret uint64
	var over int
	if o.op == bitfieldIncrBy {
		var wrapped uint64
		nv = old + uint64(o.value)
		if over, wrapped = unsignedOverflow(old, o.value, o.bits, o.overflow); over != 0 {
			nv = wrapped
		}
		ret = nv
	} else {
		var wrapped uint64
		nv = uint64(o.value)
		if over, wrapped = unsignedOverflow(nv, 0, o.bits, o.overflow); over != 0 {
			nv = wrapped
		}
		ret = old
	}
	if over != 0 && o.overflow == bitfieldFail {
		return bitfieldReply{null: true}
	}
	setUnsigned(buf, o.offset, o.bits, nv)
	return bitfieldReply{v: int64(ret)}
}

// unsignedOverflow is Redis's checkUnsignedBitfieldOverflow: whether value
// plus incr leaves a width-bit unsigned field (1 above, -1 below), and
// the value WRAP or SAT makes of it.
func unsignedOverflow(value uint64, incr int64, width int, kind int) (int, uint64) {
	maxV := uint64(1)<<width - 1
	maxIncr := int64(maxV - value)
	minIncr := -int64(value)
	wrap := func() uint64 { return (value + uint64(incr)) &^ (math.MaxUint64 << width) }
	switch {
	case value > maxV || incr > 0 && incr > maxIncr:
		if kind == bitfieldWrap {
			return 1, wrap()
		}
		return 1, maxV
	case incr < 0 && incr < minIncr:
		if kind == bitfieldWrap {
			return -1, wrap()
		}
		return -1, 0
	}
	return 0, 0
}

// signedOverflow is Redis's checkSignedBitfieldOverflow.
func signedOverflow(value, incr int64, width int, kind int) (int, int64) {
	maxV := int64(math.MaxInt64)
	if width < 64 {
		maxV = 1<<(width-1) - 1
	}
	minV := -maxV - 1
	maxIncr := int64(uint64(maxV) - uint64(value))
	minIncr := minV - value
	wrap := func() int64 {
		c := uint64(value) + uint64(incr)
		if width < 64 {
			mask := uint64(math.MaxUint64) << width
			if c&(1<<(width-1)) != 0 {
				c |= mask
			} else {
				c &^= mask
			}
		}
		return int64(c)
	}
	switch {
	case value > maxV || width != 64 && incr > maxIncr || value >= 0 && incr > 0 && incr > maxIncr:
		if kind == bitfieldWrap {
			return 1, wrap()
		}
		return 1, maxV
	case value < minV || width != 64 && incr < minIncr || value < 0 && incr < 0 && incr < minIncr:
		if kind == bitfieldWrap {
			return -1, wrap()
		}
		return -1, minV
	}
	return 0, 0
}
