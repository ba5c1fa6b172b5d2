package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dial connects to the Redis server at rawURL (redis://[user:pass@]HOST:PORT[/db],
// or rediss:// for TLS) and checks that it answers.
func Dial(ctx context.Context, rawURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("backend URL %s: %w", Redact(rawURL), err)
	}
	opts.Protocol = 2
	opts.ReadTimeout = 30 * time.Second // a SCAN or HGETALL of a large key may take a while
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("connect to backend %s: %w", Redact(rawURL), err)
	}
	return rdb, nil
}

// Redact is rawURL without its password, for logs and errors.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// reader reads keys' States from a Redis server, pipelined.
type reader struct {
	rdb *redis.Client
	// pttl: the server has no PEXPIRETIME (before Redis 7), so deadlines
	// are PTTL plus the local clock, good to a few milliseconds.
	pttl  bool
	runID string // the server's run (INFO run_id): new at every restart
}

func newReader(ctx context.Context, rdb *redis.Client) (*reader, error) {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return nil, fmt.Errorf("read backend INFO server: %w", err)
	}
	major, runID := 0, ""
	for line := range strings.SplitSeq(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			major, _ = strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		}
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			runID = v
		}
	}
	return &reader{rdb: rdb, pttl: major > 0 && major < 7, runID: runID}, nil
}

// read reads keys' States: on Redis 7 and later with one script call
// (readScript), atomically; before, with two pipelines, one for their types
// and deadlines and one for their values, where a key that changed type in
// between comes back with Kind Other and Type "" (read it again).
func (r *reader) read(ctx context.Context, keys []string) ([]State, error) {
	out := make([]State, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if !r.pttl {
		return r.readByScript(ctx, keys, out)
	}
	types := make([]*redis.StatusCmd, len(keys))
	deadlines := make([]*redis.Cmd, len(keys))
	now := time.Now().UnixMilli()
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			types[i] = p.Type(ctx, k)
			if r.pttl {
				deadlines[i] = p.Do(ctx, "PTTL", k)
			} else {
				deadlines[i] = p.Do(ctx, "PEXPIRETIME", k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read types of %d keys from backend: %w", len(keys), err)
	}
	vals := make([]redis.Cmder, len(keys))
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			s := &out[i]
			s.Kind = kindOf(types[i].Val())
			if s.Kind == Whole {
				s.Type = types[i].Val()
			}
			if d, _ := deadlines[i].Int64(); d >= 0 {
				if r.pttl {
					d += now
				}
				s.At = d
			}
			vals[i] = valueCmd(ctx, p, k, s.Kind)
		}
		return nil
	})
	if err != nil && !isNilOrWrongType(err) {
		return nil, fmt.Errorf("read values of %d keys from backend: %w", len(keys), err)
	}
	fillValues(out, vals)
	return out, nil
}

// valueCmd queues the read of key's value as a key of kind k holds it.
func valueCmd(ctx context.Context, p redis.Pipeliner, key string, k Kind) redis.Cmder {
	switch k {
	case String:
		return p.Get(ctx, key)
	case Hash:
		return p.HGetAll(ctx, key)
	case Set:
		return p.SMembers(ctx, key)
	case ZSet:
		return p.Do(ctx, "ZRANGE", key, 0, -1, "WITHSCORES")
	case List:
		return p.LRange(ctx, key, 0, -1)
	case Whole:
		return p.Dump(ctx, key)
	}
	return nil
}

// fillValues puts the replies of valueCmd's reads into out's States.
func fillValues(out []State, vals []redis.Cmder) {
	for i := range out {
		s := &out[i]
		switch c := vals[i].(type) {
		case *redis.StringCmd:
			b, err := c.Bytes()
			s.Str = b
			s.changed(err)
		case *redis.MapStringStringCmd:
			m, err := c.Result()
			for f, v := range m {
				s.Fields = append(s.Fields, []byte(f), []byte(v))
			}
			s.Fields = sortFields(s.Fields)
			s.changed(err)
		case *redis.StringSliceCmd:
			m, err := c.Result()
			for _, v := range m {
				s.Members = append(s.Members, []byte(v))
			}
			if s.Kind == Set {
				sortMembers(s.Members)
			}
			s.changed(err)
		case *redis.Cmd:
			m, err := c.StringSlice()
			for _, v := range m {
				s.Fields = append(s.Fields, []byte(v))
			}
			s.Fields = zsetFields(s.Fields)
			s.changed(err)
		}
		if s.Kind != None && s.Kind != Other && s.empty() {
			// deleted (or expired) between the round trips
			*s = State{}
		}
	}
}

// readKinds reads keys of which kinds says the type (a notification's),
// with plain commands in one MULTI: per key TYPE, PEXPIRETIME and the read
// of that type's value, all at one moment. For Redis this costs several
// times less than the read script (which turns every element into a Lua
// value and back). ok[i] is false where the key is of another type than
// kinds[i] (read it with read).
func (r *reader) readKinds(ctx context.Context, keys []string, kinds []Kind) (out []State, ok []bool, err error) {
	out, ok = make([]State, len(keys)), make([]bool, len(keys))
	if len(keys) == 0 {
		return out, ok, nil
	}
	types := make([]*redis.StatusCmd, len(keys))
	deadlines := make([]*redis.Cmd, len(keys))
	vals := make([]redis.Cmder, len(keys))
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			types[i] = p.Type(ctx, k)
			deadlines[i] = p.Do(ctx, "PEXPIRETIME", k)
			vals[i] = valueCmd(ctx, p, k, kinds[i])
		}
		return nil
	})
	if err != nil && !isNilOrWrongType(err) {
		return nil, nil, fmt.Errorf("read %d keys from backend: %w", len(keys), err)
	}
	for i := range keys {
		s := &out[i]
		s.Kind = kindOf(types[i].Val())
		switch {
		case s.Kind == None:
			ok[i], vals[i] = true, nil
			continue
		case s.Kind != kinds[i]:
			vals[i] = nil
			continue
		}
		ok[i] = true
		if d, _ := deadlines[i].Int64(); d > 0 {
			s.At = d
		}
	}
	fillValues(out, vals)
	return out, ok, nil
}

// changed marks a State whose value read failed because the key changed in
// between (deleted: redis.Nil; another type: WRONGTYPE).
func (s *State) changed(err error) {
	switch {
	case err == nil:
	case errors.Is(err, redis.Nil):
		*s = State{}
	default:
		*s = State{Kind: Other}
	}
}

func (s State) empty() bool {
	switch s.Kind {
	case Hash:
		return len(s.Fields) == 0
	case Set, List:
		return len(s.Members) == 0
	case ZSet:
		return len(s.Fields) == 0
	}
	return false
}

func isNilOrWrongType(err error) bool {
	return errors.Is(err, redis.Nil) || strings.HasPrefix(err.Error(), "WRONGTYPE")
}

// readByScript reads keys with one call of readScript: a reply per key of
// its type, its deadline and its value (a string, or an array of fields
// and values or of members). One round trip for the batch, and each key's
// type, deadline and value read at one moment.
func (r *reader) readByScript(ctx context.Context, keys []string, out []State) ([]State, error) {
	reply, err := readScript.Run(ctx, r.rdb, keys).Slice()
	if err != nil {
		return nil, fmt.Errorf("read %d keys from backend: %w", len(keys), err)
	}
	if len(reply) != len(keys) {
		return nil, fmt.Errorf("read %d keys from backend: %d replies", len(keys), len(reply))
	}
	for i, rep := range reply {
		e, ok := rep.([]any)
		if !ok || len(e) < 2 {
			return nil, fmt.Errorf("read key %q from backend: reply %T", keys[i], rep)
		}
		typ, _ := e[0].(string)
		s := &out[i]
		s.Kind = kindOf(typ)
		if s.Kind == Whole {
			s.Type = typ
		}
		if at, _ := e[1].(int64); at > 0 {
			s.At = at
		}
		var val any
		if len(e) > 2 {
			val = e[2]
		}
		switch s.Kind {
		case String:
			v, _ := val.(string)
			s.Str = []byte(v)
		case Whole:
			v, ok := val.(string)
			if !ok {
				s.Kind = Other // no payload: left alone
			}
			s.Str = []byte(v)
		case Hash, Set, ZSet, List:
			arr, _ := val.([]any)
			for _, x := range arr {
				v, _ := x.(string)
				if s.Kind == Hash || s.Kind == ZSet {
					s.Fields = append(s.Fields, []byte(v))
				} else {
					s.Members = append(s.Members, []byte(v))
				}
			}
			switch s.Kind {
			case Hash:
				s.Fields = sortFields(s.Fields)
			case ZSet:
				s.Fields = zsetFields(s.Fields)
			case Set:
				sortMembers(s.Members)
			}
		}
	}
	return out, nil
}

// zsetFields turns ZRANGE WITHSCORES' reply (member, score ...) into a
// State's Fields: scores as scoreText writes them, members in name order.
func zsetFields(f [][]byte) [][]byte {
	for i := 1; i < len(f); i += 2 {
		f[i] = normalScore(f[i])
	}
	return sortFields(f)
}
