package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// nodeFlags are the flags of the commands that talk to a running node.
type nodeFlags struct {
	password string
	timeout  time.Duration
}

func (f *nodeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.password, "password", "", "password, as the node's --requirepass")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "give up on a node that does not answer within this")
}

// client connects to the node at addr over RESP.
func (f *nodeFlags) client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, Password: f.password, Protocol: 2, DisableIdentity: true,
		DialTimeout: f.timeout, ReadTimeout: f.timeout, WriteTimeout: f.timeout,
		MaxRetries: -1, PoolSize: 4,
	})
}

func statusCmd() *cobra.Command {
	var (
		nf       nodeFlags
		addr     string
		watch    bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a node's view of the mesh: every peer, link, lag, last sync, Merkle root",
		Long: `Connect to a running node over RESP and print the mesh as it sees it: every
peer it knows, whether the link is up, how far behind each peer's log the node
is (entries, and for how long), how many of the node's writes each peer has not
acknowledged (and since when), the last Merkle session with it, and whether
the peer's Merkle root (as it last reported it) equals the node's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := nf.client(addr)
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := cmd.OutOrStdout()
			for {
				st, err := fetchStatus(ctx, c)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					if !watch {
						return fmt.Errorf("%s: %w", addr, err)
					}
				}
				if watch {
					fmt.Fprint(out, "\033[H\033[2J") // home, clear: redraw in place
					fmt.Fprintf(out, "%s  every %v  (Ctrl-C to stop)\n\n", time.Now().Format(time.TimeOnly), interval)
				}
				if err != nil {
					fmt.Fprintf(out, "%s: %v\n", addr, err)
				} else {
					st.render(out, addr)
				}
				if !watch {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&addr, "addr", "a", "127.0.0.1:6380", "the node's RESP address (HOST:PORT)")
	cmd.Flags().BoolVar(&watch, "watch", false, "redraw every --interval until interrupted")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often --watch redraws")
	nf.add(cmd)
	return cmd
}

// meshStatus is what status shows, read from INFO.
type meshStatus struct {
	peerID, root   string
	keys           string
	meshEnabled    bool
	ready          bool
	localSeq       string
	peers          []map[string]string
	refusedSkew    string
	keysRepaired   string
	sessions       string
	connected      int
	redmeshVersion string
	// A bootstrap under way: keys and bytes received and expected.
	booting                 bool
	bootKeys, bootKeysAll   int64
	bootBytes, bootBytesAll int64
}

// infoMap parses INFO's "name:value" lines.
func infoMap(s string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// fields parses "a=1,b=2".
func fields(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

func fetchStatus(ctx context.Context, c *redis.Client) (*meshStatus, error) {
	s, err := c.Info(ctx, "server", "replication", "keyspace").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	return parseStatus(s)
}

// parseStatus reads what status shows from a node's INFO.
func parseStatus(info string) (*meshStatus, error) {
	in := infoMap(info)
	st := &meshStatus{
		peerID:         in["peer_id"],
		root:           in["mesh_merkle_root"],
		meshEnabled:    in["mesh_enabled"] == "1",
		ready:          in["mesh_ready"] != "0",
		localSeq:       in["mesh_last_local_seq"],
		refusedSkew:    in["mesh_refused_clock_skew"],
		keysRepaired:   in["mesh_keys_repaired"],
		sessions:       in["mesh_sessions"],
		redmeshVersion: in["redmesh_version"],
		keys:           "0",
	}
	st.booting = in["mesh_bootstrap_in_progress"] == "1"
	st.bootKeys, _ = strconv.ParseInt(in["mesh_bootstrap_keys"], 10, 64)
	st.bootKeysAll, _ = strconv.ParseInt(in["mesh_bootstrap_keys_total"], 10, 64)
	st.bootBytes, _ = strconv.ParseInt(in["mesh_bootstrap_bytes"], 10, 64)
	st.bootBytesAll, _ = strconv.ParseInt(in["mesh_bootstrap_bytes_total"], 10, 64)
	if db := fields(in["db0"]); db["keys"] != "" {
		st.keys = db["keys"]
	}
	if st.peerID == "" {
		return nil, fmt.Errorf("not a redmesh node (INFO has no peer_id)")
	}
	var names []string
	for k := range in {
		if strings.HasPrefix(k, "mesh_peer") && k != "mesh_peer_id" && k != "mesh_peers" {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.TrimPrefix(names[i], "mesh_peer"))
		b, _ := strconv.Atoi(strings.TrimPrefix(names[j], "mesh_peer"))
		return a < b
	})
	for _, k := range names {
		p := fields(in[k])
		st.peers = append(st.peers, p)
		if p["connected"] == "1" {
			st.connected++
		}
	}
	return st, nil
}

// ago prints a millisecond count as a short duration, or "-" for 0 or
// less.
func ago(ms string) string {
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || v <= 0 {
		return "-"
	}
	d := time.Duration(v) * time.Millisecond
	switch {
	case d < time.Second:
		return d.String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// bootstrapLine draws a bootstrap's progress as a bar: by bytes (the
// server's estimate of the total may be a little off, so it stops at 99%
// until done).
func (st *meshStatus) bootstrapLine() string {
	const width = 30
	pct := int64(0)
	if st.bootBytesAll > 0 {
		pct = max(0, min(99, st.bootBytes*100/st.bootBytesAll))
	}
	fill := int(pct * width / 100)
	return fmt.Sprintf("bootstrapping [%s%s] %d%%: %d of %d keys, %.1f of %.1f MB",
		strings.Repeat("#", fill), strings.Repeat(".", width-fill), pct,
		st.bootKeys, st.bootKeysAll, float64(st.bootBytes)/1e6, float64(st.bootBytesAll)/1e6)
}

func (st *meshStatus) render(w io.Writer, addr string) {
	fmt.Fprintf(w, "node %s at %s (redmesh %s)\n", st.peerID, addr, st.redmeshVersion)
	if !st.meshEnabled {
		fmt.Fprintf(w, "%s keys, Merkle root %s; no mesh (--no-mesh)\n", st.keys, st.root)
		return
	}
	ready := "ready"
	if !st.ready {
		ready = "NOT READY (no sync with a peer yet)"
	}
	fmt.Fprintf(w, "%s keys, Merkle root %s, local writes up to %s, %s\n", st.keys, st.root, st.localSeq, ready)
	if st.booting {
		fmt.Fprintln(w, st.bootstrapLine())
	}
	fmt.Fprintf(w, "peers: %d known, %d connected; Merkle sessions %s, keys repaired %s, clock-skew refusals %s\n\n",
		len(st.peers), st.connected, st.sessions, st.keysRepaired, st.refusedSkew)
	if len(st.peers) == 0 {
		fmt.Fprintln(w, "no peers")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tLINK\tBEHIND\tBEHIND FOR\tUNACKED\tACK LAG\tLAST SYNC\tROOT\tADDR")
	for _, p := range st.peers {
		link := "down"
		if p["connected"] == "1" {
			link = "up"
		}
		root := "unknown"
		switch {
		case p["root"] == "-" || p["root"] == "":
		case p["root_equal"] == "1":
			root = "same"
		default:
			root = "differs"
		}
		last := "never"
		if p["last_sync_ms_ago"] != "-1" {
			last = ago(p["last_sync_ms_ago"]) + " ago"
			if last == "- ago" {
				last = "now"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p["id"], link, p["behind"], ago(p["behind_ms"]),
			p["unacked"], ago(p["ack_lag_ms"]), last, root, p["addr"])
	}
	tw.Flush()
}
