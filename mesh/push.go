package mesh

// Batcher collects records for eager push. The caller adds each fresh write
// and sends whatever Add returns; when its own queue of writes has emptied
// it calls Flush and sends that too. So a burst leaves in batches of Max and
// a lone write leaves at once, never waiting for company.
type Batcher[T any] struct {
	// Max is the most records in one batch; zero means DefaultBatch.
	Max     int
	pending []T
}

// DefaultBatch is Batcher.Max when unset.
const DefaultBatch = 64

// Add queues r and returns a full batch to send, or nil.
func (b *Batcher[T]) Add(r T) []T {
	b.pending = append(b.pending, r)
	max := b.Max
	if max <= 0 {
		max = DefaultBatch
	}
	if len(b.pending) >= max {
		return b.take()
	}
	return nil
}

// Flush returns the queued records (nil if none): the caller's queue is
// empty, so they go now.
func (b *Batcher[T]) Flush() []T {
	if len(b.pending) == 0 {
		return nil
	}
	return b.take()
}

// Len is the number of queued records.
func (b *Batcher[T]) Len() int { return len(b.pending) }

// Reset drops the queued records (the node stopped).
func (b *Batcher[T]) Reset() { b.pending = nil }

func (b *Batcher[T]) take() []T {
	out := b.pending
	b.pending = nil
	return out
}
