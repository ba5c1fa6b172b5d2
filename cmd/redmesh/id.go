package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/redmesh/redmesh/node"
)

func idCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print the node's peer ID (creating its identity if needed)",
		Long: `Print the libp2p peer ID of the node whose data directory is --data, creating
the identity if the directory has none yet. Other nodes name this one by it
(--peer /ip4/HOST/tcp/7380/p2p/ID, --allow-peer ID). It opens the data
directory briefly, so it cannot run beside a node using the same directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := node.ReadPeerID(dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data", node.DefaultDataDir, "data directory")
	return cmd
}
