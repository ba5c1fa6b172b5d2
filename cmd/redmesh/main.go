// Command redmesh runs a redmesh node: a leaderless peer-to-peer mesh that
// keeps Redis-compatible key-value data in sync across sites.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		if errors.Is(err, errDiffer) { // said already, as diff(1) does
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "redmesh:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "redmesh",
		Short:         "A leaderless mesh that keeps Redis-compatible data in sync across sites",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), statusCmd(), diffCmd(), forgetCmd(), importCmd(), idCmd(), keygenCmd(), versionCmd(), simCmd())
	return root
}
