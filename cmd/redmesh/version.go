package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/redmesh/redmesh/version"
)

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Long: `Print the version: the one a release build stamped (make build), the
module's for go install, or else the git revision the binary was built from.`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "redmesh %s %s %s/%s\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
