package shadow

import (
	"bytes"
	"encoding/binary"
	"maps"
	"reflect"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func entries(m *Map) map[uint64]Entry { return maps.Collect(m.All()) }

func sample() *Map {
	m := &Map{}
	m.Put(1, Entry{Digest: 2, Kind: KindString})
	m.Put(2, Entry{Digest: 3, Kind: KindString, At: 1700000000000})
	m.Put(4, Entry{Digest: 5, Kind: KindString, Num: -7, HasNum: true})
	m.Put(6, Entry{Digest: 7, Kind: KindString, Num: 1 << 40, HasNum: true, At: 9})
	m.Put(3, Entry{Digest: 4, Kind: 2, At: 1700000000000, Elems: NewElems([]uint64{1, 3}, []uint64{2, 4})})
	m.Put(5, Entry{Digest: 6, Kind: 2, Elems: &Elems{Names: []uint64{1, 3}, Parts: []uint64{2, 4}, Nums: []int64{0, -1 << 62}}})
	m.Put(1<<63, Entry{Digest: 5, Kind: 5, At: -1, Elems: NewElems([]uint64{7}, []uint64{0})})
	m.Put(8, Entry{Digest: 6, Kind: 6})
	return m
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	if m.Len() != 8 {
		t.Fatalf("%d entries", m.Len())
	}
	if e, _ := m.Get(1 << 63); e.Elems.Parts != nil {
		t.Fatal("parts all 0 kept")
	}
	run, got, err := Decode(Encode("run", m))
	if err != nil || run != "run" || !reflect.DeepEqual(entries(got), entries(m)) {
		t.Fatalf("got %q %v %v, want %v", run, entries(got), err, entries(m))
	}
	b := Encode("run", m)
	b[len(b)-9] ^= 1
	if _, _, err := Decode(b); err == nil {
		t.Fatal("a damaged file decoded")
	}
}

// TestPutMovesBetweenForms: an entry put again in another form (a string
// given a deadline, a string becoming a hash) is found in its new form only.
func TestPutMovesBetweenForms(t *testing.T) {
	m := &Map{}
	for _, e := range []Entry{
		{Digest: 1, Kind: KindString},
		{Digest: 2, Kind: KindString, HasNum: true, Num: 3},
		{Digest: 3, Kind: KindString, At: 4},
		{Digest: 4, Kind: 2, Elems: NewElems([]uint64{1}, []uint64{1})},
		{Digest: 5, Kind: KindString},
	} {
		m.Put(9, e)
		if got, ok := m.Get(9); !ok || !reflect.DeepEqual(got, e) || m.Len() != 1 {
			t.Fatalf("got %v %v (%d entries), want %v", got, ok, m.Len(), e)
		}
	}
	m.Delete(9)
	if _, ok := m.Get(9); ok || m.Len() != 0 {
		t.Fatal("deleted entry found")
	}
}

// TestReadsFormat3: a file of the previous format (names and parts side by
// side, no flags) reads as the same entries.
func TestReadsFormat3(t *testing.T) {
	buf := []byte(magic3)
	buf = binary.AppendUvarint(buf, 3)
	buf = append(buf, "run"...)
	buf = binary.AppendUvarint(buf, 2)
	for _, e := range []struct {
		h, d  uint64
		kind  byte
		at    int64
		elems [][2]uint64
	}{{1, 2, KindString, 0, nil}, {3, 4, 2, 5, [][2]uint64{{6, 7}, {8, 9}}}} {
		buf = binary.BigEndian.AppendUint64(buf, e.h)
		buf = binary.BigEndian.AppendUint64(buf, e.d)
		buf = append(buf, e.kind)
		buf = binary.AppendVarint(buf, e.at)
		buf = binary.AppendUvarint(buf, uint64(len(e.elems)))
		for _, el := range e.elems {
			buf = binary.BigEndian.AppendUint64(buf, el[0])
			buf = binary.BigEndian.AppendUint64(buf, el[1])
		}
	}
	buf = binary.BigEndian.AppendUint64(buf, xxhash.Sum64(buf))
	run, m, err := Decode(buf)
	want := map[uint64]Entry{
		1: {Digest: 2, Kind: KindString},
		3: {Digest: 4, Kind: 2, At: 5, Elems: &Elems{Names: []uint64{6, 8}, Parts: []uint64{7, 9}}},
	}
	if err != nil || run != "run" || !reflect.DeepEqual(entries(m), want) {
		t.Fatalf("got %q %v %v", run, entries(m), err)
	}
}

// FuzzDecode: damaged bytes are an error, never a crash or an allocation
// beyond their size.
func FuzzDecode(f *testing.F) {
	f.Add(Encode("abc", sample()))
	f.Add([]byte(magic))
	f.Add(bytes.Replace(Encode("abc", sample()), []byte(magic), []byte(magic3), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, m, err := Decode(data)
		if err != nil {
			return
		}
		elems := 0
		for _, e := range m.All() {
			elems += e.Elems.Len()
		}
		if m.Len()*entryMin3+elems*8 > len(data) {
			t.Fatalf("%d entries and %d elements from %d bytes", m.Len(), elems, len(data))
		}
	})
}
