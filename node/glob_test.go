package node

import "testing"

// Cases checked against Redis's stringmatchlen.
func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", false}, // as in Redis; KEYS and SCAN special-case a lone "*"
		{"*", "anything", true},
		{"", "", true},
		{"", "a", false},
		{"user:*", "user:1", true},
		{"user:*", "users:1", false},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "hllo", true},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true}, // reversed ranges work in Redis
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{`[\]]`, "]", true},
		{"a[", "a[", false}, // unterminated class
		{"a[bc", "ab", true},
		{"**a", "a", true},
		{"a*", "a", true},
		{"a**", "a", true},
		{"*b*", "abc", true},
		{`\`, `\`, true},
		{"a*b*c*d*e*f*g*h*i*j*k*l*m*n*z", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	} {
		if got := globMatch([]byte(tc.pattern), []byte(tc.s), false); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
	if !globMatch([]byte("HELLO*"), []byte("hello world"), true) {
		t.Error("nocase match failed")
	}
}

func FuzzGlobMatch(f *testing.F) {
	for _, s := range []string{"*", "h?llo", "[a-z]*", `\[`, "a[", "[^", "[\\"} {
		f.Add([]byte(s), []byte("hello"))
	}
	f.Fuzz(func(t *testing.T, pattern, s []byte) {
		globMatch(pattern, s, false)
		globMatch(pattern, s, true)
		if len(s) > 0 && !globMatch([]byte("*"), s, false) {
			t.Fatal("* must match everything")
		}
	})
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"10", 10, true}, {"-5", -5, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false}, {"", 0, false}, {"+1", 0, false},
		{"01", 0, false}, {"-0", 0, false}, {" 1", 0, false}, {"1.5", 0, false},
	} {
		got, ok := parseInt([]byte(tc.in))
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseInt(%q) = %d, %v", tc.in, got, ok)
		}
	}
}

func TestUnknownCommandReply(t *testing.T) {
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'x'
	}
	for _, tc := range []struct {
		args [][]byte
		want string
	}{
		{[][]byte{[]byte("foo")}, "ERR unknown command 'foo', with args beginning with: "},
		{[][]byte{[]byte("foo"), []byte("a"), []byte("b")}, "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{[][]byte{[]byte("foo"), []byte("a\r\nb")}, "ERR unknown command 'foo', with args beginning with: 'a  b' "},
		{[][]byte{[]byte("foo"), long, []byte("next")}, "ERR unknown command 'foo', with args beginning with: '" + string(long[:128]) + "' "},
	} {
		if got := unknownCommand(tc.args); got != tc.want {
			t.Errorf("unknownCommand(%q)\n got %q\nwant %q", tc.args, got, tc.want)
		}
	}
}
