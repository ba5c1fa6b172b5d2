package whole

import "testing"

func TestWrapUnwrap(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("x"), {0, 1, 0}} {
		typ, p, ok := Unwrap(Wrap("MBbloom--", payload))
		if !ok || typ != "MBbloom--" || string(p) != string(payload) {
			t.Fatalf("%q: %q %q %v", payload, typ, p, ok)
		}
	}
	for _, s := range []string{"", "plain", Mark, Mark + "stream", Mark + "\x00x"} {
		if _, _, ok := Unwrap([]byte(s)); ok {
			t.Fatalf("%q read as a whole key", s)
		}
	}
}

// FuzzUnwrap: any node string (a client's or a peer's) is either read as a
// key carried whole, which wraps back to the same bytes, or not.
func FuzzUnwrap(f *testing.F) {
	f.Add([]byte(Mark + "stream\x00payload"))
	f.Add([]byte(Mark))
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, s []byte) {
		typ, p, ok := Unwrap(s)
		if ok && string(Wrap(typ, p)) != string(s) {
			t.Fatalf("%q unwraps to %q %q, which wrap to %q", s, typ, p, Wrap(typ, p))
		}
	})
}
