// Command bridgeload writes to a Redis-protocol server at a fixed rate: each
// millisecond a pipeline of rate/1000 SETs of random keys among -keys, with
// 100-byte values, or, with -hashes, HSETs of random fields among -fields of
// random hashes among -hashes (large keys changed a field at a time). It
// prints the writes it sent.
//
// Usage: go run ./bench/bridgeload -addr 127.0.0.1:22200 -rate 10000 -duration 10s [-hashes 20 -fields 2000]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "server to write to")
	rate := flag.Int("rate", 10000, "SETs a second")
	duration := flag.Duration("duration", 10*time.Second, "how long")
	keys := flag.Int("keys", 100000, "key space")
	hashes := flag.Int("hashes", 0, "write HSETs to this many hashes instead of SETs")
	fields := flag.Int("fields", 1000, "fields of each hash (with -hashes)")
	flag.Parse()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: *addr, Protocol: 2})
	defer c.Close()
	value := strings.Repeat("v", 100)
	per := max(*rate/1000, 1)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(*duration)
	sent := 0
	start := time.Now()
	for now := range tick.C {
		if now.After(end) {
			break
		}
		// Catch up on ticks a slow round trip skipped, so the rate holds.
		due := int(time.Since(start).Milliseconds())*per - sent
		if due <= 0 {
			continue
		}
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range due {
				if *hashes > 0 {
					p.HSet(ctx, fmt.Sprintf("hload:%d", rand.IntN(*hashes)), fmt.Sprintf("f%d", rand.IntN(*fields)), value)
				} else {
					p.Set(ctx, fmt.Sprintf("load:%d", rand.IntN(*keys)), value, 0)
				}
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "bridgeload:", err)
			os.Exit(1)
		}
		sent += due
	}
	fmt.Println(sent)
}
