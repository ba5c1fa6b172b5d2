package bridge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/go-redis/v9"

	"github.com/redmesh/redmesh/bridge/shadow"
	"github.com/redmesh/redmesh/keyspace"
	"github.com/redmesh/redmesh/node"
	"github.com/redmesh/redmesh/wal"
)

// Options configure a Bridge.
type Options struct {
	// URL is the backend: redis://[USER:PASSWORD@]HOST:PORT[/DB] or rediss://.
	URL  string
	Node *node.Node
	// ShadowFile keeps, across restarts, the digest of what the backend held
	// of each key when the bridge last wrote or read it ("": not kept).
	ShadowFile string
	// QueueLimit bounds the keys owed to the backend (100,000); beyond it
	// the bridge forgets them and audits the whole keyspace instead.
	QueueLimit int
	// Batch is the keys read or written per pipeline (1,000).
	Batch int
	// AuditInterval is how often the backend is compared with the node for
	// what notifications missed (5 minutes; negative: never).
	AuditInterval time.Duration
	// RetryInterval is how often a backend that is down is tried (1 s).
	RetryInterval time.Duration
	Logger        *slog.Logger
}

func (o *Options) setDefaults() {
	if o.QueueLimit <= 0 {
		o.QueueLimit = 100_000
	}
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.AuditInterval == 0 {
		o.AuditInterval = 5 * time.Minute
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Bridge keeps a backend Redis server in sync with a node. One goroutine
// (run) does all the work against the backend, in order: the take-in and
// audits, changes the backend notified, and writes the node owes the
// backend; the commit hook and the notification reader only queue keys.
type Bridge struct {
	opts   Options
	log    *slog.Logger
	n      *node.Node
	rdb    *redis.Client
	r      *reader
	prefix string // the backend's keyspace notification channel prefix
	// mark is the channel the bridge's scripts publish on before and after
	// their writes, so that their notifications, between the two, are known
	// for the bridge's own without the keys being read back.
	mark string

	mu       sync.Mutex
	owed     map[string]struct{} // keys whose node state the backend must get
	overflow bool                // owed passed QueueLimit: audit instead
	notified map[string]struct{} // keys the backend said changed
	// notes sums up, per notified key, the notifications since it was
	// last read.
	notes map[string]notes
	// removed keeps, per owed key, the names of elements its committed
	// writes removed (see noteRemoved).
	removed map[string]map[string]struct{}
	// later: keys whose write conflicted with a change in the backend,
	// written again at the next tick (if the change's take-in has not
	// written them meanwhile), and read again then where true.
	later  map[string]bool
	resync bool // notifications may have been missed: audit
	wake   chan struct{}

	// shadow is, per key hash, what the backend held when the bridge last
	// wrote or read the key (its base); run's alone.
	shadow      shadow.Map
	shadowRunID string // the backend run the shadow describes
	shadowDirty bool
	runID       string // the backend's run now (INFO run_id)
	// failures counts attempts in a row that failed; nextTry is when to try
	// again. run's alone (and Start's, before run).
	failures int
	nextTry  time.Time
	// foreign holds the key hashes the backend holds as a type redmesh
	// does not model: the bridge leaves them alone. conflicted counts a
	// key's write conflicts in a row. Both are run's alone.
	foreign    map[uint64]struct{}
	conflicted map[uint64]int

	up        atomic.Bool
	downSince atomic.Int64 // Unix ms
	lastErr   atomic.Pointer[string]
	syncing   atomic.Bool
	takeIn    TakeInStats
	st        counters

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

type counters struct {
	written, deltas, takenIn, echoes, conflicts, audits, auditFixes, overflows, shadowKeys, refused, endReads atomic.Int64
}

// Start connects to the backend, makes sure it sends keyspace notifications
// (CONFIG SET notify-keyspace-events when they are off), and starts keeping
// it in sync with the node: first the take-in of its whole dataset, merged
// with the node's, then notifications, writes and audits. A backend that
// cannot be reached at start is tried again in the background, as one that
// goes away later; one that refuses to send notifications is an error.
func Start(ctx context.Context, opts Options) (*Bridge, error) {
	opts.setDefaults()
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("backend URL %s: %w", Redact(opts.URL), err)
	}
	ro.Protocol = 2
	ro.ReadTimeout = 30 * time.Second
	ro.MaxRetries = -1 // the bridge retries itself, in order
	b := &Bridge{
		opts:     opts,
		log:      opts.Logger.With("backend", Redact(opts.URL)),
		n:        opts.Node,
		rdb:      redis.NewClient(ro),
		prefix:   fmt.Sprintf("__keyspace@%d__:", ro.DB),
		mark:     "__redmesh_bridge__:" + rand.Text(),
		owed:     map[string]struct{}{},
		notified: map[string]struct{}{},
		notes:    map[string]notes{},
		removed:  map[string]map[string]struct{}{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	b.foreign, b.conflicted = map[uint64]struct{}{}, map[uint64]int{}
	b.loadShadow()
	if err := b.connect(ctx); err != nil {
		if errors.Is(err, errNotifications) {
			b.rdb.Close()
			return nil, err
		}
		b.setDown(err)
	}
	b.n.OnCommit(b.committed)
	b.n.SetInfo(b.Info)
	b.done.Add(2)
	go b.run()
	go b.listen()
	return b, nil
}

// Close stops the bridge and keeps its shadow; what the node still owed the
// backend is found at the next start, by comparing against the shadow.
func (b *Bridge) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.n.OnCommit(nil)
		b.n.SetInfo(nil)
		close(b.stop)
		b.done.Wait()
		err = b.rdb.Close()
	})
	return err
}

// committed is the node's commit hook: every committed key is owed to the
// backend (those whose backend state already matches are skipped later).
func (b *Bridge) committed(entries []wal.Entry) {
	b.mu.Lock()
	for _, e := range entries {
		if b.overflow {
			break
		}
		if len(b.owed) >= b.opts.QueueLimit {
			b.overflow = true
			b.owed = map[string]struct{}{}
			clear(b.removed)
			b.st.overflows.Add(1)
			break
		}
		b.owed[string(e.Key)] = struct{}{}
		b.noteRemoved(e)
	}
	b.mu.Unlock()
	b.signal()
}

func (b *Bridge) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

var errNotifications = errors.New("keyspace notifications")

// notifyFlags are the classes of keyspace events the bridge needs: keyspace
// channel (K), generic commands (g), strings ($), hashes (h), sets (s),
// sorted sets (z), lists (l), streams (t), modules' types (d), expiry (x)
// and eviction (e). A stands for all of g$lshzxetd.
const notifyFlags = "Kg$hszltdxe"

// connect checks the backend, turns notifications on if needed, loads the
// scripts and notes whether the backend restarted since the shadow was
// taken.
func (b *Bridge) connect(ctx context.Context) error {
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("connect to backend: %w", err)
	}
	r, err := newReader(ctx, b.rdb)
	if err != nil {
		return err
	}
	if r.pttl {
		return fmt.Errorf("%w: the backend is older than Redis 7 (it has no PEXPIRETIME); the bridge needs Redis 7 or later", errNotifications)
	}
	b.r, b.runID = r, r.runID
	if err := b.ensureNotifications(ctx); err != nil {
		return err
	}
	for _, s := range []*redis.Script{writeScript, deltaScript, digestScript, readScript} {
		if err := s.Load(ctx, b.rdb).Err(); err != nil {
			return fmt.Errorf("load script into backend: %w", err)
		}
	}
	b.up.Store(true)
	b.lastErr.Store(nil)
	return nil
}

func (b *Bridge) ensureNotifications(ctx context.Context) error {
	cur, err := b.rdb.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		return fmt.Errorf("%w: CONFIG GET notify-keyspace-events on the backend: %v; set notify-keyspace-events to include %q in its configuration", errNotifications, err, notifyFlags)
	}
	flags := cur["notify-keyspace-events"]
	missing := ""
	for _, c := range notifyFlags {
		if !strings.ContainsRune(flags, c) && !(c != 'K' && strings.ContainsRune(flags, 'A')) {
			missing += string(c)
		}
	}
	if missing == "" {
		return nil
	}
	if err := b.rdb.ConfigSet(ctx, "notify-keyspace-events", flags+missing).Err(); err != nil {
		return fmt.Errorf("%w: the backend's notify-keyspace-events is %q, without %q, and CONFIG SET was refused (%v): set notify-keyspace-events to include %q in its configuration",
			errNotifications, flags, missing, err, notifyFlags)
	}
	b.log.Info("enabled keyspace notifications on the backend", "notify-keyspace-events", flags+missing)
	return nil
}

func (b *Bridge) setDown(err error) {
	msg := err.Error()
	b.lastErr.Store(&msg)
	b.failures = min(b.failures+1, 7)
	b.nextTry = time.Now().Add(min(b.opts.RetryInterval<<(b.failures-1), time.Minute))
	if b.up.Swap(false) || b.downSince.Load() == 0 {
		b.downSince.Store(time.Now().UnixMilli())
		b.log.Warn("backend down: the node serves on and keeps what it owes the backend", "err", err)
	}
}

// listen reads keyspace notifications and queues their keys. A broken
// subscription is renewed by go-redis; what it missed meanwhile is found by
// an audit. The notifications of the bridge's own writes come between its
// scripts' markers (on b.mark: "b" and the key, then "e"), on the same
// connection and in order, as a script runs whole: those of that key are
// skipped, so the bridge does not read back what it wrote. (A script that
// failed half-way, with no "e", leaves only that key's next notifications
// skipped, until the next marker; the audit finds what they told.)
func (b *Bridge) listen() {
	defer b.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := b.rdb.PSubscribe(ctx, b.prefix+"*")
	if err := ps.Subscribe(ctx, b.mark); err != nil {
		b.log.Warn("subscribe to the bridge's marker channel (its own writes are read back instead)", "err", err)
	}
	go func() {
		<-b.stop
		cancel()
		ps.Close() // a read blocked on the connection does not see ctx
	}()
	own, ownKey := false, "" // between a script's markers, and its key
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			own = false
			select {
			case <-time.After(b.opts.RetryInterval):
			case <-ctx.Done():
				return
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			own = false
			if m.Kind == "psubscribe" {
				// Changes made before the subscription took effect were
				// told to no one: an audit finds them.
				b.requestResync()
			}
		case *redis.Message:
			if m.Channel == b.mark {
				ownKey, own = strings.CutPrefix(m.Payload, "b")
				continue
			}
			key, ok := strings.CutPrefix(m.Channel, b.prefix)
			if !ok {
				continue
			}
			if own && key == ownKey {
				b.st.echoes.Add(1)
				continue
			}
			b.mu.Lock()
			if len(b.notified) < b.opts.QueueLimit {
				b.notified[key] = struct{}{}
				was, seen := b.notes[key]
				b.notes[key] = was.with(m.Payload, !seen)
			} else {
				b.resync = true
			}
			b.mu.Unlock()
			b.signal()
		}
	}
}

// notes sum up the keyspace notifications of a key since it was last
// read: what every one of them said.
type notes uint8

const (
	// notesIncr: every event was an increment's: zincr (ZINCRBY, ZADD
	// INCR), incrby (INCR, INCRBY, DECR, DECRBY), incrbyfloat, hincrby or
	// hincrbyfloat.
	notesIncr notes = 1 << iota
	// notesString: every event wrote a string's value and none set a
	// deadline (set, incrby, incrbyfloat, append, setrange): the key is a
	// string, and one that had no deadline has none.
	notesString
	// notesListEnds: every event pushed or popped at a list's ends
	// (lpush, rpush, lpop, rpop): the list is what it held with elements
	// gone from its ends and others pushed there.
	notesListEnds
)

// notesFlags are the bits of notes that say what every event said; the
// bits above them are the type the last event's command works on (a Kind,
// None for a generic command: DEL, EXPIRE, RENAME ...).
const notesFlags = 1<<4 - 1

// kind is the type of key the last event's command left (None: unknown).
func (n notes) kind() Kind { return Kind(n >> 4) }

// with adds event to n (first: the key's first event since it was read).
func (n notes) with(event string, first bool) notes {
	var e notes
	switch event {
	case "zincr", "hincrby", "hincrbyfloat":
		e = notesIncr
	case "incrby", "incrbyfloat":
		e = notesIncr | notesString
	case "set", "append", "setrange":
		e = notesString
	case "lpush", "rpush", "lpop", "rpop":
		e = notesListEnds
	}
	e |= notes(eventKind(event)) << 4
	if first {
		return e
	}
	return n&e&notesFlags | e&^notesFlags
}

// eventKind is the type of key a keyspace event's command leaves behind
// (Redis's notify classes $, h, s, z and l), None for generic events and
// for those of commands that may leave no key (a pop or removal of the
// last element is followed by a del event).
func eventKind(event string) Kind {
	switch event {
	case "set", "setrange", "incrby", "incrbyfloat", "append":
		return String
	case "hset", "hdel", "hincrby", "hincrbyfloat":
		return Hash
	case "sadd", "srem", "spop", "sinterstore", "sunionstore", "sdiffstore":
		return Set
	case "zadd", "zincr", "zrem", "zremrangebyscore", "zremrangebyrank", "zremrangebylex",
		"zpopmin", "zpopmax", "zinterstore", "zunionstore", "zdiffstore", "zrangestore":
		return ZSet
	case "lpush", "rpush", "lpop", "rpop", "linsert", "lset", "lrem", "ltrim":
		return List
	}
	return None
}

func (b *Bridge) requestResync() {
	b.mu.Lock()
	b.resync = true
	b.mu.Unlock()
	b.signal()
}

// run is the bridge's one worker.
func (b *Bridge) run() {
	defer b.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-b.stop
		cancel()
	}()
	tick := time.NewTicker(b.opts.RetryInterval)
	defer tick.Stop()
	needSync := true
	lastAudit, lastSave := time.Now(), time.Now()
	for {
		select {
		case <-b.stop:
			b.saveShadow()
			return
		case <-b.wake:
		case <-tick.C:
			b.mu.Lock()
			for k, read := range b.later {
				if read {
					b.notified[k] = struct{}{}
				}
				b.owed[k] = struct{}{}
			}
			clear(b.later)
			b.mu.Unlock()
		}
		if time.Since(lastSave) > 10*time.Second {
			b.saveShadow()
			lastSave = time.Now()
		}
		if !b.up.Load() {
			// Retries back off (1 s, doubling, up to a minute): a backend
			// that answers but fails the bridge's work (out of memory, a
			// read-only replica) would otherwise cost an audit a second.
			if time.Now().Before(b.nextTry) {
				continue
			}
			if err := b.connect(ctx); err != nil {
				b.setDown(err)
				continue
			}
			b.log.Info("backend up again: applying what the node owes it, then auditing", "down_for", time.Since(time.UnixMilli(b.downSince.Load())).Round(time.Millisecond))
			b.downSince.Store(0)
			needSync = true
		}
		b.mu.Lock()
		if b.overflow || b.resync {
			needSync = true
			b.overflow, b.resync = false, false
		}
		b.mu.Unlock()
		if !needSync && b.opts.AuditInterval > 0 && time.Since(lastAudit) > b.opts.AuditInterval {
			needSync = true
		}
		if needSync {
			if err := b.sync(ctx); err != nil {
				if ctx.Err() != nil || errors.Is(err, keyspace.ErrClosed) {
					b.saveShadow()
					return
				}
				b.setDown(err)
				continue
			}
			needSync, lastAudit = false, time.Now()
			b.failures = 0
		}
		if err := b.drain(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, keyspace.ErrClosed) {
				b.saveShadow()
				return
			}
			b.setDown(err)
		}
	}
}

// drain handles the queued keys in batches: changes the backend notified
// first (taken into the node), then what the node owes the backend.
func (b *Bridge) drain(ctx context.Context) error {
	for {
		in := b.takeKeys(b.notified)
		if err := b.pullIn(ctx, in); err != nil {
			b.requeue(b.notified, in)
			return err
		}
		out := b.takeKeys(b.owed)
		if len(in) == 0 && len(out) == 0 {
			return nil
		}
		if err := b.pushOut(ctx, out); err != nil {
			b.requeue(b.owed, out)
			return err
		}
	}
}

func (b *Bridge) takeKeys(set map[string]struct{}) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, min(len(set), b.opts.Batch))
	for k := range set {
		keys = append(keys, k)
		delete(set, k)
		if len(keys) == b.opts.Batch {
			break
		}
	}
	return keys
}

func (b *Bridge) requeue(set map[string]struct{}, keys []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		if len(set) >= b.opts.QueueLimit {
			b.overflow = true
			return
		}
		set[k] = struct{}{}
	}
}

func keyHash(key string) uint64 { return xxhash.Sum64String(key) }

// knows reports whether the shadow says the backend holds digest d of key.
func (b *Bridge) knows(h, d uint64) bool {
	sh, ok := b.shadow.Get(h)
	return (ok && sh.Digest == d) || (!ok && d == 0)
}

// remember notes that the backend holds s of key hash h.
func (b *Bridge) remember(h uint64, s State) {
	if s.Kind == None {
		b.shadow.Delete(h)
	} else {
		b.shadow.Put(h, baseOf(s))
	}
	b.shadowDirty = true
	b.st.shadowKeys.Store(int64(b.shadow.Len()))
}

// pullIn reads keys the backend notified and takes in what changed: a
// state the shadow does not know is a change someone else made (the
// bridge's own writes come back as notifications too, and are known).
func (b *Bridge) pullIn(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	b.mu.Lock()
	ns := make([]notes, len(keys))
	for i, k := range keys {
		ns[i] = b.notes[k]
		delete(b.notes, k)
	}
	b.mu.Unlock()
	states, ends, err := b.readNotified(ctx, keys, ns)
	if err != nil {
		return err
	}
	var seen []seenState
	var whole []string // lists read from their ends, to read whole
	err = b.n.UpdateLocal(ctx, func(l *node.LocalTx) error {
		seen, whole = seen[:0], whole[:0]
		for i, k := range keys {
			if e := ends[i]; e != nil {
				h, nb := keyHash(k), e.base()
				if b.knows(h, nb.Digest) {
					b.st.echoes.Add(1)
					continue
				}
				from, _ := b.shadow.Get(h)
				w, ok, err := takeInListEnds(l, []byte(k), e, &from)
				switch {
				case err != nil:
					return fmt.Errorf("take in the ends of list %q from backend: %w", k, err)
				case !ok:
					whole = append(whole, k)
					continue
				case w:
					b.st.takenIn.Add(1)
				}
				seen = append(seen, seenState{h: h, base: &nb})
				continue
			}
			s := states[i]
			h, d := keyHash(k), s.Digest()
			if b.knows(h, d) {
				b.st.echoes.Add(1)
				continue
			}
			if b.foreignType(h, s) {
				continue
			}
			c := b.since(h)
			c.incr = ns[i]&notesIncr != 0
			w, err := takeIn(l, []byte(k), s, c)
			if err != nil {
				return fmt.Errorf("take in key %q from backend: %w", k, err)
			}
			if w {
				b.st.takenIn.Add(1)
			}
			seen = append(seen, seenState{h: h, s: s})
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.rememberAll(seen)
	if len(whole) > 0 {
		b.mu.Lock()
		for _, k := range whole {
			b.notified[k] = struct{}{}
			b.notes[k] = notes(List) << 4
		}
		b.mu.Unlock()
		b.signal()
	}
	return nil
}

// readNotified reads the keys the backend notified, with ns, their
// notifications, as cheaply for the backend as they tell: a key that only
// had its string value written since the bridge read it, and had no
// deadline then, is a string without one, whose value is all there is to
// read (one MGET reads a batch of them); a key whose last event tells its
// type is read with that type's plain commands (readKinds), and a long
// list told of pushes and pops only, from its ends (ends[i], where
// states[i] is not read); the others, and those found absent or of
// another type, with the read script.
func (b *Bridge) readNotified(ctx context.Context, keys []string, ns []notes) (states []State, ends []*listEnds, err error) {
	states, ends = make([]State, len(keys)), make([]*listEnds, len(keys))
	read := make([]bool, len(keys))
	var plain []int
	for i, k := range keys {
		if ns[i]&notesString == 0 {
			continue
		}
		if sh, ok := b.shadow.Get(keyHash(k)); !ok || sh.At == 0 {
			plain = append(plain, i)
		}
	}
	if len(plain) > 0 {
		names := make([]string, len(plain))
		for j, i := range plain {
			names[j] = keys[i]
		}
		vals, err := b.rdb.MGet(ctx, names...).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("read %d strings from backend: %w", len(names), err)
		}
		for j, i := range plain {
			if v, ok := vals[j].(string); ok {
				states[i], read[i] = State{Kind: String, Str: []byte(v)}, true
			}
		}
	}
	if !b.r.pttl {
		var lists []string
		var froms []*base
		var at []int
		for i, k := range keys {
			if read[i] || ns[i]&notesListEnds == 0 {
				continue
			}
			if sh, ok := b.shadow.Get(keyHash(k)); ok && Kind(sh.Kind) == List && sh.Elems.Len() > 2*listWindow {
				lists, froms, at = append(lists, k), append(froms, &sh), append(at, i)
			}
		}
		got, err := b.r.readListEnds(ctx, lists, froms)
		if err != nil {
			return nil, nil, err
		}
		for j, i := range at {
			ends[i], read[i] = got[j], got[j] != nil
			if read[i] {
				b.st.endReads.Add(1)
			}
		}
	}
	if !b.r.pttl {
		var typed []string
		var kinds []Kind
		var at []int
		for i, k := range keys {
			if !read[i] && ns[i].kind() != None {
				typed, kinds, at = append(typed, k), append(kinds, ns[i].kind()), append(at, i)
			}
		}
		got, ok, err := b.r.readKinds(ctx, typed, kinds)
		if err != nil {
			return nil, nil, err
		}
		for j, i := range at {
			states[i], read[i] = got[j], ok[j]
		}
	}
	var rest []string
	var at []int
	for i, k := range keys {
		if !read[i] {
			rest, at = append(rest, k), append(at, i)
		}
	}
	more, err := readSettled(ctx, b.r, rest)
	if err != nil {
		return nil, nil, err
	}
	for j, i := range at {
		states[i] = more[j]
	}
	return states, ends, nil
}

// seenState is a backend state taken in, remembered once the take-in is
// committed: a take-in that fails leaves the shadow as it was, so the
// change is taken in again rather than recognised as known.
type seenState struct {
	h uint64
	s State
	// base, if not nil, is the key's new base, where s is not whole (a
	// list read from its ends).
	base *base
}

func (b *Bridge) rememberAll(seen []seenState) {
	for _, x := range seen {
		if x.base != nil {
			b.shadow.Put(x.h, *x.base)
			b.shadowDirty = true
			b.st.shadowKeys.Store(int64(b.shadow.Len()))
			continue
		}
		b.remember(x.h, x.s)
	}
}

// pushOut writes the node's state of keys to the backend, pipelined, one
// script per key: atomic per key, and only if the backend still holds what
// the shadow says (otherwise the key was changed there meanwhile, and is
// taken in first).
func (b *Bridge) pushOut(ctx context.Context, keys []string) error {
	type write struct {
		key     string
		h       uint64
		s       State
		delta   bool
		removed map[string]struct{}
		cmd     *redis.Cmd
	}
	var ws []write
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			removed := b.takeRemoved(k)
			rec, live := b.n.Read([]byte(k))
			s := FromRecord(rec, live)
			h, d := keyHash(k), s.Digest()
			if _, foreign := b.foreign[h]; b.knows(h, d) || s.Kind == Other || foreign {
				continue
			}
			expect := "0"
			if sh, ok := b.shadow.Get(h); ok {
				// Only what changed, where a delta can say it.
				if args, ok := deltaArgs(b.mark, s, &sh, removed); ok {
					ws = append(ws, write{k, h, s, true, removed, deltaScript.EvalSha(ctx, p, []string{k}, args...)})
					continue
				}
				expect = digestHex(sh.Digest)
			}
			ws = append(ws, write{k, h, s, false, removed, writeScript.EvalSha(ctx, p, []string{k}, scriptArgs(b.mark, expect, s)...)})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("write %d keys to backend: %w", len(ws), err)
	}
	for _, w := range ws {
		ok, err := w.cmd.Int()
		if err != nil {
			return fmt.Errorf("write key %q to backend: %w", w.key, err)
		}
		if ok == 1 {
			b.remember(w.h, w.s)
			b.st.written.Add(1)
			if w.delta {
				b.st.deltas.Add(1)
			}
			delete(b.conflicted, w.h)
			continue
		}
		if ok == -1 {
			// Refused payload: the backend keeps what it holds, and the
			// key is left alone until it changes there.
			b.st.refused.Add(1)
			b.foreign[w.h] = struct{}{}
			b.log.Warn("the backend refused a key carried whole (RESTORE: a module it has not loaded, or a newer RDB version): left as the backend holds it", "key", w.key)
			continue
		}
		b.st.conflicts.Add(1)
		b.keepRemoved(w.key, w.removed) // for the write after the take-in
		// The backend's change that stopped the write is taken in when its
		// notification comes, which tells whether it was an increment
		// (read now, before it came, it would be taken as a value set),
		// and its take-in writes the key again. The next tick writes it
		// again anyway, and reads it too once it has conflicted a few
		// times in a row (a change whose notification was lost, or one
		// that changes without pause).
		read := false
		if b.conflicted[w.h]++; b.conflicted[w.h] > maxConflicts {
			delete(b.conflicted, w.h)
			b.log.Warn("key keeps changing in the backend while the node writes it: tried again in a moment", "key", w.key)
			read = true
		}
		b.mu.Lock()
		if b.later == nil {
			b.later = map[string]bool{}
		}
		b.later[w.key] = b.later[w.key] || read
		b.mu.Unlock()
	}
	return nil
}

// maxConflicts is how many write conflicts in a row a key gets before the
// next tick reads it as well as writing it.
const maxConflicts = 3

// foreignType notes whether the backend holds key (hash h) as a type
// redmesh does not model, and reports it.
func (b *Bridge) foreignType(h uint64, s State) bool {
	if s.Kind == Other {
		b.foreign[h] = struct{}{}
		return true
	}
	delete(b.foreign, h)
	return false
}

func digestHex(d uint64) string {
	if d == 0 {
		return "0"
	}
	return fmt.Sprintf("%016x", d)
}

func scriptArgs(mark, expect string, s State) []any {
	args := []any{mark, expect, s.Kind.String(), strconv.FormatInt(s.At, 10)}
	switch s.Kind {
	case String, Whole:
		args = append(args, s.Str)
	case Hash:
		for _, f := range s.Fields {
			args = append(args, f)
		}
	case Set, List:
		for _, m := range s.Members {
			args = append(args, m)
		}
	case ZSet: // ZADD takes the score first
		for i := 0; i+1 < len(s.Fields); i += 2 {
			args = append(args, s.Fields[i+1], s.Fields[i])
		}
	}
	return args
}

// Info is the bridge's part of INFO: the link to the backend, the queue of
// what the node owes it, the take-in or audit under way, and counters.
func (b *Bridge) Info() []string {
	b.mu.Lock()
	owed, notified := len(b.owed), len(b.notified)
	b.mu.Unlock()
	status, downFor := "down", int64(0)
	if b.up.Load() {
		status = "up"
	} else if t := b.downSince.Load(); t != 0 {
		downFor = (time.Now().UnixMilli() - t) / 1000
	}
	lastErr := ""
	if p := b.lastErr.Load(); p != nil {
		lastErr = strings.NewReplacer("\r", " ", "\n", " ").Replace(*p)
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	flag := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return []string{
		"bridge_backend:" + Redact(b.opts.URL),
		"bridge_link_status:" + status,
		"bridge_link_down_seconds:" + i(downFor),
		"bridge_last_error:" + lastErr,
		"bridge_owed_keys:" + i(int64(owed)),
		"bridge_notified_keys:" + i(int64(notified)),
		"bridge_queue_limit:" + i(int64(b.opts.QueueLimit)),
		"bridge_queue_overflows:" + i(b.st.overflows.Load()),
		"bridge_sync_in_progress:" + flag(b.syncing.Load()),
		"bridge_sync_keys:" + i(b.takeIn.Scanned.Load()),
		"bridge_sync_keys_total:" + i(b.takeIn.Estimate.Load()),
		"bridge_sync_taken_in:" + i(b.takeIn.Written.Load()),
		"bridge_skipped_types:" + i(b.takeIn.Skipped.Load()),
		"bridge_whole_keys:" + i(b.takeIn.Whole.Load()),
		"bridge_restores_refused:" + i(b.st.refused.Load()),
		"bridge_audits:" + i(b.st.audits.Load()),
		"bridge_audit_fixes:" + i(b.st.auditFixes.Load()),
		"bridge_keys_written:" + i(b.st.written.Load()),
		"bridge_keys_written_in_part:" + i(b.st.deltas.Load()),
		"bridge_changes_taken_in:" + i(b.st.takenIn.Load()),
		"bridge_lists_read_by_ends:" + i(b.st.endReads.Load()),
		"bridge_echoes_ignored:" + i(b.st.echoes.Load()),
		"bridge_write_conflicts:" + i(b.st.conflicts.Load()),
		"bridge_shadow_keys:" + i(b.st.shadowKeys.Load()),
	}
}
