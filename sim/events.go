package sim

// event is one thing that happens at a virtual instant. Events at the same
// instant run in the order they were scheduled (seq), so a run depends only
// on the seed.
type event struct {
	at  int64 // virtual nanoseconds since the start
	seq uint64
	fn  func()
	// A push's delivery to node to (of incarnation inc when sent) is
	// carried here rather than in a closure: nearly every event of a large
	// run is one, and a closure a copy (two, with the network's) would be
	// an allocation and a cache miss each.
	push *pushMsg
	to   int32
	inc  uint32
}

// queue is a 4-ary min-heap of events by (at, seq). A large run holds
// millions of events; with four children a node the heap is half as deep
// as a binary one, and each level's children share a cache line or two,
// so a pop touches about half the cache lines. Events move into the hole
// a push or pop leaves rather than by swaps. (at, seq) is unique, so the
// order events run in is the same whatever the heap's shape.
type queue struct {
	h   []event
	seq uint64
}

func before(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// push queues e (at, and fn or push) after every event already queued for
// its instant.
func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !before(&e, &q.h[p]) {
			break
		}
		q.h[i] = q.h[p]
		i = p
	}
	q.h[i] = e
}

func (q *queue) pop() event {
	e := q.h[0]
	n := len(q.h) - 1
	last := q.h[n]
	q.h[n] = event{}
	q.h = q.h[:n]
	if n == 0 {
		return e
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if before(&q.h[k], &q.h[m]) {
				m = k
			}
		}
		if !before(&q.h[m], &last) {
			break
		}
		q.h[i] = q.h[m]
		i = m
	}
	q.h[i] = last
	return e
}

func (q *queue) len() int { return len(q.h) }

func (q *queue) peek() int64 { return q.h[0].at }
