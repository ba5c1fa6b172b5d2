package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// rawConn dials the node for requests written and replies read by hand.
func rawConn(t *testing.T, c *redis.Client) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", c.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(time.Minute))
	return nc, bufio.NewReader(nc)
}

// TestLongPipelineAnsweredWhole: a pipeline several times longer than a
// round answers (maxPipeline), sent in one write, is answered whole and
// in order, though after the first round the rest waits in the server's
// buffer (grown for a large request in front), not on the socket.
func TestLongPipelineAnsweredWhole(t *testing.T) {
	_, c := openNode(t, t.TempDir())
	nc, rd := rawConn(t, c)
	const k = 5*maxPipeline + 17
	var req strings.Builder
	value := strings.Repeat("v", 1<<20)
	fmt.Fprintf(&req, "*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$%d\r\n%s\r\n", len(value), value)
	for range k {
		req.WriteString("*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n")
	}
	if _, err := io.WriteString(nc, req.String()); err != nil {
		t.Fatal(err)
	}
	if line, err := rd.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("SET = %q, %v", line, err)
	}
	for i := 1; i <= k; i++ {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, k, err)
		}
		if want := fmt.Sprintf(":%d\r\n", i); line != want {
			t.Fatalf("reply %d = %q, want %q", i, line, want)
		}
	}
}

// TestClientReadingLateStallsNoOne: a client that pipelines requests for
// tens of megabytes of replies and reads none of them until others have
// been served holds none of them up, and then reads every reply whole.
func TestClientReadingLateStallsNoOne(t *testing.T) {
	_, c := openNode(t, t.TempDir())
	ctx := context.Background()
	value := strings.Repeat("v", 256<<10)
	if err := c.Set(ctx, "big", value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	nc, rd := rawConn(t, c)
	const gets = 160 // 40 MiB of replies
	var req strings.Builder
	for range gets {
		req.WriteString("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
	}
	if _, err := io.WriteString(nc, req.String()); err != nil {
		t.Fatal(err)
	}

	// Others are served meanwhile.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			o := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Protocol: 2, PoolSize: 1, ReadTimeout: 30 * time.Second})
			defer o.Close()
			for j := range 50 {
				key := fmt.Sprint("k", i)
				if err := o.Set(ctx, key, j, 0).Err(); err != nil {
					t.Errorf("client %d SET while another reads late: %v", i, err)
					return
				}
				if got, err := o.Get(ctx, key).Int(); err != nil || got != j {
					t.Errorf("client %d GET = %d, %v; want %d", i, got, err, j)
					return
				}
			}
		})
	}
	// A server that waited for the late reader before serving them would
	// never get here, or would have cut the late reader off.
	wg.Wait()

	want := fmt.Sprintf("$%d\r\n%s\r\n", len(value), value)
	buf := make([]byte, len(want))
	for i := range gets {
		if _, err := io.ReadFull(rd, buf); err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, gets, err)
		}
		if string(buf) != want {
			t.Fatalf("reply %d is not the value", i+1)
		}
	}
}

// TestCountersFromManyClients: clients each sending one INCR at a time,
// their requests answered together, get every count once.
func TestCountersFromManyClients(t *testing.T) {
	_, c := openNode(t, t.TempDir())
	ctx := context.Background()
	const clients, each = 24, 200
	var mu sync.Mutex
	seen := make(map[int64]bool)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			o := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Protocol: 2, PoolSize: 1})
			defer o.Close()
			for range each {
				v, err := o.Incr(ctx, "count").Result()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				dup := seen[v]
				seen[v] = true
				mu.Unlock()
				if dup {
					t.Errorf("INCR answered %d twice", v)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := c.Get(ctx, "count").Int(); err != nil || got != clients*each {
		t.Fatalf("count = %d, %v; want %d", got, err, clients*each)
	}
}
