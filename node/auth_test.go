package node

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// fakeConn is a connection from a given address.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (f fakeConn) RemoteAddr() net.Addr { return f.remote }

func TestProtectedMode(t *testing.T) {
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}
	loop6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 5000}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 5000} // TEST-NET-1, never dialled
	for _, tc := range []struct {
		name   string
		cfg    Config
		from   net.Addr
		denied bool
	}{
		{"loopback, no password", Config{}, loop, false},
		{"IPv6 loopback, no password", Config{}, loop6, false},
		{"remote, no password", Config{}, remote, true},
		{"remote, with password", Config{RequirePass: "x"}, remote, false},
		{"remote, protected mode off", Config{ProtectedModeOff: true}, remote, false},
	} {
		n := &Node{cfg: tc.cfg}
		n.cfg.MaxClients = 10
		n.live.init(&n.cfg)
		n.log = discardLogger()
		msg := n.admit(fakeConn{remote: tc.from})
		if denied := strings.HasPrefix(msg, "DENIED"); denied != tc.denied {
			t.Errorf("%s: admit = %q", tc.name, msg)
		}
	}
}

func TestPasswordCheck(t *testing.T) {
	n := &Node{cfg: Config{RequirePass: "s3cret"}}
	n.live.init(&n.cfg)
	for _, tc := range []struct {
		user, pass string
		nilUser    bool
		ok         bool
	}{
		{pass: "s3cret", nilUser: true, ok: true},
		{user: "default", pass: "s3cret", ok: true},
		{user: "admin", pass: "s3cret", ok: false},
		{pass: "s3cre", nilUser: true, ok: false},
		{pass: "", nilUser: true, ok: false},
	} {
		var user []byte
		if !tc.nilUser {
			user = []byte(tc.user)
		}
		if got := n.passwordOK(user, []byte(tc.pass)); got != tc.ok {
			t.Errorf("passwordOK(%q, %q) = %v", tc.user, tc.pass, got)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
