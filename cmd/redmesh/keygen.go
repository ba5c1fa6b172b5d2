package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
)

func keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen [FILE]",
		Short: "Write a new pre-shared key for a private mesh",
		Long: `Write a new random 256-bit pre-shared key in libp2p's swarm key format
(/key/swarm/psk/1.0.0/) to FILE (mode 0600; an existing file is not
overwritten), or to standard output. Give the same file to every node of the
mesh with --psk-file: nodes without it cannot connect.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return err
			}
			text := "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(key) + "\n"
			if len(args) == 0 {
				_, err := fmt.Fprint(cmd.OutOrStdout(), text)
				return err
			}
			f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				if errors.Is(err, fs.ErrExist) {
					return fmt.Errorf("%s exists: not overwriting a key nodes may be using", args[0])
				}
				return err
			}
			if _, err := f.WriteString(text); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
}
