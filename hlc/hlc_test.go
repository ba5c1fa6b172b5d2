package hlc

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeWall is a wall clock the test moves by hand, backwards too.
type fakeWall struct{ t time.Time }

func (f *fakeWall) now() time.Time { return f.t }

func TestTimestampPacking(t *testing.T) {
	for _, tc := range []struct {
		millis  int64
		counter uint16
	}{
		{0, 0}, {1, 0}, {0, 1}, {1_700_000_000_000, 65535}, {maxMillis, 7},
	} {
		ts := New(tc.millis, tc.counter)
		if ts.Millis() != tc.millis || ts.Counter() != tc.counter {
			t.Errorf("New(%d,%d) = %v, unpacks to (%d,%d)", tc.millis, tc.counter, ts, ts.Millis(), ts.Counter())
		}
	}
	if New(5, 65535) >= New(6, 0) {
		t.Error("counter overflow must not order after the next millisecond")
	}
}

func TestNowMonotonicWhenWallClockJumpsBack(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	c := NewClock(Config{Now: wall.now})
	var prev Timestamp
	steps := []time.Duration{0, 0, time.Millisecond, -time.Hour, 0, 2 * time.Hour, -time.Second}
	for i, d := range steps {
		wall.t = wall.t.Add(d)
		ts, err := c.Now()
		if err != nil {
			t.Fatal(err)
		}
		if ts <= prev {
			t.Fatalf("step %d: %v not after %v", i, ts, prev)
		}
		prev = ts
	}
}

func TestNowFollowsWallClock(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	c := NewClock(Config{Now: wall.now})
	ts, _ := c.Now()
	if ts != New(1_700_000_000_000, 0) {
		t.Fatalf("first timestamp %v, want wall clock with counter 0", ts)
	}
	ts, _ = c.Now()
	if ts != New(1_700_000_000_000, 1) {
		t.Fatalf("second timestamp in the same ms %v, want counter 1", ts)
	}
}

func TestObserve(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	for _, tc := range []struct {
		name    string
		ahead   time.Duration
		refused bool
	}{
		{"behind", -time.Hour, false},
		{"slightly ahead", 10 * time.Second, false},
		{"at the limit", time.Minute, false},
		{"beyond the limit", time.Minute + time.Millisecond, true},
		{"far ahead", 24 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wall := &fakeWall{base}
			c := NewClock(Config{Now: wall.now, MaxSkew: time.Minute})
			before, _ := c.Now()
			remote := FromTime(base.Add(tc.ahead))
			err := c.Observe(remote)
			if tc.refused {
				if !errors.Is(err, ErrClockSkew) {
					t.Fatalf("Observe(%v) = %v, want ErrClockSkew", tc.ahead, err)
				}
				if c.Refused() != 1 {
					t.Fatalf("refused count %d, want 1", c.Refused())
				}
				if c.Last() != before {
					t.Fatalf("refused timestamp was adopted: last %v", c.Last())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			next, _ := c.Now()
			if next <= remote || next <= before {
				t.Fatalf("Now() = %v after observing %v", next, remote)
			}
		})
	}
}

func TestHighWaterSurvivesRestart(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	var persisted Timestamp
	persists := 0
	cfg := Config{Now: wall.now, Window: time.Second, Persist: func(ts Timestamp) error {
		persisted = ts
		persists++
		return nil
	}}
	c := NewClock(cfg)
	var last Timestamp
	for i := 0; i < 10_000; i++ {
		wall.t = wall.t.Add(time.Duration(rand.IntN(3)) * time.Microsecond * 100)
		ts, err := c.Now()
		if err != nil {
			t.Fatal(err)
		}
		if ts > persisted {
			t.Fatalf("issued %v above persisted mark %v", ts, persisted)
		}
		last = ts
	}
	if persists > 5 {
		t.Errorf("persisted %d times for ~1s of timestamps with a 1s window", persists)
	}

	// Restart with the wall clock set back an hour.
	wall.t = wall.t.Add(-time.Hour)
	cfg.HighWater = persisted
	c2 := NewClock(cfg)
	ts, err := c2.Now()
	if err != nil {
		t.Fatal(err)
	}
	if ts <= last {
		t.Fatalf("after restart issued %v, not after %v", ts, last)
	}
}

// TestNowN checks that NowN issues n timestamps as n calls of Now would:
// consecutive, after everything issued before, before everything after,
// and all of them under the persisted mark.
func TestNowN(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	var persisted Timestamp
	c := NewClock(Config{Now: wall.now, Window: time.Second, Persist: func(ts Timestamp) error {
		persisted = ts
		return nil
	}})
	var prev Timestamp
	for i := range 2_000 {
		n := 1 + i*i%70_000 // up to more than a millisecond's 65,536 counters
		if i%3 == 0 {
			wall.t = wall.t.Add(time.Millisecond)
		}
		first, err := c.NowN(n)
		if err != nil {
			t.Fatal(err)
		}
		last := first + Timestamp(n-1)
		if first <= prev {
			t.Fatalf("NowN(%d) issued %v, not after %v", n, first, prev)
		}
		if last > persisted {
			t.Fatalf("NowN(%d) issued up to %v, above the persisted mark %v", n, last, persisted)
		}
		if c.Last() != last {
			t.Fatalf("NowN(%d) from %v: the clock's last is %v, want %v", n, first, c.Last(), last)
		}
		prev = last
	}
	if _, err := c.NowN(0); err == nil {
		t.Fatal("NowN(0) issued a timestamp")
	}
}

func TestPersistFailureIssuesNothing(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	fail := errors.New("disk full")
	c := NewClock(Config{Now: wall.now, Persist: func(Timestamp) error { return fail }})
	if _, err := c.Now(); !errors.Is(err, fail) {
		t.Fatalf("Now() error %v, want the persist error", err)
	}
	if c.Last() != 0 {
		t.Fatalf("clock advanced to %v without a persisted mark", c.Last())
	}
}

// Property: interleaved local events and observations, with a wandering wall
// clock, always yield strictly increasing local timestamps that order after
// everything accepted.
func TestPropertyMonotonic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 200; run++ {
		wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
		c := NewClock(Config{Now: wall.now})
		var prev Timestamp
		for i := 0; i < 200; i++ {
			wall.t = wall.t.Add(time.Duration(r.IntN(2000)-1000) * time.Millisecond)
			if r.IntN(3) == 0 {
				remote := FromTime(wall.t.Add(time.Duration(r.IntN(240)-120) * time.Second))
				if err := c.Observe(remote); err == nil && remote > prev {
					prev = remote
				}
				continue
			}
			ts, err := c.Now()
			if err != nil {
				t.Fatal(err)
			}
			if ts <= prev {
				t.Fatalf("run %d step %d: %v not after %v", run, i, ts, prev)
			}
			prev = ts
		}
	}
}

// A clock whose caller extends it in time persists only from Extend, about
// once per half window, after the first timestamp.
func TestExtendKeepsNowOffStorage(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	persists, inExtend, fromNow := 0, false, 0
	c := NewClock(Config{Now: wall.now, Window: time.Second, Persist: func(Timestamp) error {
		persists++
		if !inExtend {
			fromNow++
		}
		return nil
	}})
	for i := 0; i < 10_000; i++ { // 10 s of wall time, a timestamp a millisecond
		wall.t = wall.t.Add(time.Millisecond)
		if _, err := c.Now(); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			inExtend = true
			if err := c.Extend(); err != nil {
				t.Fatal(err)
			}
			inExtend = false
		}
	}
	if fromNow != 1 {
		t.Errorf("Now persisted %d times, want once (the first timestamp)", fromNow)
	}
	// Each extension comes when at most half a window is left, seen at most
	// 100 ms late: one every 0.5–0.6 s.
	if persists < 16 || persists > 21 {
		t.Errorf("persisted %d times in 10 s with a 1 s window, want 17–20", persists)
	}
}

// An idle clock is not extended, and its next timestamp persists a mark
// before it is issued.
func TestExtendIdle(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	var marks []Timestamp
	c := NewClock(Config{Now: wall.now, Window: time.Second, Persist: func(m Timestamp) error {
		marks = append(marks, m)
		return nil
	}})
	if err := c.Extend(); err != nil || len(marks) != 0 {
		t.Fatalf("a clock that issued nothing extended: %v %v", marks, err)
	}
	if _, err := c.Now(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		wall.t = wall.t.Add(time.Second)
		if err := c.Extend(); err != nil {
			t.Fatal(err)
		}
	}
	if len(marks) != 1 {
		t.Fatalf("idle for a minute, persisted %d marks, want 1", len(marks))
	}
	ts, err := c.Now()
	if err != nil {
		t.Fatal(err)
	}
	if len(marks) != 2 || ts > marks[1] {
		t.Fatalf("after idling issued %v with marks %v", ts, marks)
	}
}

// Extend failing leaves Now to persist; nothing is issued above a stored
// mark either way.
func TestExtendFailure(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	fail := errors.New("disk full")
	var stored Timestamp
	failing := false
	c := NewClock(Config{Now: wall.now, Window: time.Second, Persist: func(m Timestamp) error {
		if failing {
			return fail
		}
		stored = m
		return nil
	}})
	if _, err := c.Now(); err != nil {
		t.Fatal(err)
	}
	wall.t = wall.t.Add(800 * time.Millisecond)
	if _, err := c.Now(); err != nil {
		t.Fatal(err)
	}
	failing = true
	if err := c.Extend(); !errors.Is(err, fail) {
		t.Fatalf("Extend error %v, want the persist error", err)
	}
	wall.t = wall.t.Add(time.Second)
	if _, err := c.Now(); !errors.Is(err, fail) {
		t.Fatalf("Now past the stored mark gave %v, want the persist error", err)
	}
	failing = false
	ts, err := c.Now()
	if err != nil || ts > stored {
		t.Fatalf("issued %v (err %v) with the stored mark %v", ts, err, stored)
	}
}

// Property, under the race detector: with Now, Observe and Extend running
// at once, persist calls never overlap, marks are stored in increasing
// order, and no timestamp is issued above the stored mark.
func TestConcurrentExtend(t *testing.T) {
	var wallNanos atomic.Int64
	wallNanos.Store(time.UnixMilli(1_700_000_000_000).UnixNano())
	now := func() time.Time { return time.Unix(0, wallNanos.Add(int64(50*time.Microsecond))) }
	var (
		busy   atomic.Bool
		stored atomic.Uint64
	)
	c := NewClock(Config{Now: now, Window: 20 * time.Millisecond, Persist: func(m Timestamp) error {
		if !busy.CompareAndSwap(false, true) {
			t.Error("persist calls overlap")
		}
		defer busy.Store(false)
		if uint64(m) <= stored.Load() {
			t.Errorf("mark %v stored after %v", m, Timestamp(stored.Load()))
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		stored.Store(uint64(m))
		return nil
	}})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				var ts Timestamp
				switch i % 3 {
				case 0:
					var err error
					if ts, err = c.Now(); err != nil {
						t.Error(err)
						return
					}
				case 1:
					ts = FromTime(now())
					if err := c.Observe(ts); err != nil {
						t.Error(err)
						return
					}
				default:
					if err := c.Extend(); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if uint64(ts) > stored.Load() {
					t.Errorf("%v issued or observed above the stored mark %v", ts, Timestamp(stored.Load()))
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A node restarted again and again within seconds, each time without a
// clean stop, starts at its persisted mark each time; the mark must stay
// about a window ahead of the wall clock, not move a window further ahead at
// every restart (five restarts in 2 s put a node 25 s ahead, beyond any
// sensible --max-clock-skew).
func TestRestartsDoNotRunAhead(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	const window = 5 * time.Second
	var mark Timestamp
	cfg := Config{Now: wall.now, Window: window, Persist: func(m Timestamp) error {
		mark = m
		return nil
	}}
	var ts Timestamp
	for range 10 {
		cfg.HighWater = mark
		c := NewClock(cfg)
		for range 3 {
			var err error
			if ts, err = c.Now(); err != nil {
				t.Fatal(err)
			}
			if err := c.Extend(); err != nil {
				t.Fatal(err)
			}
			wall.t = wall.t.Add(50 * time.Millisecond)
		}
		wall.t = wall.t.Add(50 * time.Millisecond) // the restart
	}
	ahead := ts.Time().Sub(wall.t)
	if ahead > window+window/10 {
		t.Fatalf("after 10 restarts in 2 s the clock runs %v ahead of the wall clock, more than a window (%v)", ahead, window)
	}
	if markAhead := mark.Time().Sub(wall.t); markAhead > window+window/5 {
		t.Fatalf("after 10 restarts in 2 s the persisted mark is %v ahead of the wall clock", markAhead)
	}
}

// After a clean stop (Close) the next start begins at the last timestamp,
// not a window ahead of it, and still after it.
func TestCloseRestartsWhereItStopped(t *testing.T) {
	wall := &fakeWall{time.UnixMilli(1_700_000_000_000)}
	var mark Timestamp
	cfg := Config{Now: wall.now, Window: 5 * time.Second, Persist: func(m Timestamp) error {
		mark = m
		return nil
	}}
	c := NewClock(cfg)
	var last Timestamp
	for range 100 {
		wall.t = wall.t.Add(time.Millisecond)
		var err error
		if last, err = c.Now(); err != nil {
			t.Fatal(err)
		}
	}
	if mark <= last {
		t.Fatalf("mark %v not above the last timestamp %v", mark, last)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if mark != last {
		t.Fatalf("Close persisted %v, want the last timestamp %v", mark, last)
	}
	cfg.HighWater = mark
	c2 := NewClock(cfg)
	ts, err := c2.Now()
	if err != nil {
		t.Fatal(err)
	}
	if ts <= last || ts.Millis() > wall.t.UnixMilli() {
		t.Fatalf("after a clean restart issued %v: want after %v and at the wall clock %v", ts, last, FromTime(wall.t))
	}
	// A clock closed without issuing anything leaves the mark alone.
	before := mark
	if err := NewClock(Config{Now: wall.now, HighWater: mark, Persist: cfg.Persist}).Close(); err != nil || mark != before {
		t.Fatalf("an unused clock's Close persisted %v (%v), want the mark %v kept", mark, err, before)
	}
}
