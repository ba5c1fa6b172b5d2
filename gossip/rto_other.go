//go:build !linux

package gossip

import "errors"

var errNoRTOCap = errors.New("capping TCP's retransmission timeout needs Linux 6.15 or later")

func capRTO(int) error { return errNoRTOCap }

func capListenerRTO(map[int]bool) (int, error) { return 0, errNoRTOCap }
