package record

import "fmt"

// Encoding is a version of a record's encoding: what a build writes and
// what a build can read. A build reads every version up to its own and
// writes its own to its log and checkpoints; to a peer it writes the
// version that peer's protocol carries (gossip negotiates it on each
// stream), so that a mesh upgraded one node at a time converges.
type Encoding uint8

const (
	// Encoding1: every register written, each count in the long form
	// (appendCount). Builds before counts' short form read only this.
	Encoding1 Encoding = 1
	// Encoding2: an empty value register left out (flagNoValue), counts in
	// the short form (flagShortCounts). What this build writes.
	Encoding2 Encoding = 2
)

// AppendBinaryAs is AppendBinary in encoding enc: a reader of enc decodes
// it to the same record.
func AppendBinaryAs(dst []byte, r Record, enc Encoding) []byte {
	return appendBinary(dst, r, nil, enc)
}

// EncodeAs is Encode in encoding enc.
func EncodeAs(r Record, enc Encoding) []byte {
	return appendBinary(make([]byte, 0, EncodedSize(r)), r, nil, enc)
}

// EncodingOf is the oldest encoding that reads b, a record's encoding: the
// flags of a later one are in its second byte. It does not check b
// otherwise (Decode does).
func EncodingOf(b []byte) Encoding {
	if len(b) >= 2 && b[1]&(flagNoValue|flagShortCounts) != 0 {
		return Encoding2
	}
	return Encoding1
}

// AppendAs appends b, a record's encoding, as a reader of enc reads it: as
// it is if that reader can, else decoded and encoded again. A string's
// record (no empty register, no counts) is the same in every encoding, so
// only typed writes are encoded again.
func AppendAs(dst, b []byte, enc Encoding) ([]byte, error) {
	if EncodingOf(b) <= enc {
		return append(dst, b...), nil
	}
	r, err := Decode(b)
	if err != nil {
		return dst, fmt.Errorf("re-encode a record as encoding %d: %w", enc, err)
	}
	return AppendBinaryAs(dst, r, enc), nil
}
