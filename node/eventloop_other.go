//go:build !linux

package node

import "net"

// eventLoop has no implementation here: every connection is served by a
// goroutine of its own (serveConn).
type eventLoop struct{}

func newEventLoop(*Node) (*eventLoop, error) { return nil, nil }

func (*eventLoop) run()                 {}
func (*eventLoop) accept(net.Conn) bool { return false }
func (*eventLoop) requestClose(*client) {}
func (*eventLoop) drain()               {}
func (*eventLoop) stop()                {}
