package sim

// event is one thing that happens at a virtual instant. Events at the same
// instant run in the order they were scheduled (seq), so a run depends only
// on the seed.
type event struct {
	at  int64 // virtual nanoseconds since the start
	seq uint64
	fn  func()
}

// queue is a binary min-heap of events by (at, seq).
type queue struct {
	h   []event
	seq uint64
}

func (q *queue) less(i, j int) bool {
	a, b := &q.h[i], &q.h[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *queue) push(at int64, fn func()) {
	q.seq++
	q.h = append(q.h, event{at: at, seq: q.seq, fn: fn})
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) pop() event {
	e := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h[n] = event{}
	q.h = q.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			break
		}
		q.h[i], q.h[m] = q.h[m], q.h[i]
		i = m
	}
	return e
}

func (q *queue) len() int { return len(q.h) }

func (q *queue) peek() int64 { return q.h[0].at }
