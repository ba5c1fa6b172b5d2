package sim

// event is one thing that happens at a virtual instant. Events at the same
// instant run in the order they were scheduled (seq), so a run depends only
// on the seed.
type event struct {
	at  int64 // virtual nanoseconds since the start
	seq uint64
	evWhat
}

// evWhat is what an event does: fn, or a push's delivery to node to (of
// incarnation inc when sent), carried here rather than in a closure:
// nearly every event of a large run is one, and two closures a copy were
// a fifth of its allocation and each a cache miss when it ran.
type evWhat struct {
	fn   func()
	push *pushMsg
	to   int32
	inc  uint32
}

// evKey is an event's place in the order.
type evKey struct {
	at  int64
	seq uint64
}

func (a evKey) before(b evKey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// queue is a 4-ary min-heap of events by (at, seq). A large run holds
// millions of events; with four children a node the heap is half as deep
// as a binary one. The keys are kept apart from what the events do, and a
// node's four children's keys fill one cache line (the keys start keyOff
// slots in, so that each group of children begins on a 64-byte boundary of
// a large slice, which the runtime allocates page-aligned): a level of a
// pop reads one line of keys and moves one event's what, where whole
// events spread the children over three lines. Events move into the hole
// a push or pop leaves rather than by swaps. (at, seq) is unique, so the
// order events run in is the same whatever the heap's shape.
type queue struct {
	keys []evKey // keys[keyOff+i] is heap node i's
	what []evWhat
	seq  uint64
}

const keyOff = 3

// push queues e (at, and fn or push) after every event already queued for
// its instant.
func (q *queue) push(e event) {
	q.seq++
	k := evKey{e.at, q.seq}
	if q.keys == nil {
		q.keys = make([]evKey, keyOff, 64)
	}
	q.keys = append(q.keys, k)
	q.what = append(q.what, e.evWhat)
	i := len(q.what) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !k.before(q.keys[keyOff+p]) {
			break
		}
		q.keys[keyOff+i], q.what[i] = q.keys[keyOff+p], q.what[p]
		i = p
	}
	q.keys[keyOff+i], q.what[i] = k, e.evWhat
}

func (q *queue) pop() event {
	k, w := q.keys[keyOff], q.what[0]
	n := len(q.what) - 1
	lastK, lastW := q.keys[keyOff+n], q.what[n]
	q.what[n] = evWhat{}
	q.keys, q.what = q.keys[:keyOff+n], q.what[:n]
	if n > 0 {
		keys := q.keys[keyOff:]
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			m := c
			for j := c + 1; j < c+4 && j < n; j++ {
				if keys[j].before(keys[m]) {
					m = j
				}
			}
			if !keys[m].before(lastK) {
				break
			}
			keys[i], q.what[i] = keys[m], q.what[m]
			i = m
		}
		keys[i], q.what[i] = lastK, lastW
	}
	return event{at: k.at, seq: k.seq, evWhat: w}
}

func (q *queue) len() int { return len(q.what) }

func (q *queue) peek() int64 { return q.keys[keyOff].at }
