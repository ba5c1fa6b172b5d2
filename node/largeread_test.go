package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestLargeKeysReadWhileWritten: clients write single fields and members
// into hashes, a set, sorted sets and a list of 10,000 and more elements,
// pipelined and one command at a time, while other clients run every read
// of those types on the same keys: alone (outside the write path), in
// pipelines beside writes and in transactions (inside a write-path step).
// A step changes the state the step before published in place unless a
// reader froze it (record.MergePublished), so a reader that kept a state
// it did not freeze, or that a later step changed under it, gets a torn
// reply (a count that is not what follows, elements out of order, a
// field's value another's) or, under -race, a reported data race. Every
// reply is checked for its form and against the others of its step.
func TestLargeKeysReadWhileWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("a stress test: half a minute and more under -race")
	}
	n, c0 := openNode(t, t.TempDir())
	ctx := context.Background()
	const (
		size    = 12_000 // elements each key starts with
		names   = 15_000 // names the writers choose among
		writers = 4
		readers = 4
		rounds  = 8  // a writer's pipelines at least; more until each reader went through once
		each    = 32 // commands in one
	)
	load := func(args ...any) {
		t.Helper()
		if err := c0.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args[:2], err)
		}
	}
	for lo := 0; lo < size; lo += 1000 {
		h, hc, s, z, zc, l := []any{"HSET", "h"}, []any{"HSET", "hc"}, []any{"SADD", "s"}, []any{"ZADD", "z"}, []any{"ZADD", "zc"}, []any{"RPUSH", "l"}
		for i := lo; i < lo+1000; i++ {
			f := fieldName(i)
			h = append(h, f, fieldValue(f, 0))
			hc = append(hc, f, fieldValue(f, 0))
			s = append(s, memberName(i))
			z = append(z, i%977, memberName(i))
			zc = append(zc, i%977, memberName(i))
			l = append(l, fieldValue(memberName(i), 0))
		}
		for _, args := range [][]any{h, hc, s, z, zc, l} {
			load(args...)
		}
	}
	// Small sets beside the large ones, so that a store reads a large
	// source in full but writes little: a store of thousands of elements
	// holds the write lock for long (its delta is built by a linear
	// search an element).
	s2, z2 := []any{"SADD", "s2"}, []any{"ZADD", "z2"}
	for i := 0; i < names; i += 50 {
		s2, z2 = append(s2, memberName(i)), append(z2, 1, memberName(i))
	}
	load(s2...)
	load(z2...)

	client := func() *redis.Client {
		return redis.NewClient(&redis.Options{Addr: n.Addr().String(), Protocol: 2, PoolSize: 1, MaxRetries: -1,
			ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute})
	}
	var failed atomic.Bool
	fail := func(who string, err error) {
		if err != nil && failed.CompareAndSwap(false, true) {
			t.Errorf("%s: %v", who, err)
		}
	}
	var wg sync.WaitGroup
	var writing, read atomic.Int32 // writers still writing, readers through once
	writing.Store(writers)
	for w := range writers {
		wg.Go(func() {
			defer writing.Add(-1)
			c := client()
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for round := 0; (round < rounds || read.Load() < readers) && round < 100*rounds && !failed.Load(); round++ {
				cmds := make([][]any, each)
				if w%2 == 1 {
					cmds = cmds[:each/4] // a round trip each: fewer
				}
				for j := range cmds {
					cmds[j] = writeCommand(r, names, round)
				}
				if w%2 == 1 {
					// One command a step: each takes over the state the
					// step before published.
					for _, args := range cmds {
						if err := c.Do(ctx, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
							fail(fmt.Sprintf("writer %d: %v", w, args), err)
							return
						}
					}
					continue
				}
				p := c.Pipeline()
				for _, args := range cmds {
					p.Do(ctx, args...)
				}
				res, _ := p.Exec(ctx)
				for j, cmd := range res {
					if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
						fail(fmt.Sprintf("writer %d: %v", w, cmds[j]), err)
						return
					}
				}
			}
		})
	}
	cycles := make([]int, readers)
	for rd := range readers {
		wg.Go(func() {
			c := client()
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(100+rd), 9))
			if rd == 0 {
				// Stores whose results are as large as their
				// sources, once.
				if err := largeStores(ctx, c); err != nil {
					fail("reader 0, large stores", err)
					return
				}
			}
			// Until the writers are done, and at least once through.
			for cycles[rd] < 1 || writing.Load() > 0 {
				for i, check := range largeReads {
					if failed.Load() {
						return
					}
					if err := check.run(ctx, c, r); err != nil {
						fail(fmt.Sprintf("reader %d, %s", rd, largeReads[i].name), err)
						return
					}
				}
				if cycles[rd]++; cycles[rd] == 1 {
					read.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, key := range []string{"h", "hc", "s", "z", "zc", "l"} {
		if k, err := c0.Do(ctx, "TYPE", key).Text(); err != nil {
			t.Fatalf("TYPE %s: %v", key, err)
		} else if got := lenOf(ctx, c0, k, key); got < size/2 {
			t.Fatalf("%s holds %d elements: the writers emptied it, so it was not read large", key, got)
		}
	}
}

// fieldName and memberName are the names the test writes: f or m and five
// digits.
func fieldName(i int) string  { return fmt.Sprintf("f%05d", i) }
func memberName(i int) string { return fmt.Sprintf("m%05d", i) }

// fieldValue is a value that names its field, so that a reply pairing a
// field with another's value shows.
func fieldValue(name string, n int) string { return name + ":" + strconv.Itoa(n) }

func wellFormed(name string, prefix byte) bool {
	if len(name) != 6 || name[0] != prefix {
		return false
	}
	for _, b := range []byte(name[1:]) {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// writeCommand is one single-element write of the test's keys: adds
// outnumber removals, so the keys stay large.
func writeCommand(r *rand.Rand, names, round int) []any {
	i := r.IntN(names)
	f, m := fieldName(i), memberName(i)
	switch r.IntN(17) {
	case 0, 1:
		return []any{"HSET", "h", f, fieldValue(f, round)}
	case 2:
		return []any{"HDEL", "h", f}
	case 3:
		return []any{"HSET", "hc", f, fieldValue(f, round)}
	case 4:
		return []any{"HDEL", "hc", f}
	case 5:
		return []any{"HINCRBY", "hc", "n" + f[1:], 1 + r.IntN(5)}
	case 6, 7:
		return []any{"SADD", "s", m}
	case 8:
		return []any{"SREM", "s", m}
	case 9:
		return []any{"SPOP", "s"}
	case 10, 11:
		return []any{"ZADD", "z", r.IntN(977), m}
	case 12:
		return []any{"ZREM", "z", m}
	case 13:
		return []any{"ZINCRBY", "zc", r.IntN(9) - 4, m}
	case 14:
		return []any{"ZREM", "zc", m}
	case 15:
		return []any{"RPUSH", "l", fieldValue(m, round)}
	default:
		return []any{"LPOP", "l"}
	}
}

// lenOf is the length of key, a key of type typ.
func lenOf(ctx context.Context, c *redis.Client, typ, key string) int {
	cmd := map[string]string{"hash": "HLEN", "set": "SCARD", "zset": "ZCARD", "list": "LLEN"}[typ]
	if cmd == "" {
		return -1
	}
	n, _ := c.Do(ctx, cmd, key).Int()
	return n
}

// largeRead is one read (or a transaction or pipeline of reads and writes)
// of the large keys, checking what it answers.
type largeRead struct {
	name string
	run  func(ctx context.Context, c *redis.Client, r *rand.Rand) error
}

// strs runs one command and answers its array of strings.
func strs(ctx context.Context, c *redis.Client, args ...any) ([]string, error) {
	v, err := c.Do(ctx, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("%v: %w", args, err)
	}
	return v, nil
}

// checkPairs checks a hash's fields and values, alternating (or names
// alone, or values alone): names of the form the test writes, each value
// its field's (a counter field's an integer), in name order if ordered,
// each name once if distinct.
func checkPairs(kv []string, names, values, ordered, distinct bool) error {
	per := 1
	if names && values {
		per = 2
		if len(kv)%2 != 0 {
			return fmt.Errorf("%d strings for pairs", len(kv))
		}
	}
	seen := make(map[string]bool, len(kv)/per)
	prev := ""
	for i := 0; i < len(kv); i += per {
		name, value := "", ""
		switch {
		case names && values:
			name, value = kv[i], kv[i+1]
		case names:
			name = kv[i]
		default:
			value = kv[i]
		}
		if names {
			if !wellFormed(name, 'f') && !wellFormed(name, 'n') {
				return fmt.Errorf("field %q", name)
			}
			if ordered && name <= prev {
				return fmt.Errorf("field %q after %q", name, prev)
			}
			if distinct && seen[name] {
				return fmt.Errorf("field %q twice", name)
			}
			seen[name], prev = true, name
		}
		if !values {
			continue
		}
		if name != "" && name[0] == 'n' || name == "" && !strings.Contains(value, ":") {
			if _, err := strconv.ParseInt(value, 10, 64); err != nil {
				return fmt.Errorf("counter %q holds %q", name, value)
			}
			continue
		}
		f, _, ok := strings.Cut(value, ":")
		if !ok || !wellFormed(f, 'f') || name != "" && f != name {
			return fmt.Errorf("field %q holds %q", name, value)
		}
	}
	return nil
}

// checkMembers checks set members (or list values of members): of the
// form the test writes, in order if ordered, each once if distinct.
func checkMembers(ms []string, ordered, distinct bool) error {
	seen := make(map[string]bool, len(ms))
	prev := ""
	for _, m := range ms {
		if !wellFormed(m, 'm') {
			return fmt.Errorf("member %q", m)
		}
		if ordered && m <= prev {
			return fmt.Errorf("member %q after %q", m, prev)
		}
		if distinct && seen[m] {
			return fmt.Errorf("member %q twice", m)
		}
		seen[m], prev = true, m
	}
	return nil
}

// checkScored checks a sorted set's members and scores, alternating: in
// (score, member) order if dir is 1, its reverse if -1, any if 0.
func checkScored(ms []string, dir int) error {
	if len(ms)%2 != 0 {
		return fmt.Errorf("%d strings for pairs", len(ms))
	}
	prevScore, prev := 0.0, ""
	for i := 0; i < len(ms); i += 2 {
		m := ms[i]
		score, err := strconv.ParseFloat(ms[i+1], 64)
		if !wellFormed(m, 'm') || err != nil {
			return fmt.Errorf("member %q score %q", m, ms[i+1])
		}
		if i > 0 && dir != 0 {
			c := 0
			switch {
			case score < prevScore:
				c = -1
			case score > prevScore:
				c = 1
			default:
				c = strings.Compare(m, prev)
			}
			if c != dir {
				return fmt.Errorf("%s (%v) after %s (%v)", m, score, prev, prevScore)
			}
		}
		prevScore, prev = score, m
	}
	return nil
}

// checkCount checks that a reply has from lo to hi strings.
func checkCount(got []string, lo, hi int) error {
	if len(got) < lo || len(got) > hi {
		return fmt.Errorf("%d strings, want %d to %d", len(got), lo, hi)
	}
	return nil
}

// largeReads are the reads each reader runs in turn.
var largeReads = []largeRead{
	{"HGETALL", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		for _, key := range []string{"h", "hc"} {
			kv, err := strs(ctx, c, "HGETALL", key)
			if err != nil {
				return err
			}
			if err := checkPairs(kv, true, true, true, true); err != nil {
				return fmt.Errorf("HGETALL %s: %w", key, err)
			}
		}
		return nil
	}},
	{"HKEYS HVALS", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		ks, err := strs(ctx, c, "HKEYS", "h")
		if err == nil {
			err = checkPairs(ks, true, false, true, true)
		}
		if err != nil {
			return err
		}
		vs, err := strs(ctx, c, "HVALS", "hc")
		if err == nil {
			err = checkPairs(vs, false, true, false, false)
		}
		return err
	}},
	{"HSCAN", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		v, err := c.Do(ctx, "HSCAN", "h", r.Uint64N(1<<62), "COUNT", 500).Slice()
		if err != nil {
			return err
		}
		if len(v) != 2 {
			return fmt.Errorf("HSCAN answered %d elements", len(v))
		}
		kv, err := c.Do(ctx, "HSCAN", "h", 0, "COUNT", 500).Slice()
		if err != nil {
			return err
		}
		pairs, ok := kv[1].([]any)
		if !ok {
			return fmt.Errorf("HSCAN answered %T", kv[1])
		}
		ss := make([]string, len(pairs))
		for i, p := range pairs {
			ss[i], _ = p.(string)
		}
		return checkPairs(ss, true, true, false, true)
	}},
	{"HRANDFIELD", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		kv, err := strs(ctx, c, "HRANDFIELD", "h", 50, "WITHVALUES")
		if err == nil {
			err = checkCount(kv, 100, 100)
		}
		if err == nil {
			err = checkPairs(kv, true, true, false, true)
		}
		if err != nil {
			return err
		}
		kv, err = strs(ctx, c, "HRANDFIELD", "hc", -50, "WITHVALUES")
		if err == nil {
			err = checkCount(kv, 100, 100)
		}
		if err == nil {
			err = checkPairs(kv, true, true, false, false)
		}
		if err != nil {
			return err
		}
		f, err := c.Do(ctx, "HRANDFIELD", "h").Text()
		if err == nil && !wellFormed(f, 'f') {
			err = fmt.Errorf("HRANDFIELD answered %q", f)
		}
		return err
	}},
	{"HMGET HGET HLEN HEXISTS HSTRLEN", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		args := []any{"HMGET", "h"}
		for range 20 {
			args = append(args, fieldName(r.IntN(15_000)))
		}
		v, err := c.Do(ctx, args...).Slice()
		if err != nil {
			return err
		}
		if len(v) != 20 {
			return fmt.Errorf("HMGET answered %d values", len(v))
		}
		for i, x := range v {
			if x == nil {
				continue
			}
			s, _ := x.(string)
			if err := checkPairs([]string{args[2+i].(string), s}, true, true, false, false); err != nil {
				return fmt.Errorf("HMGET: %w", err)
			}
		}
		f := fieldName(r.IntN(15_000))
		if s, err := c.Do(ctx, "HGET", "h", f).Text(); err == nil {
			if err := checkPairs([]string{f, s}, true, true, false, false); err != nil {
				return fmt.Errorf("HGET: %w", err)
			}
		} else if !errors.Is(err, redis.Nil) {
			return err
		}
		for _, args := range [][]any{{"HLEN", "h"}, {"HEXISTS", "h", f}, {"HSTRLEN", "h", f}} {
			if n, err := c.Do(ctx, args...).Int(); err != nil || n < 0 {
				return fmt.Errorf("%v: %d, %v", args, n, err)
			}
		}
		return nil
	}},
	{"SMEMBERS SSCAN SRANDMEMBER SISMEMBER", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		ms, err := strs(ctx, c, "SMEMBERS", "s")
		if err == nil {
			err = checkMembers(ms, true, true)
		}
		if err != nil {
			return fmt.Errorf("SMEMBERS: %w", err)
		}
		v, err := c.Do(ctx, "SSCAN", "s", 0, "COUNT", 500).Slice()
		if err != nil || len(v) != 2 {
			return fmt.Errorf("SSCAN: %v, %v", v, err)
		}
		page, _ := v[1].([]any)
		ss := make([]string, len(page))
		for i, p := range page {
			ss[i], _ = p.(string)
		}
		if err := checkMembers(ss, false, true); err != nil {
			return fmt.Errorf("SSCAN: %w", err)
		}
		for _, k := range []int{50, -50} {
			ms, err := strs(ctx, c, "SRANDMEMBER", "s", k)
			if err == nil {
				err = checkCount(ms, 50, 50)
			}
			if err == nil {
				err = checkMembers(ms, false, k > 0)
			}
			if err != nil {
				return fmt.Errorf("SRANDMEMBER %d: %w", k, err)
			}
		}
		if m, err := c.Do(ctx, "SRANDMEMBER", "s").Text(); err != nil || !wellFormed(m, 'm') {
			return fmt.Errorf("SRANDMEMBER: %q, %v", m, err)
		}
		m := memberName(r.IntN(15_000))
		for _, args := range [][]any{{"SCARD", "s"}, {"SISMEMBER", "s", m}} {
			if n, err := c.Do(ctx, args...).Int(); err != nil || n < 0 {
				return fmt.Errorf("%v: %d, %v", args, n, err)
			}
		}
		bs, err := c.Do(ctx, "SMISMEMBER", "s", m, "x").Int64Slice()
		if err != nil || len(bs) != 2 || bs[1] != 0 {
			return fmt.Errorf("SMISMEMBER: %v, %v", bs, err)
		}
		return nil
	}},
	{"SINTER SUNION SDIFF SINTERCARD", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		for _, args := range [][]any{{"SINTER", "s", "s"}, {"SUNION", "s", "s2"}, {"SDIFF", "s", "s2"}, {"SINTER", "s2", "s"}} {
			ms, err := strs(ctx, c, args...)
			if err == nil {
				err = checkMembers(ms, true, true)
			}
			if err != nil {
				return fmt.Errorf("%v: %w", args, err)
			}
		}
		if n, err := c.Do(ctx, "SINTERCARD", 2, "s", "s").Int(); err != nil || n < 0 {
			return fmt.Errorf("SINTERCARD: %d, %v", n, err)
		}
		return nil
	}},
	{"ZRANGE", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		for _, q := range []struct {
			args []any
			dir  int
		}{
			{[]any{"ZRANGE", "z", 0, -1, "WITHSCORES"}, 1},
			{[]any{"ZRANGE", "zc", 0, -1, "WITHSCORES"}, 1},
			{[]any{"ZREVRANGE", "z", 0, 999, "WITHSCORES"}, -1},
			{[]any{"ZRANGEBYSCORE", "zc", "-inf", "+inf", "WITHSCORES", "LIMIT", 100, 2000}, 1},
			{[]any{"ZREVRANGEBYSCORE", "z", 500, 100, "WITHSCORES"}, -1},
			{[]any{"ZRANGE", "z", "(100", 300, "BYSCORE", "WITHSCORES"}, 1},
		} {
			ms, err := strs(ctx, c, q.args...)
			if err == nil {
				err = checkScored(ms, q.dir)
			}
			if err != nil {
				return fmt.Errorf("%v: %w", q.args[:2], err)
			}
		}
		// Of members of different scores the order by name is not
		// defined: only their form is checked.
		ms, err := strs(ctx, c, "ZRANGEBYLEX", "z", "-", "+", "LIMIT", 0, 1000)
		if err == nil {
			err = checkMembers(ms, false, false)
		}
		return err
	}},
	{"ZSCAN ZRANDMEMBER ZSCORE ZRANK ZCOUNT", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		v, err := c.Do(ctx, "ZSCAN", "zc", 0, "COUNT", 500).Slice()
		if err != nil || len(v) != 2 {
			return fmt.Errorf("ZSCAN: %v, %v", v, err)
		}
		page, _ := v[1].([]any)
		ss := make([]string, len(page))
		for i, p := range page {
			ss[i], _ = p.(string)
		}
		if err := checkScored(ss, 0); err != nil {
			return fmt.Errorf("ZSCAN: %w", err)
		}
		ms, err := strs(ctx, c, "ZRANDMEMBER", "z", 50, "WITHSCORES")
		if err == nil {
			err = checkCount(ms, 100, 100)
		}
		if err == nil {
			err = checkScored(ms, 0)
		}
		if err != nil {
			return fmt.Errorf("ZRANDMEMBER: %w", err)
		}
		m := memberName(r.IntN(15_000))
		for _, args := range [][]any{{"ZSCORE", "zc", m}, {"ZRANK", "z", m}, {"ZREVRANK", "zc", m}} {
			if err := c.Do(ctx, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
				return fmt.Errorf("%v: %w", args, err)
			}
		}
		for _, args := range [][]any{{"ZCARD", "z"}, {"ZCOUNT", "zc", "-inf", "+inf"}, {"ZLEXCOUNT", "z", "-", "+"}} {
			if n, err := c.Do(ctx, args...).Int(); err != nil || n < 0 {
				return fmt.Errorf("%v: %d, %v", args, n, err)
			}
		}
		return nil
	}},
	{"LRANGE LINDEX", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		vs, err := strs(ctx, c, "LRANGE", "l", 0, -1)
		if err != nil {
			return err
		}
		for _, v := range vs {
			if m, _, ok := strings.Cut(v, ":"); !ok || !wellFormed(m, 'm') {
				return fmt.Errorf("LRANGE: %q", v)
			}
		}
		if err := c.Do(ctx, "LINDEX", "l", -1).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
	}},
	{"OBJECT TYPE EXISTS", func(ctx context.Context, c *redis.Client, _ *rand.Rand) error {
		for key, want := range map[string][2]string{"h": {"hashtable", "hash"}, "s": {"hashtable", "set"}, "z": {"skiplist", "zset"}, "l": {"quicklist", "list"}} {
			enc, err := c.Do(ctx, "OBJECT", "ENCODING", key).Text()
			if err != nil || enc != want[0] {
				return fmt.Errorf("OBJECT ENCODING %s: %q, %v", key, enc, err)
			}
			typ, err := c.Do(ctx, "TYPE", key).Text()
			if err != nil || typ != want[1] {
				return fmt.Errorf("TYPE %s: %q, %v", key, typ, err)
			}
		}
		if n, err := c.Do(ctx, "EXISTS", "h", "s", "z", "l").Int(); err != nil || n != 4 {
			return fmt.Errorf("EXISTS: %d, %v", n, err)
		}
		return nil
	}},
	{"stores", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		d := fmt.Sprintf("d%d", r.IntN(4))
		for _, args := range [][]any{
			{"SINTERSTORE", d + "si", "s2", "s"}, {"SDIFFSTORE", d + "sd", "s2", "s"},
			{"ZINTERSTORE", d + "zi", 2, "z2", "zc"}, {"ZDIFFSTORE", d + "zd", 2, "z2", "z"},
			{"ZRANGESTORE", d + "zr", "zc", 0, 299},
		} {
			if n, err := c.Do(ctx, args...).Int(); err != nil || n < 0 {
				return fmt.Errorf("%v: %d, %v", args, n, err)
			}
		}
		return nil
	}},
	{"MULTI/EXEC", checkTransaction},
	{"WATCH MULTI/EXEC", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		f := fieldName(r.IntN(15_000))
		err := c.Watch(ctx, func(tx *redis.Tx) error {
			if err := tx.Do(ctx, "HLEN", "h").Err(); err != nil {
				return err
			}
			cmds, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Do(ctx, "HLEN", "h")
				p.Do(ctx, "HGETALL", "h")
				p.Do(ctx, "HSET", "h", f, fieldValue(f, -1))
				return nil
			})
			if err != nil {
				return err
			}
			return checkLenAndAll(cmds[0], cmds[1], 2)
		}, "h")
		if errors.Is(err, redis.TxFailedErr) {
			return nil // a writer's write came between: nothing ran
		}
		return err
	}},
	{"pipeline of reads and writes", func(ctx context.Context, c *redis.Client, r *rand.Rand) error {
		// A run of commands that includes a write runs in one step: the
		// reads' replies are written inside it.
		i := r.IntN(15_000)
		f, m := fieldName(i), memberName(i)
		p := c.Pipeline()
		p.Do(ctx, "HSET", "h", f, fieldValue(f, -2))
		hlen, hall := p.Do(ctx, "HLEN", "h"), p.Do(ctx, "HGETALL", "h")
		p.Do(ctx, "SADD", "s", m)
		scard, smembers := p.Do(ctx, "SCARD", "s"), p.Do(ctx, "SMEMBERS", "s")
		p.Do(ctx, "ZADD", "z", 5, m)
		zcard, zall := p.Do(ctx, "ZCARD", "z"), p.Do(ctx, "ZRANGE", "z", 0, -1, "WITHSCORES")
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
		for _, pair := range [][3]any{{hlen, hall, 2}, {scard, smembers, 1}, {zcard, zall, 2}} {
			if err := checkLenAndAll(pair[0].(*redis.Cmd), pair[1].(*redis.Cmd), pair[2].(int)); err != nil {
				return err
			}
		}
		return nil
	}},
}

// checkLenAndAll checks a collection's whole reply (HGETALL, SMEMBERS,
// ZRANGE ... WITHSCORES) against its length read in the same step: per
// strings an element.
func checkLenAndAll(lenCmd, allCmd redis.Cmder, per int) error {
	n, err := lenCmd.(*redis.Cmd).Int()
	if err != nil {
		return err
	}
	all, err := allCmd.(*redis.Cmd).StringSlice()
	if err != nil {
		return err
	}
	if len(all) != per*n {
		return fmt.Errorf("%v answered %d strings, %v %d in the same step", allCmd.Args()[:2], len(all), lenCmd.Args()[:2], n)
	}
	switch allCmd.Args()[0] {
	case "HGETALL":
		return checkPairs(all, true, true, true, true)
	case "SMEMBERS":
		return checkMembers(all, true, true)
	}
	return checkScored(all, 1)
}

// checkTransaction runs reads and writes of every large key in one
// MULTI/EXEC, and checks each read against the others.
func checkTransaction(ctx context.Context, c *redis.Client, r *rand.Rand) error {
	i := r.IntN(15_000)
	f, m := fieldName(i), memberName(i)
	d := fmt.Sprintf("t%d", r.IntN(4))
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, args := range [][]any{
			{"HLEN", "h"}, {"HGETALL", "h"}, // 0, 1
			{"SCARD", "s"}, {"SMEMBERS", "s"}, // 2, 3
			{"ZCARD", "z"}, {"ZRANGE", "z", 0, -1, "WITHSCORES"}, // 4, 5
			{"LLEN", "l"}, {"LRANGE", "l", 0, -1}, // 6, 7
			{"HSET", "h", f, fieldValue(f, -3)}, {"SADD", "s", m}, {"ZINCRBY", "zc", 1, m}, // 8, 9, 10
			{"HLEN", "h"}, {"HGETALL", "h"}, // 11, 12
			{"SINTERSTORE", d + "si", "s2", "s"}, {"SCARD", d + "si"}, {"SINTERCARD", 2, "s", "s2"}, // 13, 14, 15
			{"ZINTERSTORE", d + "zi", 2, "zc", "z2"}, {"ZCARD", d + "zi"}, {"ZINTERCARD", 2, "z2", "zc"}, // 16, 17, 18
			{"COPY", "s2", d + "s", "REPLACE"}, {"SCARD", d + "s"}, {"SRANDMEMBER", "s", 20}, // 19, 20, 21
			{"HSCAN", "h", 0, "COUNT", 300}, {"HRANDFIELD", "h", 30, "WITHVALUES"}, // 22, 23
			{"OBJECT", "ENCODING", "z"}, {"TYPE", "zc"}, // 24, 25
		} {
			p.Do(ctx, args...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, pair := range [][3]int{{0, 1, 2}, {2, 3, 1}, {4, 5, 2}, {11, 12, 2}} {
		if err := checkLenAndAll(cmds[pair[0]], cmds[pair[1]], pair[2]); err != nil {
			return err
		}
	}
	llen, _ := cmds[6].(*redis.Cmd).Int()
	if vs, _ := cmds[7].(*redis.Cmd).StringSlice(); len(vs) != llen {
		return fmt.Errorf("LRANGE answered %d values, LLEN %d in the same step", len(vs), llen)
	}
	ints := func(js ...int) []int {
		out := make([]int, len(js))
		for k, j := range js {
			out[k], _ = cmds[j].(*redis.Cmd).Int()
		}
		return out
	}
	if got := ints(13, 14, 15); got[0] != got[1] || got[1] != got[2] {
		return fmt.Errorf("SINTERSTORE of s2 and s stored %d, SCARD of it %d, SINTERCARD %d", got[0], got[1], got[2])
	}
	if got := ints(16, 17, 18); got[0] != got[1] || got[1] != got[2] {
		return fmt.Errorf("ZINTERSTORE of zc and z2 stored %d, ZCARD of it %d, ZINTERCARD %d", got[0], got[1], got[2])
	}
	if got := ints(19, 20); got[0] != 1 || got[1] != 300 {
		return fmt.Errorf("COPY of s2 answered %d, SCARD of the copy %d", got[0], got[1])
	}
	if ms, err := cmds[21].(*redis.Cmd).StringSlice(); err != nil || len(ms) != 20 || checkMembers(ms, false, true) != nil {
		return fmt.Errorf("SRANDMEMBER in EXEC: %v, %v", ms, err)
	}
	if v, err := cmds[22].(*redis.Cmd).Slice(); err != nil || len(v) != 2 {
		return fmt.Errorf("HSCAN in EXEC: %v", err)
	}
	if kv, err := cmds[23].(*redis.Cmd).StringSlice(); err != nil || len(kv) != 60 || checkPairs(kv, true, true, false, true) != nil {
		return fmt.Errorf("HRANDFIELD in EXEC: %d strings, %v", len(kv), err)
	}
	if enc, _ := cmds[24].(*redis.Cmd).Text(); enc != "skiplist" {
		return fmt.Errorf("OBJECT ENCODING in EXEC: %q", enc)
	}
	if typ, _ := cmds[25].(*redis.Cmd).Text(); typ != "zset" {
		return fmt.Errorf("TYPE in EXEC: %q", typ)
	}
	return nil
}

// largeStores runs a store whose result is as large as its source, and a
// COPY of a large key, each checked against its source in the same step.
func largeStores(ctx context.Context, c *redis.Client) error {
	cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, args := range [][]any{
			{"ZUNIONSTORE", "lzu", 1, "zc"}, {"ZCARD", "zc"},
			{"COPY", "h", "lh", "REPLACE"}, {"HLEN", "lh"}, {"HLEN", "h"},
		} {
			p.Do(ctx, args...)
		}
		return nil
	})
	if err != nil {
		return err
	}
	n := make([]int, len(cmds))
	for i, cmd := range cmds {
		n[i], _ = cmd.(*redis.Cmd).Int()
	}
	if n[0] != n[1] || n[2] != 1 || n[3] != n[4] || n[1] < 1000 || n[4] < 1000 {
		return fmt.Errorf("ZUNIONSTORE of zc stored %d of %d; COPY of h answered %d, the copy holds %d of %d",
			n[0], n[1], n[2], n[3], n[4])
	}
	return nil
}
