package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdConn is a client's connection as the loop holds it: a descriptor of
// its own, out of the runtime's poller, read and written by the loop.
// Once the connection is handed to a goroutine it goes through a net.Conn
// (toNetConn).
type fdConn struct {
	fd            int
	local, remote net.Addr
	nc            atomic.Pointer[net.Conn] // set by toNetConn
	closed        atomic.Bool
}

var errLoopServed = errors.New("connection served by the event loop")

// toNetConn moves the descriptor into a net.Conn, in the runtime's poller.
func (f *fdConn) toNetConn() error {
	file := os.NewFile(uintptr(f.fd), "client")
	nc, err := net.FileConn(file) // a duplicate
	file.Close()
	if err != nil {
		f.closed.Store(true)
		return fmt.Errorf("make a net.Conn of the descriptor: %w", err)
	}
	f.nc.Store(&nc)
	return nil
}

func (f *fdConn) conn() net.Conn {
	if p := f.nc.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fdConn) Read(b []byte) (int, error) {
	if nc := f.conn(); nc != nil {
		return nc.Read(b)
	}
	return 0, errLoopServed
}

func (f *fdConn) Write(b []byte) (int, error) {
	if nc := f.conn(); nc != nil {
		return nc.Write(b)
	}
	return 0, errLoopServed
}

// Close closes the connection: only the loop closes a descriptor it
// serves (client.closeConn asks it to).
func (f *fdConn) Close() error {
	if nc := f.conn(); nc != nil {
		return nc.Close()
	}
	if f.closed.Swap(true) {
		return nil
	}
	return unix.Close(f.fd)
}

func (f *fdConn) LocalAddr() net.Addr  { return f.local }
func (f *fdConn) RemoteAddr() net.Addr { return f.remote }

// The deadlines matter only to a goroutine's blocking reads; the loop
// closes idle connections itself (closeIdle) and ends its own on a drain.
func (f *fdConn) SetDeadline(t time.Time) error {
	if nc := f.conn(); nc != nil {
		return nc.SetDeadline(t)
	}
	return nil
}

func (f *fdConn) SetReadDeadline(t time.Time) error {
	if nc := f.conn(); nc != nil {
		return nc.SetReadDeadline(t)
	}
	return nil
}

func (f *fdConn) SetWriteDeadline(t time.Time) error {
	if nc := f.conn(); nc != nil {
		return nc.SetWriteDeadline(t)
	}
	return nil
}

// SyscallConn is the net.Conn's, once a goroutine serves the connection
// (a blocked client peeks at its socket through it).
func (f *fdConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := f.conn().(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errLoopServed
}

// FD is the descriptor CLIENT LIST shows.
func (f *fdConn) FD() int {
	if nc := f.conn(); nc != nil {
		return connFD(nc)
	}
	return f.fd
}
