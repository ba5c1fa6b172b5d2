package node

import "testing"

// TestDataCommands: --serve-stale-data no refuses the commands that read or
// write keys, and leaves the connection, server and mesh administration
// ones alone (a client must still be able to AUTH, PING, read INFO and turn
// the setting off).
func TestDataCommands(t *testing.T) {
	for _, name := range []string{"get", "set", "del", "mget", "mset", "incr", "exists", "dbsize", "scan", "keys", "randomkey", "flushall", "expire", "ttl", "mesh"} {
		if s := commands[name]; s == nil || !s.data {
			t.Errorf("%s is not a data command", name)
		}
	}
	for _, name := range []string{"auth", "hello", "ping", "echo", "info", "config", "client", "command", "select", "quit", "time", "multi", "exec", "discard", "wait"} {
		if s := commands[name]; s == nil || s.data {
			t.Errorf("%s is a data command", name)
		}
	}
}
