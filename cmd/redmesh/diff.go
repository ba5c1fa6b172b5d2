package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/redmesh/redmesh/hlc"
)

// errDiffer makes diff exit 1 when the nodes differ, as diff(1) does.
var errDiffer = errors.New("the nodes differ")

func diffCmd() *cobra.Command {
	var (
		nf    nodeFlags
		match string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "diff ADDR1 ADDR2",
		Short: "Show which keys differ between two nodes, and their versions",
		Long: `List the keys of two running nodes (SCAN) and compare each key's versions
(MESH VERSION): a key held by one node only, or with another version of its
value or its expiry on the other, differs. A version is HLC@NODE: the write's
hybrid logical clock (Unix milliseconds.counter) and the ID of the node that
made it; the higher wins everywhere. Exits 0 when the nodes hold the
same keys at the same versions, 1 when they differ. Writes going on during
the comparison show as differences: compare quiet nodes, or again.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, b := nf.client(args[0]), nf.client(args[1])
			defer a.Close()
			defer b.Close()
			ctx := cmd.Context()
			d, err := diffNodes(ctx, a, b, match)
			if err != nil {
				return err
			}
			d.render(cmd.OutOrStdout(), args[0], args[1], limit)
			if len(d.differ) > 0 {
				return errDiffer
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&match, "match", "*", "compare only keys matching this glob (SCAN MATCH)")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many differing keys (0: all)")
	nf.add(cmd)
	return cmd
}

// keyVersion is a key's register versions on one node, as MESH VERSION
// answers them; a register never written has timestamp 0.
type keyVersion struct {
	valueTS, expiryTS     int64
	valueNode, expiryNode string
}

// String is "TS@NODE" when both registers hold the same version (a SET),
// else each apart.
func (v keyVersion) String() string {
	if v.valueTS == 0 && v.expiryTS == 0 {
		return "absent"
	}
	value := fmt.Sprintf("%s@%s", hlc.Timestamp(v.valueTS), v.valueNode)
	if v.expiryTS == v.valueTS && v.expiryNode == v.valueNode {
		return value
	}
	if v.expiryTS == 0 {
		return "value " + value
	}
	return fmt.Sprintf("value %s, expiry %s@%s", value, hlc.Timestamp(v.expiryTS), v.expiryNode)
}

type keyDiff struct {
	key              string
	a, b             keyVersion
	listedA, listedB bool // SCAN lists the key: it is live there
}

// side is how one node holds a key: absent, or its versions, noting a key
// that has versions but is not live (a tombstone, or expired).
func side(v keyVersion, listed bool) string {
	if listed || v.String() == "absent" {
		return v.String()
	}
	return "deleted or expired: " + v.String()
}

type diffResult struct {
	compared, onlyA, onlyB int
	differ                 []keyDiff
}

// scanKeys lists every key of a node matching match.
func scanKeys(ctx context.Context, c *redis.Client, match string) (map[string]bool, error) {
	keys := map[string]bool{}
	iter := c.Scan(ctx, 0, match, 1000).Iterator()
	for iter.Next(ctx) {
		keys[iter.Val()] = true
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("SCAN %s: %w", c.Options().Addr, err)
	}
	return keys, nil
}

// versions asks a node for the versions of keys, pipelined in batches.
func versions(ctx context.Context, c *redis.Client, keys []string) ([]keyVersion, error) {
	out := make([]keyVersion, 0, len(keys))
	const batch = 1000
	for start := 0; start < len(keys); start += batch {
		part := keys[start:min(start+batch, len(keys))]
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(part))
		for i, k := range part {
			cmds[i] = pipe.Do(ctx, "MESH", "VERSION", k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("MESH VERSION at %s: %w", c.Options().Addr, err)
		}
		for i, cmd := range cmds {
			v, err := cmd.Slice()
			if err != nil || len(v) != 4 {
				return nil, fmt.Errorf("MESH VERSION %q at %s: %v %v", part[i], c.Options().Addr, v, err)
			}
			kv := keyVersion{}
			kv.valueTS, _ = v[0].(int64)
			kv.valueNode, _ = v[1].(string)
			kv.expiryTS, _ = v[2].(int64)
			kv.expiryNode, _ = v[3].(string)
			out = append(out, kv)
		}
	}
	return out, nil
}

func diffNodes(ctx context.Context, a, b *redis.Client, match string) (*diffResult, error) {
	ka, err := scanKeys(ctx, a, match)
	if err != nil {
		return nil, err
	}
	kb, err := scanKeys(ctx, b, match)
	if err != nil {
		return nil, err
	}
	union := make([]string, 0, len(ka)+len(kb))
	for k := range ka {
		union = append(union, k)
	}
	for k := range kb {
		if !ka[k] {
			union = append(union, k)
		}
	}
	sort.Strings(union)
	va, err := versions(ctx, a, union)
	if err != nil {
		return nil, err
	}
	vb, err := versions(ctx, b, union)
	if err != nil {
		return nil, err
	}
	d := &diffResult{compared: len(union)}
	for i, k := range union {
		if va[i] == vb[i] && ka[k] == kb[k] {
			continue
		}
		switch {
		case !kb[k]:
			d.onlyA++
		case !ka[k]:
			d.onlyB++
		}
		d.differ = append(d.differ, keyDiff{key: k, a: va[i], b: vb[i], listedA: ka[k], listedB: kb[k]})
	}
	return d, nil
}

func (d *diffResult) render(w io.Writer, addrA, addrB string, limit int) {
	if len(d.differ) == 0 {
		fmt.Fprintf(w, "%d keys, the same on both nodes\n", d.compared)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "KEY\t%s\t%s\n", addrA, addrB)
	for i, k := range d.differ {
		if limit > 0 && i == limit {
			fmt.Fprintf(tw, "... and %d more\t\t\n", len(d.differ)-limit)
			break
		}
		fmt.Fprintf(tw, "%q\t%s\t%s\n", k.key, side(k.a, k.listedA), side(k.b, k.listedB))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d keys differ: %d only on %s, %d only on %s, %d at other versions\n",
		len(d.differ), d.compared, d.onlyA, addrA, d.onlyB, addrB, len(d.differ)-d.onlyA-d.onlyB)
}
