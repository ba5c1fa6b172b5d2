// Command proplat measures propagation latency between two Redis-protocol
// servers: for each sample it writes a fresh value to a key on one server and
// polls GET on the other in a tight loop until the value is visible, timing
// from just before the SET to the first GET that returns it. Samples are
// sequential, over one writer and one reader connection, after a warm-up.
//
// It prints one line: p50_us p99_us max_us samples timeouts
// (microseconds), and a human-readable summary on stderr.
//
// Usage: go run ./bench/proplat -write 127.0.0.1:16381 -read 127.0.0.1:16382 -n 2000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	write := flag.String("write", "127.0.0.1:6379", "server to SET on")
	read := flag.String("read", "127.0.0.1:6380", "server to poll GET on")
	n := flag.Int("n", 2000, "measured samples")
	warmup := flag.Int("warmup", 200, "samples run first and not counted")
	key := flag.String("key", "proplat:key", "key written and read")
	timeout := flag.Duration("timeout", 5*time.Second, "give up on one sample after this long")
	flag.Parse()

	ctx := context.Background()
	w := client(*write)
	r := client(*read)
	defer w.Close()
	defer r.Close()

	// A run tag keeps values unique across runs against the same servers.
	tag := time.Now().UnixNano()
	var lat []time.Duration
	timeouts := 0
	polls := 0
	for i := 0; i < *warmup+*n; i++ {
		val := fmt.Sprintf("%d-%d", tag, i)
		d, p, err := sample(ctx, w, r, *key, val, *timeout)
		polls += p
		if err != nil {
			if errors.Is(err, errTimeout) {
				if i >= *warmup {
					timeouts++
				}
				continue
			}
			fmt.Fprintln(os.Stderr, "proplat:", err)
			os.Exit(1)
		}
		if i >= *warmup {
			lat = append(lat, d)
		}
	}
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "proplat: no sample completed")
		os.Exit(1)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99, max := pct(lat, 50), pct(lat, 99), lat[len(lat)-1]
	fmt.Fprintf(os.Stderr, "proplat %s -> %s: %d samples, p50 %v, p99 %v, max %v, %d timeouts, %.1f GETs per sample\n",
		*write, *read, len(lat), p50, p99, max, timeouts, float64(polls)/float64(*warmup+*n))
	fmt.Printf("%.1f %.1f %.1f %d %d\n", us(p50), us(p99), us(max), len(lat), timeouts)
}

var errTimeout = errors.New("value not visible before the timeout")

// sample writes val on w and polls r until it reads val back.
func sample(ctx context.Context, w, r *redis.Client, key, val string, timeout time.Duration) (time.Duration, int, error) {
	start := time.Now()
	if err := w.Set(ctx, key, val, 0).Err(); err != nil {
		return 0, 0, fmt.Errorf("SET: %w", err)
	}
	polls := 0
	for {
		got, err := r.Get(ctx, key).Result()
		polls++
		if err != nil && err != redis.Nil {
			return 0, polls, fmt.Errorf("GET: %w", err)
		}
		if got == val {
			return time.Since(start), polls, nil
		}
		if time.Since(start) > timeout {
			return 0, polls, errTimeout
		}
	}
}

func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		PoolSize:        1,
		MaxRetries:      -1,
		DisableIdentity: true,
	})
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return sorted[i-1]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
