package record

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// goldenEncodings are the encodings testdata/records-v1.txt keeps, as the
// build before counts' short form wrote goldenRecords.
func goldenEncodings(tb testing.TB) [][]byte { return samples(tb, "testdata/records-v1.txt") }

// samples reads the encodings of a golden sample's lines, each its first
// field.
func samples(tb testing.TB, path string) [][]byte {
	tb.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for line := range strings.Lines(string(f)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		enc, err := hex.DecodeString(strings.Fields(line)[0])
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, enc)
	}
	return out
}

// TestEncoding1IsTheBuildBefore: what this build writes for a peer that
// reads Encoding1 is, byte for byte, what the build before wrote (the
// golden samples), whether encoded from the record or re-encoded from this
// build's own encoding; and this build's own encoding of the counters is
// one that build could not read, so the re-encoding is not idle.
func TestEncoding1IsTheBuildBefore(t *testing.T) {
	golden, recs := goldenEncodings(t), goldenRecords()
	if len(golden) != len(recs) {
		t.Fatalf("%d samples, %d records", len(golden), len(recs))
	}
	later := 0
	for i, r := range recs {
		if got := AppendBinaryAs(nil, r, Encoding1); !bytes.Equal(got, golden[i]) {
			t.Fatalf("record %d as Encoding1:\n%x\nthe build before wrote\n%x", i, got, golden[i])
		}
		own := Encode(r)
		if EncodingOf(own) == Encoding2 {
			later++
		}
		got, err := AppendAs(nil, own, Encoding1)
		if err != nil || !bytes.Equal(got, golden[i]) {
			t.Fatalf("record %d re-encoded as Encoding1: %v\n%x\nthe build before wrote\n%x", i, err, got, golden[i])
		}
		if EncodingOf(golden[i]) != Encoding1 {
			t.Fatalf("record %d: the build before's encoding taken for Encoding%d", i, EncodingOf(golden[i]))
		}
		if same, err := AppendAs(nil, own, Encoding2); err != nil || !bytes.Equal(same, own) {
			t.Fatalf("record %d as Encoding2 changed: %v", i, err)
		}
	}
	if later == 0 {
		t.Fatal("no sample is written differently by this build: the test checks nothing")
	}
	// An INCR's delta, the write a counter's every increment pushes.
	if EncodingOf(Encode(recs[4])) != Encoding2 {
		t.Fatal("an INCR's delta is written in the form the build before reads")
	}
}

// TestEncoding2IsStable: this build writes goldenRecords as the sample of
// Encoding2 holds them. A build that writes them otherwise changes what
// peers of this build read: that is a new record.Encoding, with an ID for
// it on each protocol that carries records (gossip/versions.go), Encoding2
// kept for them, and this sample then what the build before wrote.
func TestEncoding2IsStable(t *testing.T) {
	golden, recs := samples(t, "testdata/records-v2.txt"), goldenRecords()
	if len(golden) != len(recs) {
		t.Fatalf("%d samples, %d records", len(golden), len(recs))
	}
	for i, r := range recs {
		if got := Encode(r); !bytes.Equal(got, golden[i]) {
			t.Fatalf("record %d encoded as\n%x\nEncoding2 is\n%x", i, got, golden[i])
		}
		if got := AppendBinaryAs(nil, r, Encoding2); !bytes.Equal(got, golden[i]) {
			t.Fatalf("record %d as Encoding2:\n%x\nEncoding2 is\n%x", i, got, golden[i])
		}
		if got, err := Decode(golden[i]); err != nil || !Equal(got, r) {
			t.Fatalf("record %d's sample decoded as %+v, %v", i, got, err)
		}
	}
}

// TestAppendAsRefusesCorrupt: a record that does not decode is not passed
// on in another encoding.
func TestAppendAsRefusesCorrupt(t *testing.T) {
	own := Encode(goldenRecords()[4])
	if _, err := AppendAs(nil, own[:len(own)-2], Encoding1); err == nil {
		t.Fatal("a truncated record was re-encoded")
	}
}

// FuzzAppendAs: any record that decodes, re-encoded for a reader of
// Encoding1, is one that reader reads, and the same record.
func FuzzAppendAs(f *testing.F) {
	for _, enc := range goldenEncodings(f) {
		f.Add(enc)
	}
	for _, r := range goldenRecords() {
		f.Add(Encode(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := Decode(b)
		out, aerr := AppendAs(nil, b, Encoding1)
		if err != nil {
			if aerr == nil && EncodingOf(b) != Encoding1 {
				t.Fatalf("a corrupt record re-encoded: %v", err)
			}
			return
		}
		if aerr != nil {
			t.Fatalf("a record that decodes was not re-encoded: %v", aerr)
		}
		if EncodingOf(out) != Encoding1 {
			t.Fatalf("re-encoded as Encoding%d", EncodingOf(out))
		}
		again, err := Decode(out)
		if err != nil || !Equal(again, rec) || again.Versions() != rec.Versions() {
			t.Fatalf("re-encoded %+v: %+v, %v", rec, again, err)
		}
	})
}
