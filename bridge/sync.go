package bridge

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/record"
)

// sync compares the whole backend with the node and repairs both: the
// take-in at start, after the backend was down or restarted, after the
// queue overflowed or notifications may have been missed, and every
// AuditInterval.
//
// Per backend key: a state the shadow knows is unchanged since the bridge
// last saw it; any other was changed there and is taken in. When the
// shadow describes this run of the backend, the audit is cheap: one script
// call answers a batch's digests, and only keys whose digest the shadow
// does not know are read. Per node key: one whose state differs from what
// the shadow says the backend holds is written to the backend. A key the
// node holds and the backend lacks was deleted there if the shadow says
// this run of the backend had it; otherwise (first start, a backend
// restarted empty) the backend is refilled from the node, never taken as a
// mass delete. A restarted backend holding a key in another state than the
// bridge last saw there loaded an older copy (RDB, AOF): the node's state is
// written over it.
func (b *Bridge) sync(ctx context.Context) error {
	b.syncing.Store(true)
	defer b.syncing.Store(false)
	// Connect again: a backend restarted since the last command (a new
	// run ID) has lost its scripts and its notification setting too.
	if err := b.connect(ctx); err != nil {
		return err
	}
	start := time.Now()
	restarted := b.runID != b.shadowRunID
	cheap := !restarted && b.shadow.Len() > 0
	b.takeIn.reset()
	b.st.audits.Add(1)
	if size, err := b.rdb.DBSize(ctx).Result(); err == nil {
		b.takeIn.Estimate.Store(size)
	}
	if restarted {
		b.log.Info("taking in the backend's dataset", "keys", b.takeIn.Estimate.Load(), "known_run", b.shadowRunID != "")
	}
	seen := map[uint64]struct{}{}
	fixes := int64(0)
	var cursor uint64
	lastLog := time.Now()
	for {
		keys, next, err := b.rdb.Scan(ctx, cursor, "", int64(b.opts.Batch)).Result()
		if err != nil {
			return fmt.Errorf("SCAN backend: %w", err)
		}
		for _, k := range keys {
			seen[keyHash(k)] = struct{}{}
		}
		read := keys
		if cheap && len(keys) > 0 {
			if read, err = b.changedKeys(ctx, keys); err != nil {
				return err
			}
		}
		if len(read) > 0 {
			states, err := readSettled(ctx, b.r, read)
			if err != nil {
				return err
			}
			var seen []seenState
			err = b.n.UpdateLocal(ctx, func(l *node.LocalTx) error {
				seen = seen[:0]
				for i, k := range read {
					s := states[i]
					h, d := keyHash(k), s.Digest()
					b.takeIn.count(s)
					if b.foreignType(h, s) {
						continue
					}
					if b.knows(h, d) {
						continue
					}
					if _, had := b.shadow.Get(h); had && restarted {
						// A restarted backend that holds another state
						// than the one the bridge last saw there loaded an
						// older copy (its RDB or AOF): the node's state,
						// newer, is written back over it.
						seen = append(seen, seenState{h: h, s: s})
						continue
					}
					c := b.since(h)
					if restarted {
						c = change{additive: true}
					}
					w, err := takeIn(l, []byte(k), s, c)
					if err != nil {
						return fmt.Errorf("take in key %q from backend: %w", k, err)
					}
					if w {
						b.takeIn.Written.Add(1)
						fixes++
					}
					seen = append(seen, seenState{h: h, s: s})
				}
				return nil
			})
			if err != nil {
				return err
			}
			b.rememberAll(seen)
		}
		if err := b.pushOut(ctx, keys); err != nil {
			return err
		}
		b.takeIn.Scanned.Add(int64(len(keys)))
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			b.log.Info("backend audit progress", "keys", b.takeIn.Scanned.Load(), "of_about", b.takeIn.Estimate.Load(), "taken_in", b.takeIn.Written.Load())
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	refilled, deleted, err := b.syncNodeOnly(ctx, seen, restarted)
	if err != nil {
		return err
	}
	for h := range b.shadow.All() { // keys neither side holds any more
		if _, ok := seen[h]; !ok {
			b.shadow.Delete(h)
			b.shadowDirty = true
		}
	}
	b.st.shadowKeys.Store(int64(b.shadow.Len()))
	b.shadowRunID = b.runID
	b.shadowDirty = true
	b.takeIn.Done.Store(true)
	b.st.auditFixes.Add(fixes + deleted)
	b.log.Info("backend audit done", "keys", b.takeIn.Scanned.Load(), "taken_in", b.takeIn.Written.Load(),
		"deleted_there", deleted, "written_there", refilled, "whole", b.takeIn.Whole.Load(), "skipped", b.takeIn.Skipped.Load(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// changedKeys answers which of keys hold a state the shadow does not know,
// from their digests computed in the backend.
func (b *Bridge) changedKeys(ctx context.Context, keys []string) ([]string, error) {
	ds, err := digestScript.EvalSha(ctx, b.rdb, keys).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("digest %d keys in backend: %w", len(keys), err)
	}
	var out []string
	for i, k := range keys {
		d, err := strconv.ParseUint(ds[i], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("digest of key %q from backend: %q", k, ds[i])
		}
		if !b.knows(keyHash(k), d) {
			out = append(out, k)
		}
	}
	return out, nil
}

// syncNodeOnly walks the node's keys the backend scan did not return (seen
// holds those it did, and gets the node's too).
func (b *Bridge) syncNodeOnly(ctx context.Context, seen map[uint64]struct{}, restarted bool) (written, deleted int64, err error) {
	var cursor uint64
	for {
		var batch []string
		cursor = b.n.ScanKeys(cursor, func(key []byte, _ record.Record) bool {
			k := string(key)
			h := keyHash(k)
			if _, ok := seen[h]; !ok {
				seen[h] = struct{}{}
				batch = append(batch, k)
			}
			return len(batch) < b.opts.Batch
		})
		var push []string
		var gone []seenState // what the backend does not hold, once committed
		err := b.n.UpdateLocal(ctx, func(l *node.LocalTx) error {
			push, gone = push[:0], gone[:0]
			for _, k := range batch {
				_, live, err := l.Get([]byte(k))
				if err != nil {
					return err
				}
				h := keyHash(k)
				_, had := b.shadow.Get(h)
				switch {
				case !live:
					gone = append(gone, seenState{h: h})
				case had && !restarted:
					// This run of the backend had it, and it is gone:
					// deleted there (unless it expired there).
					w, err := takeIn(l, []byte(k), State{}, b.since(h))
					if err != nil {
						return err
					}
					gone = append(gone, seenState{h: h})
					if w {
						deleted++
					} else {
						push = append(push, k)
					}
				default:
					gone = append(gone, seenState{h: h}) // the backend does not hold it
					push = append(push, k)
				}
			}
			return nil
		})
		if err != nil {
			return written, deleted, err
		}
		b.rememberAll(gone)
		if err := b.pushOut(ctx, push); err != nil {
			return written, deleted, err
		}
		written += int64(len(push))
		if cursor == 0 {
			return written, deleted, nil
		}
	}
}
