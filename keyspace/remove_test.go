package keyspace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/redmesh/redmesh/record"
)

func liveRecord(ts uint64, data string, at int64) record.Record {
	v := version(ts)
	return record.Record{Value: record.Value{Version: v, Data: []byte(data)}, Expiry: record.Expiry{Version: v, At: at}}
}

// checkShards verifies a table's inner consistency: every slot finds its
// entry, every chained entry is in its group, free entries are neither, and
// the entry count adds up.
func checkShards(t *testing.T, tab *Table) {
	t.Helper()
	for i := range tab.shards {
		s := &tab.shards[i]
		used := 0
		for _, sl := range s.slots {
			if sl == 0 {
				continue
			}
			used++
			n := int(uint32(sl)) - 1
			if s.entries[n].flags&flagFree != 0 {
				t.Fatalf("shard %d: a slot names free entry %d", i, n)
			}
			if m, _ := s.find(s.key(&s.entries[n]), uint32(sl>>32)); m != n {
				t.Fatalf("shard %d: entry %d is not found from its home (found %d)", i, n, m)
			}
		}
		chained := 0
		for g := range s.groups {
			for n := s.groups[g]; n != 0; n = s.entries[n-1].next {
				chained++
				if s.entries[n-1].flags&flagFree != 0 {
					t.Fatalf("shard %d: group %d chains free entry %d", i, g, n-1)
				}
				if groupOf(Hash(s.key(&s.entries[n-1]))) != g {
					t.Fatalf("shard %d: entry %d chained in group %d", i, n-1, g)
				}
			}
		}
		if want := len(s.entries) - len(s.free); used != want || chained != want {
			t.Fatalf("shard %d: %d slots, %d chained, %d entries not free", i, used, chained, want)
		}
	}
}

// TestRemove: what Remove leaves, case by case.
func TestRemove(t *testing.T) {
	big := string(bytes.Repeat([]byte{'b'}, bigValue+10))
	tests := []struct {
		name string
		rec  record.Record
	}{
		{"string", liveRecord(2, "v", 0)},
		{"string with deadline", liveRecord(2, "v", 500)},
		{"expiry register of its own", record.Record{Value: record.Value{Version: version(2), Data: []byte("v")}, Expiry: record.Expiry{Version: version(3), At: 9}}},
		{"big value", liveRecord(2, big, 0)},
		{"tombstone", record.Record{Value: record.Value{Version: version(2), Tombstone: true}}},
		{"empty value", liveRecord(2, "", 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := NewTable()
			tab.Set([]byte("other"), liveRecord(1, "o", 100))
			before := tab.Bytes()
			tab.Set([]byte("k"), tc.rec)
			was, ok := tab.Remove([]byte("k"))
			want := tc.rec
			want.Value.Data = nil
			if !ok || !record.Equal(was, want) {
				t.Fatalf("Remove = %+v, %v; want %+v", was, ok, want)
			}
			if _, ok := tab.Get([]byte("k")); ok {
				t.Fatal("the key is still there")
			}
			if r := tab.Peek([]byte("k")); r.Written() {
				t.Fatalf("Peek reads %+v", r)
			}
			if _, ok := tab.Remove([]byte("k")); ok {
				t.Fatal("removed twice")
			}
			if tab.KeyCount() != 1 || tab.ExpiresCount() != 1 || tab.Stats().Entries != 1 {
				t.Fatalf("counts %d keys, %d expires, %d entries; want 1, 1, 1", tab.KeyCount(), tab.ExpiresCount(), tab.Stats().Entries)
			}
			s := &tab.shards[Hash([]byte("k"))>>(64-shardBits)]
			if len(s.big) != 0 || len(s.expiry) > 1 || len(s.objs) != 0 {
				t.Fatalf("side maps keep the key: %d big, %d expiry, %d objects", len(s.big), len(s.expiry), len(s.objs))
			}
			if tab.Bytes() > before+4*chunkSize {
				t.Fatalf("the table holds %d bytes after the removal, %d before the key", tab.Bytes(), before)
			}
			if len(tab.Expired(1<<40, 10)) != 1 {
				t.Fatal("the sweep lists a removed key")
			}
			// The entry is reused by the next new key, which reads as itself.
			tab.Set([]byte("k2"), liveRecord(5, "w", 0))
			if got, _ := tab.Get([]byte("k2")); string(got.Value.Data) != "w" {
				t.Fatalf("the next key reads %q", got.Value.Data)
			}
			checkShards(t, tab)
		})
	}
}

// TestRemoveReusesEntriesAndArena: writing and removing keys in rounds holds
// the table's size flat.
func TestRemoveReusesEntriesAndArena(t *testing.T) {
	tab := NewTable()
	val := bytes.Repeat([]byte{'v'}, 64)
	var first int64
	for round := range 6 {
		for i := range 20000 {
			tab.Set(fmt.Appendf(nil, "sess:%d:%d", round, i), record.Record{Value: record.Value{Version: version(uint64(round + 1)), Data: val}})
		}
		for i := range 20000 {
			if _, ok := tab.Remove(fmt.Appendf(nil, "sess:%d:%d", round, i)); !ok {
				t.Fatalf("round %d: key %d missing", round, i)
			}
		}
		if tab.KeyCount() != 0 || tab.Stats().Entries != 0 {
			t.Fatalf("round %d: %d keys, %d entries left", round, tab.KeyCount(), tab.Stats().Entries)
		}
		if round == 0 {
			first = tab.Bytes()
		} else if b := tab.Bytes(); b > first*5/4 {
			t.Fatalf("round %d: %d bytes, %d after the first", round, b, first)
		}
	}
	checkShards(t, tab)
}

// TestRemoveMatchesMap: random writes and removals read back as a map of
// them through every accessor; Scan returns every key present for the whole
// scan while others come and go; the sweep lists exactly the due keys.
func TestRemoveMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tab := NewTable()
	want := map[string]record.Record{}
	const space = 3000
	key := func() []byte { return fmt.Appendf(nil, "k%d", rng.IntN(space)) }
	step := func(ts uint64) {
		k := key()
		if rng.IntN(3) == 0 {
			_, ok := tab.Remove(k)
			_, had := want[string(k)]
			if ok != had {
				t.Fatalf("Remove(%s) = %v, the model holds it: %v", k, ok, had)
			}
			delete(want, string(k))
			return
		}
		rec := randomRecord(rng, ts)
		tab.Set(k, rec)
		want[string(k)] = rec
	}
	ts := uint64(2)
	for range 40000 {
		step(ts)
		ts++
	}
	checkShards(t, tab)
	var keys, expires int64
	for k, w := range want {
		got, ok := tab.Get([]byte(k))
		if len(w.Value.Data) == 0 {
			w.Value.Data = nil
		}
		if !ok || !record.Equal(got, w) {
			t.Fatalf("Get(%s) = %+v, want %+v", k, got, w)
		}
		if w.Exists() {
			keys++
			if w.Expiry.At != 0 {
				expires++
			}
		}
	}
	for i := range space {
		k := fmt.Sprintf("k%d", i)
		if _, ok := want[k]; !ok {
			if _, ok := tab.Get([]byte(k)); ok {
				t.Fatalf("removed key %s reads", k)
			}
		}
	}
	if tab.KeyCount() != keys || tab.ExpiresCount() != expires || tab.Stats().Entries != int64(len(want)) {
		t.Fatalf("counts %d/%d/%d, want %d/%d/%d", tab.KeyCount(), tab.ExpiresCount(), tab.Stats().Entries, keys, expires, len(want))
	}
	due := map[string]bool{}
	for k, w := range want {
		if at := w.Expiry.At; w.Exists() && at != 0 && at < 1500 {
			due[k] = true
		}
	}
	got := map[string]bool{}
	for _, k := range tab.Expired(1500, 1<<30) {
		got[string(k)] = true
	}
	if len(got) != len(due) {
		t.Fatalf("the sweep lists %d keys, %d are due", len(got), len(due))
	}
	for k := range due {
		if !got[k] {
			t.Fatalf("due key %s not listed", k)
		}
	}

	// A scan while keys are written and removed: the keys present
	// throughout (never touched from here on) are each returned.
	stable := map[string]bool{}
	for k := range want {
		if len(stable) < 500 {
			stable[k] = true
		}
	}
	seen := map[string]bool{}
	cursor := uint64(0)
	for {
		n := 0
		cursor = tab.Scan(cursor, func(k []byte, _ record.Record) bool {
			seen[string(k)] = true
			n++
			return n < 20
		})
		for range 30 {
			k := key()
			if stable[string(k)] {
				continue
			}
			if rng.IntN(2) == 0 {
				tab.Remove(k)
			} else {
				tab.Set(k, randomRecord(rng, ts))
				ts++
			}
		}
		if cursor == 0 {
			break
		}
	}
	for k := range stable {
		if !seen[k] {
			t.Fatalf("key %s, present for the whole scan, was not returned", k)
		}
	}
	checkShards(t, tab)
}

// TestClearSlotKeepsProbeRuns: removals from full, wrapping probe runs of
// colliding tags keep every other key found.
func TestClearSlotKeepsProbeRuns(t *testing.T) {
	s := &shard{}
	s.init(16)
	keys := map[uint32][]byte{}
	// Tags chosen to collide at the table's end and wrap around.
	tags := []uint32{14, 14, 15, 14, 0, 1, 15, 2, 0, 13}
	for i, tag := range tags {
		k := fmt.Appendf(nil, "key%d", i)
		_, slot := s.find(k, tag)
		s.entries = append(s.entries, entry{})
		s.place(i, k, nil, true)
		s.slots[slot] = uint64(tag)<<32 | uint64(i+1)
		keys[uint32(i)] = k
	}
	for _, victim := range []int{0, 4, 1, 9, 6} {
		_, slot := s.find(keys[uint32(victim)], tags[victim])
		s.clearSlot(slot)
		delete(keys, uint32(victim))
		for n, k := range keys {
			if m, _ := s.find(k, tags[n]); m != int(n) {
				t.Fatalf("after removing key%d: key%d found as %d", victim, n, m)
			}
		}
	}
}

// TestAvgTTL: the mean time left to the deadlines, as keys come, change
// their deadline and go.
func TestAvgTTL(t *testing.T) {
	tab := NewTable()
	if tab.AvgTTL(1000) != 0 {
		t.Fatal("an empty table has a TTL")
	}
	const now = int64(1_700_000_000_000)
	tab.Set([]byte("a"), liveRecord(2, "v", now+1000))
	tab.Set([]byte("b"), liveRecord(2, "v", now+3000))
	tab.Set([]byte("c"), liveRecord(2, "v", 0))
	if got := tab.AvgTTL(now); got != 2000 {
		t.Fatalf("avg_ttl %d, want 2000", got)
	}
	tab.Set([]byte("a"), liveRecord(3, "v", now+5000))
	if got := tab.AvgTTL(now); got != 4000 {
		t.Fatalf("avg_ttl %d after a new deadline, want 4000", got)
	}
	tab.Remove([]byte("b"))
	if got := tab.AvgTTL(now); got != 5000 {
		t.Fatalf("avg_ttl %d after a removal, want 5000", got)
	}
	tab.Set([]byte("a"), record.Record{Value: record.Value{Version: version(4), Tombstone: true}})
	if got := tab.AvgTTL(now); got != 0 {
		t.Fatalf("avg_ttl %d with no deadline left, want 0", got)
	}
	// Many far deadlines overflow 64 bits; the mean does not.
	for i := range 20000 {
		tab.Set(fmt.Appendf(nil, "far%d", i), liveRecord(5, "v", 1<<50))
	}
	if got := tab.AvgTTL(now); got != 1<<50-now {
		t.Fatalf("avg_ttl %d, want %d", got, int64(1<<50)-now)
	}
}

// TestWalkVisitsWhatMayBeCollected: a walk in steps visits every tombstone
// once, no live string, and ends with cursor 0, while entries are removed
// and reused between steps.
func TestWalkVisitsWhatMayBeCollected(t *testing.T) {
	tab := NewTable()
	for i := range 5000 {
		k := fmt.Appendf(nil, "k%d", i)
		if i%2 == 0 {
			tab.Set(k, liveRecord(2, "v", 0))
		} else {
			tab.Set(k, record.Record{Value: record.Value{Version: version(2), Tombstone: true}})
		}
	}
	seen := map[string]int{}
	cursor, steps := uint64(0), 0
	for {
		cursor = tab.walk(cursor, 100, false, func(key []byte, rec record.Record) {
			if rec.Exists() {
				t.Fatalf("walk visited live %s", key)
			}
			seen[string(key)]++
		})
		steps++
		// Removals and new keys between steps, as collection and writers make.
		tab.Remove(fmt.Appendf(nil, "k%d", 2*steps))
		tab.Set(fmt.Appendf(nil, "new%d", steps), liveRecord(3, "v", 0))
		if cursor == 0 {
			break
		}
	}
	for i := 1; i < 5000; i += 2 {
		if c := seen[fmt.Sprintf("k%d", i)]; c != 1 {
			t.Fatalf("tombstone k%d visited %d times", i, c)
		}
	}
	if steps < 50 {
		t.Fatalf("5,000 entries by 100 took %d steps", steps)
	}
}

// TestCheckpointKeyTwiceKeepsTheLater: a checkpoint copied while a key was
// removed and written again into an entry the copy had not reached holds it
// twice, the later copy the later state; loading keeps that one.
func TestCheckpointKeyTwiceKeepsTheLater(t *testing.T) {
	key := []byte("k")
	shard := int(Hash(key) >> (64 - shardBits))
	var b []byte
	for _, rec := range []record.Record{liveRecord(2, "old", 0), liveRecord(5, "new", 0)} {
		b = binary.AppendUvarint(b, uint64(len(key)))
		b = append(b, key...)
		b = record.AppendBinary(b, rec)
	}
	tab := NewTable()
	if _, err := tab.loadShard(shard, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := tab.Get(key); string(got.Value.Data) != "new" || tab.KeyCount() != 1 || tab.Stats().Entries != 1 {
		t.Fatalf("loaded %q, %d keys, %d entries; want new, 1, 1", got.Value.Data, tab.KeyCount(), tab.Stats().Entries)
	}
}

// TestShrinkAfterChurn: a table filled, drained, filled again and drained
// part way (a cache of short-lived keys) reads back as a map of its writes
// after every phase, keeps its inner consistency, gives back the room a
// drained shard held, and lets a walk begun before a drain go on.
func TestShrinkAfterChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tab := NewTable()
	want := map[string]record.Record{}
	const space = 200_000
	ts := uint64(2)
	set := func(i int) {
		k := fmt.Sprintf("sess:%d", i)
		rec := liveRecord(ts, "v", int64(1000+rng.IntN(1000)))
		ts++
		tab.Set([]byte(k), rec)
		want[k] = rec
	}
	remove := func(i int) {
		k := fmt.Sprintf("sess:%d", i)
		_, ok := tab.Remove([]byte(k))
		if _, had := want[k]; ok != had {
			t.Fatalf("Remove(%s) = %v, the model holds it: %v", k, ok, had)
		}
		delete(want, k)
	}
	check := func(phase string) {
		t.Helper()
		checkShards(t, tab)
		for k, w := range want {
			if got, ok := tab.Get([]byte(k)); !ok || !record.Equal(got, w) {
				t.Fatalf("%s: Get(%s) = %+v, want %+v", phase, k, got, w)
			}
		}
		if tab.Stats().Entries != int64(len(want)) || tab.ExpiresCount() != int64(len(want)) {
			t.Fatalf("%s: %d entries, %d expires, want %d", phase, tab.Stats().Entries, tab.ExpiresCount(), len(want))
		}
	}
	for i := range space {
		set(i)
	}
	check("filled")
	full := tab.Bytes()

	// A walk begun now, at a shard's middle, goes on across the drain: it
	// still visits every key present for the whole of it.
	kept := map[string]bool{}
	for i := 0; i < space; i += 97 {
		kept[fmt.Sprintf("sess:%d", i)] = true
	}
	local := &Local{db: &DB{table: tab}}
	seen := map[string]bool{}
	visit := func(key []byte, _ record.Record) { seen[string(key)] = true }
	cursor := local.Walk(0, 1500, visit)
	for _, i := range rng.Perm(space) {
		if !kept[fmt.Sprintf("sess:%d", i)] {
			remove(i)
		}
	}
	check("drained to a hundredth")
	for cursor != 0 {
		cursor = local.Walk(cursor, 1500, visit)
	}
	for k := range kept {
		if !seen[k] {
			t.Fatalf("the walk missed %s, present throughout", k)
		}
	}
	// Its entries stay (the kept keys are spread over them) and so does
	// each shard's arena chunk; the slots, the deadline heap and the maps
	// go down to the keys held at the shard's last try, when it held at
	// most twice as many (or shrinkAfter more).
	for i := range tab.shards {
		s := &tab.shards[i]
		held := len(s.entries) - len(s.free)
		then := max(2*held, held+shrinkAfter)
		if len(s.slots) > 32*then/3+16 || cap(s.heap) > 4*then+64 || s.peak > 4*then {
			t.Fatalf("shard %d holding %d keys keeps %d slots, heap room %d, map peak %d",
				i, held, len(s.slots), cap(s.heap), s.peak)
		}
	}
	if b := tab.Bytes(); b > full*3/4 {
		t.Fatalf("drained to a hundredth of its keys, the table holds %d bytes of %d", b, full)
	}

	for k := range kept {
		var i int
		fmt.Sscanf(k, "sess:%d", &i)
		remove(i)
	}
	check("emptied")
	for i := range tab.shards {
		s := &tab.shards[i]
		if len(s.entries) != 0 || len(s.free) != 0 || len(s.slots) != 16 || cap(s.heap) > 64 || s.peak != 0 {
			t.Fatalf("emptied shard %d keeps %d entries, %d free, %d slots, heap room %d, map peak %d",
				i, len(s.entries), len(s.free), len(s.slots), cap(s.heap), s.peak)
		}
	}
	for i := range space / 2 {
		set(space + i)
	}
	check("filled again")
}
