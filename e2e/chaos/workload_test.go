package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The workload's keys come in three classes, each checked its own way:
//
//	u/N/W/S  written once (SET, some with a TTL), never touched again: an
//	         acknowledged one must be on every node with its value.
//	d/N/W/S  written once, then deleted by the same client once the SET was
//	         acknowledged: after an acknowledged DEL it must be gone everywhere.
//	s/K      shared by every client at every node: SETs (some with a TTL) and
//	         DELs, each in MULTI with MESH VERSION, so the history holds the
//	         exact version the write took; the key's final version must be at
//	         least that of every acknowledged write, and equal only to the
//	         write that won. Reads of MESH VERSION alone record which
//	         version a node held when: another node's version may be at most
//	         --max-clock-skew ahead of the reading node's clock.
//
// and typed keys, shared by every client at every node unless said
// otherwise (typed_workload_test.go):
//
//	cnt/K    counters: INCRBY and DECRBY only.
//	set/K    sets: SADD and SREM of a few members.
//	hash/K   hashes: HSET and HDEL of fields f*, HINCRBY of fields n*.
//	zset/K   sorted sets: ZADD CH and ZREM of members a*, ZINCRBY of i*.
//	list/K   lists: LPUSH, RPUSH, LPOP, RPOP, LINSERT and LSET (with the
//	         LINDEX it overwrites, in one MULTI); every value written is
//	         unique, so the checker follows each value (list_checker_test.go).
//	tdel/N/W/S one client's typed key, made by one typed write, then
//	         deleted once that was acknowledged.
const (
	sharedKeys = 24
	ttl        = time.Hour // long enough never to expire during a run
)

type opKind uint8

const (
	opSet opKind = iota
	opDel
	opRead // MESH VERSION of a shared key
	opIncr // INCRBY (DECRBY: a negative Delta)
	opSAdd
	opSRem
	opHSet
	opHDel
	opHIncr
	opZAdd // ZADD CH: Delta is the score
	opZIncr
	opZRem
	opLPush   // Value pushed; Reply the length
	opRPush   // Value pushed; Reply the length
	opLPop    // Value popped; Reply 1 if one was, 0 if the list was empty
	opRPop    // as opLPop
	opLInsert // Value inserted next to pivot Elem; Reply the length, -1 (no pivot) or 0 (no list)
	opLSet    // Value written at Index over Elem, the value LINDEX found there in the same MULTI
)

var opNames = [...]string{"SET", "DEL", "MESH VERSION", "INCRBY", "SADD", "SREM", "HSET", "HDEL", "HINCRBY", "ZADD", "ZINCRBY", "ZREM",
	"LPUSH", "RPUSH", "LPOP", "RPOP", "LINSERT", "LSET"}

func (k opKind) String() string { return opNames[k] }

type outcome uint8

const (
	ok      outcome = iota // acknowledged
	failed                 // an error reply: refused
	unknown                // no reply (timeout, connection lost): may or may not have happened
)

// version is a register version as MESH VERSION shows it.
type version struct {
	TS   int64
	Node string // 16 hex digits: compares as the node ID does
}

func (v version) less(o version) bool {
	return v.TS < o.TS || v.TS == o.TS && v.Node < o.Node
}

func (v version) String() string { return fmt.Sprintf("%d.%d@%s", v.TS>>16, v.TS&0xffff, v.Node) }

// op is one request of the workload and what came of it.
type op struct {
	Node, Worker int
	Kind         opKind
	Key, Value   string
	TTL          bool
	Invoke, Done time.Time
	Outcome      outcome
	Err          string
	Deleted      int64   // DEL's reply
	Elem         string  // the member or field of a typed write
	Delta        int64   // an increment, or ZADD's score
	Reply        int64   // a typed write's integer reply
	Index        int64   // LSET's index
	Version      version // value register after a shared write or at a read, when acknowledged
}

// gate lets the harness stop the workload between requests and wait until
// none is in flight, so that it measures convergence with nothing moving.
type gate struct {
	mu       sync.Mutex
	cond     *sync.Cond
	closed   bool
	inflight int
}

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// enter waits while the gate is closed; false once ctx is done.
func (g *gate) enter(ctx context.Context) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.closed && ctx.Err() == nil {
		g.cond.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	g.inflight++
	return true
}

func (g *gate) exit() {
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
	g.cond.Broadcast()
}

// close stops new requests and waits for those in flight.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for g.inflight > 0 {
		g.cond.Wait()
	}
}

func (g *gate) open() {
	g.mu.Lock()
	g.closed = false
	g.mu.Unlock()
	g.cond.Broadcast()
}

// wake lets waiters see a cancelled context.
func (g *gate) wake() { g.cond.Broadcast() }

// worker is one client connection at one node, with its own history.
type worker struct {
	node, id int
	c        *redis.Client
	rng      *rand.Rand
	seq      int
	pending  []string          // d/ keys whose SET was acknowledged and not yet deleted
	tpending []string          // tdel/ keys whose typed write was acknowledged and not yet deleted
	lastPush map[string]string // list/ key -> the last value this worker wrote there: LINSERT's pivot
	history  []op
}

// run issues requests until ctx is done, pacing them at interval: the
// workload is meant to keep every node busy, not to saturate two cores.
func (w *worker) run(ctx context.Context, g *gate, interval time.Duration) {
	for g.enter(ctx) {
		w.step(ctx)
		g.exit()
		jitter := time.Duration(w.rng.Int64N(int64(interval)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval/2 + jitter):
		}
	}
}

func (w *worker) step(ctx context.Context) {
	w.seq++
	val := fmt.Sprintf("%d.%d.%d", w.node, w.id, w.seq)
	r := w.rng.Float64()
	switch {
	case r < 0.2:
		w.set(ctx, fmt.Sprintf("u/%d/%d/%d", w.node, w.id, w.seq), val, w.rng.IntN(4) == 0)
	case r < 0.3:
		if len(w.pending) > 0 && w.rng.IntN(2) == 0 {
			key := w.pending[0]
			w.pending = w.pending[1:]
			w.del(ctx, key)
			return
		}
		key := fmt.Sprintf("d/%d/%d/%d", w.node, w.id, w.seq)
		if w.set(ctx, key, val, false) {
			w.pending = append(w.pending, key)
		}
	case r < 0.46:
		key := fmt.Sprintf("s/%d", w.rng.IntN(sharedKeys))
		if r < 0.36 {
			w.read(ctx, key)
			return
		}
		if w.rng.IntN(5) == 0 {
			w.shared(ctx, opDel, key, "", false)
		} else {
			w.shared(ctx, opSet, key, val, w.rng.IntN(3) == 0)
		}
	default:
		w.typedStep(ctx, (r-0.46)/0.54, val)
	}
}

func (w *worker) record(o op, err error) op {
	o.Node, o.Worker, o.Done = w.node, w.id, time.Now()
	o.Outcome = classify(err)
	if err != nil {
		o.Err = err.Error()
	}
	w.history = append(w.history, o)
	return o
}

// classify tells a refusal (the server answered with an error: nothing was
// written) from a request whose fate is unknown.
func classify(err error) outcome {
	if err == nil {
		return ok
	}
	var rerr redis.Error
	var nerr net.Error
	switch {
	case errors.As(err, &nerr), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unknown
	case errors.As(err, &rerr):
		return failed
	default:
		return unknown
	}
}

func (w *worker) set(ctx context.Context, key, val string, withTTL bool) bool {
	o := op{Kind: opSet, Key: key, Value: val, TTL: withTTL, Invoke: time.Now()}
	var exp time.Duration
	if withTTL {
		exp = ttl
	}
	err := w.c.Set(ctx, key, val, exp).Err()
	return w.record(o, err).Outcome == ok
}

func (w *worker) del(ctx context.Context, key string) {
	o := op{Kind: opDel, Key: key, Invoke: time.Now()}
	n, err := w.c.Del(ctx, key).Result()
	o.Deleted = n
	w.record(o, err)
}

// read records the version of a shared key the node holds.
func (w *worker) read(ctx context.Context, key string) {
	o := op{Kind: opRead, Key: key, Invoke: time.Now()}
	raw, err := w.c.Do(ctx, "MESH", "VERSION", key).Result()
	if err == nil {
		o.Version, err = parseVersion(raw)
	}
	w.record(o, err)
}

// shared writes a shared key and reads the version it took in the same
// transaction.
func (w *worker) shared(ctx context.Context, kind opKind, key, val string, withTTL bool) {
	o := op{Kind: kind, Key: key, Value: val, TTL: withTTL, Invoke: time.Now()}
	var del *redis.IntCmd
	var ver *redis.Cmd
	_, err := w.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if kind == opDel {
			del = p.Del(ctx, key)
		} else {
			var exp time.Duration
			if withTTL {
				exp = ttl
			}
			p.Set(ctx, key, val, exp)
		}
		ver = p.Do(ctx, "MESH", "VERSION", key)
		return nil
	})
	if err == nil {
		if del != nil {
			o.Deleted = del.Val()
		}
		o.Version, err = parseVersion(ver.Val())
	}
	w.record(o, err)
}

// parseVersion reads MESH VERSION's reply: value TS, value node, expiry TS,
// expiry node.
func parseVersion(v any) (version, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 4 {
		return version{}, fmt.Errorf("MESH VERSION replied %#v", v)
	}
	ts, ok1 := a[0].(int64)
	node, ok2 := a[1].(string)
	if !ok1 || !ok2 {
		return version{}, fmt.Errorf("MESH VERSION replied %#v", v)
	}
	return version{ts, node}, nil
}

// workload is every worker at every node.
type workload struct {
	gate    *gate
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startWorkload starts perNode workers at each node, issuing rate requests a
// second per node in all.
func startWorkload(nodes []*node, perNode int, rate float64, seed int64) *workload {
	ctx, cancel := context.WithCancel(context.Background())
	wl := &workload{gate: newGate(), cancel: cancel}
	interval := time.Duration(float64(perNode) / rate * float64(time.Second))
	for _, n := range nodes {
		for i := range perNode {
			w := &worker{
				node: n.i, id: i,
				c:   redis.NewClient(n.options()),
				rng: rand.New(rand.NewPCG(uint64(seed), uint64(n.i<<16|i))),
			}
			wl.workers = append(wl.workers, w)
			wl.wg.Go(func() { w.run(ctx, wl.gate, interval) })
		}
	}
	return wl
}

// stop ends the workload and returns its history.
func (wl *workload) stop() []op {
	wl.cancel()
	wl.gate.wake()
	wl.wg.Wait()
	var h []op
	for _, w := range wl.workers {
		w.c.Close()
		h = append(h, w.history...)
	}
	return h
}

// summary counts the history's requests by class and outcome.
func summarize(h []op) map[string]int {
	out := map[string]int{}
	for _, o := range h {
		class, _, _ := strings.Cut(o.Key, "/")
		out[fmt.Sprintf("%s %s %s", class, strings.ToLower(o.Kind.String()), [...]string{"ok", "failed", "unknown"}[o.Outcome])]++
	}
	return out
}
