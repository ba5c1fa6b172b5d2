package node

import (
	"crypto/subtle"
	"net"
)

const errDenied = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to redmesh you may adopt one of the following solutions: 1) Set a password with --requirepass. 2) Disable protected mode with --protected-mode=false, making sure the node is not reachable from the internet."

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// noAuth reports whether a client may send the command before AUTH.
func (s *commandSpec) noAuth() bool {
	switch s.name {
	case "auth", "hello", "quit":
		return true
	}
	return false
}

// passwordOK compares in constant time, so timing does not leak the password.
func (n *Node) passwordOK(user, pass []byte) bool {
	if user != nil && string(user) != "default" {
		return false
	}
	return subtle.ConstantTimeCompare(pass, []byte(n.live.password())) == 1
}

// cmdAuth is AUTH [username] password, with the single "default" user.
func cmdAuth(n *Node, c *client, args [][]byte) {
	if len(args) > 3 {
		c.w.WriteError(errSyntax)
		return
	}
	if n.live.password() == "" {
		c.w.WriteError("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		return
	}
	var user []byte
	if len(args) == 3 {
		user = args[1]
	}
	if !n.passwordOK(user, args[len(args)-1]) {
		c.w.WriteError("WRONGPASS invalid username-password pair or user is disabled.")
		return
	}
	c.authed = true
	c.w.WriteString("OK")
}
