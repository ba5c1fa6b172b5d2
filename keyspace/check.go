package keyspace

import (
	"bytes"
	"fmt"
	"log/slog"
	"time"

	"github.com/redmesh/redmesh/record"
	"github.com/redmesh/redmesh/wal"
)

// CheckReport is what Check found.
type CheckReport struct {
	Keys       int64 // keys holding a value
	Entries    int64 // keys, tombstones included
	LogEntries int   // entries in the retained log
	FullLog    bool  // the log holds every write since the store began
}

// Check verifies a closed store: its last checkpoint and the log after it
// load, the log's sequence numbers are contiguous, and, when the log still
// holds every write since the store began, replaying the whole log alone
// gives the keyspace the checkpoint and its tail give, as clients read it. It reads
// everything, so it is for tests and operators, not the hot path.
func Check(log *wal.Store) (CheckReport, error) {
	var rep CheckReport
	if log.Legacy() {
		return rep, fmt.Errorf("the store is of the layout before; start a node on it to convert it")
	}
	db := newDB(Options{Log: log, Logger: slog.New(slog.DiscardHandler)})
	if err := db.load(); err != nil {
		return rep, err
	}
	st := db.table.Stats()
	rep.Keys, rep.Entries = db.table.KeyCount(), st.Entries
	first, last := log.LogBounds()
	rep.FullLog = first == 1
	replay := newDB(Options{Log: log, Logger: db.lg})
	next := first
	err := log.Replay(first, func(e wal.Entry) error {
		if e.Seq != next {
			return fmt.Errorf("log entry %d where %d was due", e.Seq, next)
		}
		next++
		rep.LogEntries++
		replay.replay(e.Key, e.Record)
		return nil
	})
	if err != nil {
		return rep, err
	}
	if next != last+1 {
		return rep, fmt.Errorf("the log ends at %d, its bounds say %d", next-1, last)
	}
	if !rep.FullLog {
		return rep, nil
	}
	// Collection and the expiry sweep are never logged: the log may replay
	// a tombstone or an expired value that the checkpoint no longer holds,
	// so what is compared is what a client reads.
	now := time.Now().UnixMilli()
	var diff error
	compare := func(from *DB) {
		var keys [][]byte
		from.table.Each(1, func(_ int, key []byte, rec record.Record) {
			if rec.Live(now) {
				keys = append(keys, bytes.Clone(key))
			}
		})
		for _, key := range keys {
			got, _ := replay.table.Get(key)
			want, _ := db.table.Get(key)
			if diff == nil && !sameLive(got, want, now) {
				diff = fmt.Errorf("key %q: the log replays to %+v, the checkpoint and its tail hold %+v", key, got.Versions(), want.Versions())
			}
		}
	}
	compare(db)
	compare(replay)
	return rep, diff
}

// sameLive reports whether two records read the same to a client at now:
// both absent (never written, deleted or expired), or the same registers and
// typed content.
func sameLive(a, b record.Record, now int64) bool {
	if !a.Live(now) || !b.Live(now) {
		return a.Live(now) == b.Live(now)
	}
	if a.Value.Version != b.Value.Version || a.Value.Tombstone != b.Value.Tombstone ||
		!bytes.Equal(a.Value.Data, b.Value.Data) || a.Expiry != b.Expiry {
		return false
	}
	if a.Typed == nil || b.Typed == nil {
		return a.Typed == b.Typed
	}
	return a.Kind() == b.Kind() && a.Typed.Len() == b.Typed.Len() && bytes.Equal(a.StringData(), b.StringData())
}
