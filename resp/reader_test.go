package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r *Reader) ([][]string, error) {
	t.Helper()
	var out [][]string
	for {
		args, err := r.ReadCommand()
		if err != nil {
			return out, err
		}
		var cmd []string
		for _, a := range args {
			cmd = append(cmd, string(a))
		}
		out = append(out, cmd)
	}
}

func TestReadCommands(t *testing.T) {
	stream := "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhe\r\nl\r\n" + // a value holding CRLF
		"PING\r\n" +
		"\r\n" + // blank line: skipped
		"*0\r\n" + // empty: skipped
		"ECHO \"a b\\x41\\n\" 'it\\'s' x\n" +
		"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"
	want := [][]string{{"SET", "k", "he\r\nl"}, {"PING"}, {"ECHO", "a bA\n", "it's", "x"}, {"ECHO", ""}}
	// Every way of cutting the stream into reads gives the same requests.
	for _, mk := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		iotest.OneByteReader,
		iotest.HalfReader,
		iotest.DataErrReader,
	} {
		r := NewReader(mk(strings.NewReader(stream)), 1<<20)
		got, err := readAll(t, r)
		if err != io.EOF {
			t.Fatalf("ended with %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %q", got)
		}
		for i := range want {
			if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
				t.Fatalf("request %d: %q, want %q", i, got[i], want[i])
			}
		}
	}
}

func TestReadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"bulk length past int64", "*1\r\n$9223372036854775807\r\n", "invalid bulk length"},
		{"bulk length over the limit", "*1\r\n$1025\r\n", "invalid bulk length"},
		{"negative bulk length", "*1\r\n$-5\r\n", "invalid bulk length"},
		{"bulk length not a number", "*1\r\n$abc\r\n", "invalid bulk length"},
		{"bulk without CRLF", "*1\r\n$1\r\nab\r\n", "invalid bulk length"},
		{"too many arguments", "*1048577\r\n", "invalid multibulk length"},
		{"count not a number", "*x\r\n", "invalid multibulk length"},
		{"endless header", "*1\r\n$" + strings.Repeat("1", 100), "invalid bulk length"},
		{"no dollar", "*2\r\n$1\r\na\r\n:5\r\n", "expected '$', got ':'"},
		{"endless inline", strings.Repeat("x", MaxInline+10), "too big inline request"},
		{"inline argument over the limit", "SET k " + strings.Repeat("v", 1025) + "\r\n", "invalid bulk length"},
		{"unbalanced quotes", "SET \"a b\r\n", "unbalanced quotes"},
		{"text after a quote", "SET \"a\"b c\r\n", "unbalanced quotes"},
	} {
		_, err := readAll(t, NewReader(strings.NewReader(tc.in), 1024))
		var pe *ProtocolError
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.want) {
			t.Errorf("%s: %v, want a protocol error %q", tc.name, err, tc.want)
		}
	}
}

// A client announcing a huge argument costs nothing until it sends it, and a
// large request's buffer is given back once it has been read.
func TestBufferIsBounded(t *testing.T) {
	r := NewReader(strings.NewReader("*1\r\n$500000000\r\nabc"), 1<<30)
	if _, err := readAll(t, r); err != io.EOF {
		t.Fatalf("%v", err)
	}
	if len(r.buf) > minBuf {
		t.Fatalf("buffer grew to %d for 3 bytes of data", len(r.buf))
	}

	big := bytes.Repeat([]byte("v"), 1<<20)
	var in bytes.Buffer
	in.WriteString("*2\r\n$4\r\nECHO\r\n$1048576\r\n")
	in.Write(big)
	in.WriteString("\r\n")
	for i := 0; i < 1000; i++ {
		in.WriteString("PING\r\n")
	}
	r = NewReader(&in, 2<<20)
	args, err := r.ReadCommand()
	if err != nil || !bytes.Equal(args[1], big) {
		t.Fatalf("large request: %v", err)
	}
	for i := 0; i < 1000; i++ {
		if _, err := r.ReadCommand(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatal(err)
	}
	if len(r.buf) > minBuf {
		t.Fatalf("buffer kept %d bytes after the large request", len(r.buf))
	}
}

// A sustained pipeline never grows the buffer beyond one request's need.
func TestPipelineDoesNotGrowBuffer(t *testing.T) {
	var in bytes.Buffer
	for i := 0; i < 200_000; i++ {
		in.WriteString("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000001\r\n$10\r\n0123456789\r\n")
	}
	r := NewReader(&in, 1<<20)
	for {
		if _, err := r.ReadCommand(); err != nil {
			break
		}
	}
	if len(r.buf) > minBuf {
		t.Fatalf("buffer grew to %d under a pipeline of small requests", len(r.buf))
	}
}

func TestNextGathersAPipeline(t *testing.T) {
	r := NewReader(strings.NewReader("PING\r\nECHO a\r\n*1\r\n$4\r\nPI"), 1024)
	first, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.Next()
	if err != nil || string(second[1]) != "a" {
		t.Fatalf("Next = %q, %v", second, err)
	}
	if _, err := r.Next(); err != ErrIncomplete {
		t.Fatalf("Next on a partial request = %v", err)
	}
	if string(first[0]) != "PING" {
		t.Fatalf("first request overwritten: %q", first)
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n", "SET a \"b\\x41\" 'c'\r\n", "*1\r\n$9223372036854775807\r\n",
		"*2\r\n$1\r\na\r\n", "\"unbalanced\r\n", "*-1\r\n*0\r\n\r\n", "$5 hello\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(iotest.HalfReader(bytes.NewReader(in)), 64)
		total := 0
		for i := 0; i < 10_000; i++ {
			args, err := r.ReadCommand()
			if err != nil {
				break
			}
			for _, a := range args {
				if len(a) > 64 {
					t.Fatalf("argument of %d bytes past the 64-byte limit", len(a))
				}
				total += len(a)
			}
		}
		if len(r.buf) > 2*minBuf+2*len(in) {
			t.Fatalf("buffer of %d bytes for %d bytes of input", len(r.buf), len(in))
		}
	})
}

func TestGatheredRequestsDoNotShareArguments(t *testing.T) {
	r := NewReader(strings.NewReader("*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*3\r\n$6\r\nINCRBY\r\n$1\r\nb\r\n$1\r\n5\r\nGET c\r\n"), 1024)
	var got [][][]byte
	first, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, first)
	for {
		args, err := r.Next()
		if err != nil {
			break
		}
		got = append(got, args)
	}
	want := []string{"INCR a", "INCRBY b 5", "GET c"}
	for i, w := range want {
		if s := string(bytes.Join(got[i], []byte(" "))); s != w {
			t.Fatalf("request %d = %q, want %q", i, s, w)
		}
	}
}

// parseLength must agree with strconv.ParseInt on every input, valid or
// not: it only skips the string for plain digits.
func TestParseLengthIsParseInt(t *testing.T) {
	cases := []string{"", "0", "3", "03", "-1", "+5", " 1", "1 ", "1a", "999999999999999999",
		"9223372036854775807", "9223372036854775808", "18446744073709551616", "-", "--1", "0x10"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789-+ x"
	for range 10000 {
		b := make([]byte, rng.IntN(22))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		got, gotErr := parseLength([]byte(c))
		want, wantErr := strconv.ParseInt(c, 10, 64)
		if (gotErr != nil) != (wantErr != nil) || gotErr == nil && got != want {
			t.Fatalf("parseLength(%q) = %d, %v; ParseInt: %d, %v", c, got, gotErr, want, wantErr)
		}
	}
}

// TestLargeRequestBufferIsReleased: once a large request has been served,
// nothing of the reader keeps its buffer alive.
func TestLargeRequestBufferIsReleased(t *testing.T) {
	pr, pw := io.Pipe()
	big := strings.Repeat("x", 32<<20)
	go func() {
		fmt.Fprintf(pw, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n", len(big), big)
		fmt.Fprintf(pw, "*1\r\n$4\r\nPING\r\n")
	}()
	r := NewReader(pr, 512<<20)
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	big = ""
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > 16<<20 {
		t.Fatalf("%d MiB of heap in use after the large request was served", ms.HeapInuse>>20)
	}
	runtime.KeepAlive(r)
	pw.Close()
}
