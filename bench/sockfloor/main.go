// Command sockfloor is a Redis-protocol server that does nothing: it answers
// every command with +OK. It measures the floor of a Go server's per-command
// cost at redis-benchmark -P 1, where each command is a read and a write on
// its socket, in two shapes:
//
//   - goroutines: the net package, one goroutine per connection, as the node
//     serves its clients (a read, the reply written, then a read that finds
//     nothing yet and parks the goroutine in the runtime's poller);
//   - epoll: one thread in an epoll loop over non-blocking sockets, as Redis
//     serves its clients (a socket is read only when epoll says it is ready).
//
// Both parse the same way, so what differs is only how they wait and wake.
// Linux only (epoll).
//
// Usage: go run ./bench/sockfloor -mode goroutines|epoll -port 16390
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

func main() {
	mode := flag.String("mode", "goroutines", "goroutines or epoll")
	port := flag.Int("port", 16390, "port to listen on (127.0.0.1)")
	flag.Parse()
	var err error
	switch *mode {
	case "goroutines":
		err = serveGoroutines(*port)
	case "epoll":
		err = serveEpoll(*port)
	default:
		err = fmt.Errorf("mode %q: want goroutines or epoll", *mode)
	}
	log.Fatal(err)
}

// commands counts the whole RESP arrays at the start of buf and the bytes
// they take. Anything it does not understand ends the count: the rest waits
// for more bytes (a benchmark's client sends only well-formed commands).
func commands(buf []byte) (n, used int) {
	for used < len(buf) {
		end, ok := command(buf[used:])
		if !ok {
			break
		}
		n++
		used += end
	}
	return n, used
}

// command returns the length of the one RESP array at the start of b.
func command(b []byte) (int, bool) {
	argc, p, ok := header(b, '*')
	if !ok {
		return 0, false
	}
	for range argc {
		l, q, ok := header(b[p:], '$')
		if !ok {
			return 0, false
		}
		p += q + l + 2
		if p > len(b) {
			return 0, false
		}
	}
	return p, true
}

// header reads a line "<kind><number>\r\n" and returns the number and the
// line's length.
func header(b []byte, kind byte) (int, int, bool) {
	if len(b) == 0 || b[0] != kind {
		return 0, 0, false
	}
	end := bytes.Index(b, []byte("\r\n"))
	if end < 2 || end > 12 {
		return 0, 0, false
	}
	n := 0
	for _, c := range b[1:end] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, end + 2, true
}

// conn is one connection's unparsed input and pending replies.
type conn struct {
	in, out []byte
}

// feed takes bytes read from the socket and queues a reply for each whole
// command among them.
func (c *conn) feed(b []byte) {
	c.in = append(c.in, b...)
	n, used := commands(c.in)
	c.in = c.in[:copy(c.in, c.in[used:])]
	c.out = c.out[:0]
	for range n {
		c.out = append(c.out, "+OK\r\n"...)
	}
}

func serveGoroutines(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			defer nc.Close()
			var c conn
			buf := make([]byte, 16<<10)
			for {
				n, err := nc.Read(buf)
				if err != nil {
					return
				}
				c.feed(buf[:n])
				if len(c.out) > 0 {
					if _, err := nc.Write(c.out); err != nil {
						return
					}
				}
			}
		}()
	}
}

func serveEpoll(port int) error {
	runtime.LockOSThread()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(lfd, 1024); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ep, err := unix.EpollCreate1(0)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return fmt.Errorf("epoll add: %w", err)
	}
	conns := map[int]*conn{}
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.EpollWait(ep, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		} else if err != nil {
			return fmt.Errorf("epoll wait: %w", err)
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				for {
					cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK)
					if err != nil {
						break
					}
					unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					if unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, cfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(cfd)}) != nil {
						unix.Close(cfd)
						continue
					}
					conns[cfd] = &conn{}
				}
				continue
			}
			c := conns[fd]
			m, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EAGAIN) {
				continue
			}
			if m <= 0 {
				unix.Close(fd) // closing removes it from the epoll set
				delete(conns, fd)
				continue
			}
			c.feed(buf[:m])
			if len(c.out) > 0 {
				// A reply of a few bytes fits the socket's buffer; a
				// benchmark's -P 1 never fills it.
				unix.Write(fd, c.out)
			}
		}
	}
}
