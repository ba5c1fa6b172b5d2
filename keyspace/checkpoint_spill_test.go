package keyspace

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/redmesh/redmesh/record"
)

// maxWriter records the largest write it takes.
type maxWriter struct {
	bytes.Buffer
	max int
}

func (w *maxWriter) Write(b []byte) (int, error) {
	w.max = max(w.max, len(b))
	return w.Buffer.Write(b)
}

// TestCheckpointWritesLargeStateInPieces: a checkpoint writes a list of
// 200,000 elements through a bounded buffer, not its whole encoding at once
// (about 8 MB here; 58 MB for a list of a million), and loads it back.
func TestCheckpointWritesLargeStateInPieces(t *testing.T) {
	const n = 200_000
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, "element:%012d", i)
	}
	v := version(10)
	op := record.BeginTyped(record.Record{}, false, record.KindList, v, func() (record.Version, error) { v.TS++; return v, nil })
	if _, err := op.PushListedRun(nil, nil, values); err != nil {
		t.Fatal(err)
	}
	list, _ := record.MergeInto(record.Record{}, op.Delta())
	if !list.Typed.Large() {
		t.Fatal("the list is not held as a large state")
	}
	encoded := len(record.AppendBinary(nil, list))

	dir := t.TempDir()
	s := openStore(t, dir, nil)
	put(t, s.db, "list", list)
	for i := range 1000 {
		put(t, s.db, fmt.Sprintf("k%d", i), setRec(uint64(20+i), "v"))
	}
	tab := s.db.Table()
	var w maxWriter
	for i := range tab.shards {
		sw := sectionWriter{w: &w}
		tab.shards[i].writeEntries(&sw, nil, nil)
		if sw.err != nil {
			t.Fatal(sw.err)
		}
	}
	if w.max > 2*spillAt {
		t.Errorf("a write of %d bytes, for a list whose encoding is %d", w.max, encoded)
	}
	if w.Len() < encoded {
		t.Fatalf("the sections hold %d bytes, less than the list's encoding (%d)", w.Len(), encoded)
	}

	if err := s.db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := s.db.Get([]byte("list"))
	s.close(t)
	loaded := loadCheckpointFile(t, dir)
	if got, _ := loaded.Get([]byte("list")); !record.Equal(got, want) || got.Typed.ListLen() != n {
		t.Fatalf("the list loaded with %d elements, want %d, equal to the one written", got.Typed.ListLen(), n)
	}
	if loaded.KeyCount() != 1001 {
		t.Fatalf("%d keys loaded, want 1001", loaded.KeyCount())
	}
}
