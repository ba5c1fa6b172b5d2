package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/node"
)

// TakeInStats counts a take-in of a backend's dataset.
type TakeInStats struct {
	Scanned atomic.Int64 // keys SCAN returned
	Written atomic.Int64 // keys that changed the node
	// Skipped counts keys the bridge could not read (their payload could
	// not be dumped). Whole counts keys of types redmesh does not model,
	// carried whole: Streams of them streams, Others modules' types.
	Skipped  atomic.Int64
	Whole    atomic.Int64
	Streams  atomic.Int64
	Others   atomic.Int64
	Done     atomic.Bool
	Estimate atomic.Int64 // DBSIZE at the start
}

// reset zeroes the counts for a new pass over the backend.
func (s *TakeInStats) reset() {
	for _, c := range []*atomic.Int64{&s.Scanned, &s.Written, &s.Skipped, &s.Whole, &s.Streams, &s.Others} {
		c.Store(0)
	}
	s.Done.Store(false)
}

// count counts a key read in a take-in or audit by its kind.
func (s *TakeInStats) count(st State) {
	switch {
	case st.Kind == Other:
		s.Skipped.Add(1)
	case st.Kind == Whole && st.Type == "stream":
		s.Whole.Add(1)
		s.Streams.Add(1)
	case st.Kind == Whole:
		s.Whole.Add(1)
		s.Others.Add(1)
	}
}

// TakeInOptions tune a take-in.
type TakeInOptions struct {
	// Count is SCAN's COUNT and the keys read per pipeline (1,000).
	Count int64
	// Additive: nothing the node holds is removed because the backend
	// lacks it (see takeIn).
	Additive bool
	// Progress is how often progress is logged (5 s).
	Progress time.Duration
	// Seen, if set, is told each key's state as the backend held it.
	Seen func(key string, s State)
}

type takeInBatch struct {
	keys   []string
	states []State
}

// TakeIn reads the whole dataset of the backend (SCAN with COUNT, then
// pipelined type-aware reads) and writes it into the node as local writes,
// each key with a fresh version, through the node's write path: one step of
// the write path per batch. Keys of types redmesh does not model (lists,
// streams, modules' types) are carried whole, as their DUMP payload. Reading
// the next batch overlaps writing this one.
func TakeIn(ctx context.Context, rdb *redis.Client, n *node.Node, opts TakeInOptions, stats *TakeInStats, log *slog.Logger) error {
	if opts.Count <= 0 {
		opts.Count = 1000
	}
	if opts.Progress <= 0 {
		opts.Progress = 5 * time.Second
	}
	r, err := newReader(ctx, rdb)
	if err != nil {
		return err
	}
	if size, err := rdb.DBSize(ctx).Result(); err == nil {
		stats.Estimate.Store(size)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan takeInBatch, 4)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- scanAndRead(ctx, rdb, r, opts.Count, stats, batches)
	}()
	start, lastLog := time.Now(), time.Now()
	for b := range batches {
		if err := writeBatch(ctx, n, b, opts, stats); err != nil {
			cancel()
			for range batches { // let the reader end
			}
			return err
		}
		if time.Since(lastLog) >= opts.Progress {
			lastLog = time.Now()
			log.Info("take-in progress", "keys", stats.Scanned.Load(), "of_about", stats.Estimate.Load(),
				"written", stats.Written.Load(), "skipped", stats.Skipped.Load(), "elapsed", time.Since(start).Round(time.Millisecond))
		}
	}
	if err := <-readErr; err != nil {
		return err
	}
	stats.Done.Store(true)
	log.Info("take-in done", "keys", stats.Scanned.Load(), "written", stats.Written.Load(),
		"whole", stats.Whole.Load(), "streams", stats.Streams.Load(), "module_types", stats.Others.Load(), "skipped", stats.Skipped.Load(), "took", time.Since(start).Round(time.Millisecond))
	if stats.Skipped.Load() > 0 {
		log.Warn("keys that could not be read were not taken in", "count", stats.Skipped.Load())
	}
	return nil
}

// scanAndRead walks the backend with SCAN and sends each batch of keys with
// their states.
func scanAndRead(ctx context.Context, rdb *redis.Client, r *reader, count int64, stats *TakeInStats, out chan<- takeInBatch) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "", count).Result()
		if err != nil {
			return fmt.Errorf("SCAN backend at cursor %d: %w", cursor, err)
		}
		if len(keys) > 0 {
			states, err := readSettled(ctx, r, keys)
			if err != nil {
				return err
			}
			stats.Scanned.Add(int64(len(keys)))
			select {
			case out <- takeInBatch{keys, states}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// readSettled reads keys, reading again (a few times) those that changed
// type in the middle of a read.
func readSettled(ctx context.Context, r *reader, keys []string) ([]State, error) {
	states, err := r.read(ctx, keys)
	if err != nil {
		return nil, err
	}
	for range 3 {
		var again []int
		for i, s := range states {
			if s.Kind == Other && s.Type == "" {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		ks := make([]string, len(again))
		for j, i := range again {
			ks[j] = keys[i]
		}
		fresh, err := r.read(ctx, ks)
		if err != nil {
			return nil, err
		}
		for j, i := range again {
			states[i] = fresh[j]
		}
	}
	return states, nil
}

// writeBatch writes a batch into the node in one step of the write path.
func writeBatch(ctx context.Context, n *node.Node, b takeInBatch, opts TakeInOptions, stats *TakeInStats) error {
	err := n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		written := int64(0)
		for i, k := range b.keys {
			s := b.states[i]
			if s.Kind == Other {
				continue
			}
			w, err := takeIn(l, []byte(k), s, change{additive: opts.Additive})
			if err != nil {
				return fmt.Errorf("take in key %q: %w", k, err)
			}
			if w {
				written++
			}
		}
		stats.Written.Add(written)
		return nil
	})
	if err != nil {
		return err
	}
	for i, s := range b.states {
		stats.count(s)
		if opts.Seen != nil {
			opts.Seen(b.keys[i], s)
		}
	}
	return nil
}
