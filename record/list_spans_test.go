package record

import (
	"runtime"
	"testing"
)

// A list pushed at its tail, as a load of RPUSHes leaves it, holds the
// heap's spans it is in about full once collected: its leaves' runs share
// no span with the garbage of the copies each push makes (maxRunBytes). The
// allocator moves no live object, so a collection returns no span that
// holds one leaf among freed slots. Leaves of 2 KiB, four to a span, fail
// the bound of a tenth over the list's live bytes.
func TestListSpansAfterLoad(t *testing.T) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	alloc, inuse := ms.HeapAlloc, ms.HeapInuse
	list := pushedList(300_000, func(cur Record) (lo, hi []byte) {
		if v := cur.Typed.ListView(); v.Len() > 0 {
			lo = v.At(v.Len() - 1).Name
		}
		return lo, nil
	})
	runtime.GC()
	runtime.ReadMemStats(&ms)
	live := int64(ms.HeapAlloc) - int64(alloc)
	spans := int64(ms.HeapInuse) - int64(inuse)
	if spans-live > live/10 {
		t.Errorf("a list of %d: spans in use %d bytes for %d live (%.0f%% over)", list.Typed.ListLen(), spans, live, 100*float64(spans-live)/float64(live))
	}
	runtime.KeepAlive(list)
}
