package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func forgetCmd() *cobra.Command {
	var (
		nf   nodeFlags
		addr string
	)
	cmd := &cobra.Command{
		Use:   "forget PEER-ID",
		Short: "Remove a member from a node's view of the mesh, so it no longer holds garbage collection back",
		Long: `Tell a running node (over RESP: MESH FORGET) that a member is gone for good.
A member that is away holds collection back: tombstones and removal traces
wait until every member has seen them. Once forgotten it no longer does, the
node stops dialling it, and if it ever comes back, whatever it holds from
before what the mesh has collected is set aside (MESH SETASIDE lists it), not
merged; its newer writes merge as usual. Run it on every node that should
forget the member (or give them --forget-after).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := nf.client(addr)
			defer c.Close()
			if err := c.Do(cmd.Context(), "MESH", "FORGET", args[0]).Err(); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "forgot %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&addr, "addr", "a", "127.0.0.1:6380", "the node's RESP address (HOST:PORT)")
	nf.add(cmd)
	return cmd
}
