// Command meshwait polls INFO replication every -interval and reports how long
// a server took to reach a state, measured from -since (Unix nanoseconds, as
// printed by `date +%s%N` just before the server was started).
//
//	meshwait equal -nodes A,B,C
//	    wait until every node answers with the same mesh_merkle_root
//	meshwait rejoin -node A -peers B,C -since NS
//	    wait until A answers with the Merkle root that B and C agree on; prints
//	    "total_ms resp_ms" (until converged, until A first answered INFO) and
//	    A's catch-up counters on stderr
//	meshwait replica -node A -keys N -since NS
//	    wait until the Redis replica A has master_link_status:up,
//	    master_sync_in_progress:0 and DBSIZE N; prints "total_ms resp_ms"
//
// Nodes are HOST:PORT Redis-protocol addresses.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: meshwait equal|rejoin|replica [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	nodes := fs.String("nodes", "", "comma-separated nodes (equal)")
	node := fs.String("node", "", "the node waited for (rejoin, replica)")
	peers := fs.String("peers", "", "comma-separated peers whose agreed root the node must reach (rejoin)")
	keys := fs.Int64("keys", 0, "DBSIZE the replica must reach (replica)")
	since := fs.Int64("since", 0, "start of the measured interval, Unix nanoseconds (default: now)")
	interval := fs.Duration("interval", 50*time.Millisecond, "polling period")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	_ = fs.Parse(os.Args[2:])
	redis.SetLogger(quiet{}) // refused connections while a server starts are expected

	start := time.Now()
	if *since != 0 {
		start = time.Unix(0, *since)
	}
	ctx := context.Background()
	deadline := time.Now().Add(*timeout)
	var respAt time.Duration = -1

	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for ; ; <-tick.C {
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "meshwait %s: timed out after %v\n", mode, *timeout)
			os.Exit(1)
		}
		switch mode {
		case "equal":
			roots, ok := rootsOf(ctx, split(*nodes))
			if ok && allEqual(roots) {
				fmt.Printf("%.0f\n", ms(time.Since(start)))
				return
			}
		case "rejoin":
			info, err := infoOf(ctx, *node)
			if err != nil {
				continue
			}
			if respAt < 0 {
				respAt = time.Since(start)
			}
			peerRoots, ok := rootsOf(ctx, split(*peers))
			if !ok || !allEqual(peerRoots) || info["mesh_merkle_root"] != peerRoots[0] {
				continue
			}
			total := time.Since(start)
			var counters []string
			for _, k := range []string{"mesh_catchups", "mesh_catchups_by_log", "mesh_catchup_entries", "mesh_catchup_fallbacks", "mesh_sessions", "mesh_keys_repaired", "mesh_push_records_applied"} {
				counters = append(counters, k+"="+info[k])
			}
			fmt.Fprintf(os.Stderr, "meshwait rejoin %s: converged %.0f ms after start (RESP up at %.0f ms): %s\n",
				*node, ms(total), ms(respAt), strings.Join(counters, " "))
			fmt.Printf("%.0f %.0f\n", ms(total), ms(respAt))
			return
		case "replica":
			info, err := infoOf(ctx, *node)
			if err != nil {
				continue
			}
			if respAt < 0 {
				respAt = time.Since(start)
			}
			if info["master_link_status"] != "up" || info["master_sync_in_progress"] != "0" {
				continue
			}
			c := client(*node)
			n, err := c.DBSize(ctx).Result()
			c.Close()
			if err != nil || n != *keys {
				continue
			}
			fmt.Printf("%.0f %.0f\n", ms(time.Since(start)), ms(respAt))
			return
		default:
			fmt.Fprintln(os.Stderr, "meshwait: unknown mode", mode)
			os.Exit(2)
		}
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		PoolSize:        1,
		MaxRetries:      -1,
		DialTimeout:     time.Second,
		ReadTimeout:     5 * time.Second,
		DisableIdentity: true,
	})
}

// infoOf returns the fields of INFO replication on addr, on a fresh connection
// (the server may be restarting between polls).
func infoOf(ctx context.Context, addr string) (map[string]string, error) {
	c := client(addr)
	defer c.Close()
	s, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

func rootsOf(ctx context.Context, addrs []string) ([]string, bool) {
	var roots []string
	for _, a := range addrs {
		info, err := infoOf(ctx, a)
		if err != nil || info["mesh_merkle_root"] == "" {
			return nil, false
		}
		roots = append(roots, info["mesh_merkle_root"])
	}
	return roots, len(roots) > 0
}

func allEqual(s []string) bool {
	for _, x := range s {
		if x != s[0] {
			return false
		}
	}
	return true
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...interface{}) {}
