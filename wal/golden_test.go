package wal

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/record"
)

// goldenEntries are the log entries whose block, as a build before counts'
// short form logged it, testdata/block-v1.txt keeps: a SET, a DEL, a new
// counter, an INCR's delta (logged from its CounterState) and one with a
// reset.
func goldenEntries() (keys []string, recs []record.Record, counters []*record.CounterState) {
	ver := func(ts uint64, n record.NodeID) record.Version {
		return record.Version{TS: 1<<40 | hlc.Timestamp(ts), Node: n}
	}
	fresh := record.CounterState{KindVersion: ver(2, 7), Count: record.Count{Node: 0x1234, Start: 1<<40 | 2, Ver: ver(2, 7), Total: 1}}
	incr := record.CounterState{KindVersion: ver(5, 7), Count: record.Count{Node: 0x1234, Start: 1<<40 | 2, Ver: ver(5, 7), Total: 4}}
	reset := record.CounterState{KindVersion: ver(9, 7), Count: record.Count{Node: 0x1234, Start: 1<<40 | 2, Ver: ver(9, 7), Total: 9,
		ResetVer: ver(5, 7), ResetTotal: 4}}
	keys = []string{"key:000000000001", "key:000000000002", "counter:1", "counter:1", "counter:1"}
	recs = []record.Record{
		{Value: record.Value{Version: ver(1, 7), Data: []byte("xxx")}, Expiry: record.Expiry{Version: ver(1, 7)}},
		{Value: record.Value{Version: ver(1, 7), Tombstone: true}, Expiry: record.Expiry{Version: ver(1, 7)}},
		{Value: record.Value{Version: ver(2, 7), Data: []byte("0")}, Expiry: record.Expiry{Version: ver(2, 7)}},
		{},
		{Value: record.Value{Version: ver(8, 7), Data: []byte("0")}},
	}
	counters = []*record.CounterState{nil, nil, &fresh, &incr, &reset}
	return keys, recs, counters
}

// TestDecodesV1Block: a log block as an earlier build wrote it still
// decodes, to the entries it held.
func TestDecodesV1Block(t *testing.T) {
	blk := readBlockV1(t)
	es, err := decodeBlock(100, blk, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, recs, counters := goldenEntries()
	if len(es) != len(keys) {
		t.Fatalf("%d entries, want %d", len(es), len(keys))
	}
	for i, e := range es {
		want := recs[i]
		if counters[i] != nil {
			want.Typed = counters[i].Typed()
		}
		if e.Seq != 100+uint64(i) || string(e.Key) != keys[i] || !record.Equal(e.Record, want) {
			t.Fatalf("entry %d: %d %q %+v, want %q %+v", i, e.Seq, e.Key, e.Record, keys[i], want)
		}
	}
}

// readBlockV1 is the block testdata/block-v1.txt holds.
func readBlockV1(t testing.TB) []byte {
	t.Helper()
	f, err := os.ReadFile("testdata/block-v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	var blk []byte
	for line := range strings.Lines(string(f)) {
		if !strings.HasPrefix(line, "#") {
			if blk, err = hex.DecodeString(strings.TrimSpace(line)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return blk
}
