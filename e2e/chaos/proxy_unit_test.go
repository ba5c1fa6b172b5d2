package chaos

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"
)

// The proxy's pipe holds every chunk for the link's delay, keeps the bytes
// in order under jitter, and passes the end of the stream on.
func TestProxyPipeDelays(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pair := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	// client -> in ... pipe ... out -> server
	client, in := pair()
	out, server := pair()
	link := &linkDelay{rng: rand.New(rand.NewPCG(1, 2))}
	const delay = 150 * time.Millisecond
	link.delay.Store(int64(delay))
	link.jitter.Store(int64(50 * time.Millisecond))
	go pipe(out, in, link)

	var want []byte
	for i := range 64 {
		want = append(want, bytes.Repeat([]byte{byte(i)}, 16<<10)...)
	}
	start := time.Now()
	go func() {
		for b := range slices.Chunk(want, 16<<10) {
			client.Write(b)
			time.Sleep(time.Millisecond)
		}
		client.(*net.TCPConn).CloseWrite()
	}()
	first := make([]byte, 1)
	if _, err := io.ReadFull(server, first); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay {
		t.Errorf("the first byte came after %v, before the delay of %v", d, delay)
	}
	rest, err := io.ReadAll(server) // ends at the client's CloseWrite
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, want) {
		t.Errorf("got %d bytes, want %d in order", len(got), len(want))
	}
}
