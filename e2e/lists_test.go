package e2e

import (
	"testing"
)

// TestListCommandsMatchRedis: every list command, its options and its
// errors, byte for byte as redis-server answers.
func TestListCommandsMatchRedis(t *testing.T) {
	redisAddr := startRedis(t)
	p := startNode(t, t.TempDir())
	compareRESP(t, redisAddr, p.addr, listScript)
}

const listScript = `
LPUSH l a b c
RPUSH l d e
LPUSHX nolist x
RPUSHX nolist x
LPUSHX l z
RPUSHX l y
LLEN l
LLEN nolist
LRANGE l 0 -1
LRANGE l 1 3
LRANGE l -3 -1
LRANGE l -100 100
LRANGE l 5 2
LRANGE l 100 200
LRANGE l x 1
LRANGE nolist 0 -1
LINDEX l 0
LINDEX l -1
LINDEX l 100
LINDEX l -100
LINDEX l x
LINDEX nolist 0
LINDEX nolist x
LSET l 0 first
LSET l -1 last
LSET l 100 x
LSET l x y
LSET nolist 0 x
LRANGE l 0 -1
LINSERT l BEFORE a before-a
LINSERT l AFTER a after-a
LINSERT l after last after-last
LINSERT l BEFORE first before-first
LINSERT l BEFORE nothere x
LINSERT l MIDDLE a x
LINSERT nolist BEFORE a x
LRANGE l 0 -1
RPUSH r a b a c a d a
LREM r 2 a
LRANGE r 0 -1
LREM r -1 a
LRANGE r 0 -1
LREM r 0 a
LRANGE r 0 -1
LREM r 0 nothere
LREM r x a
LREM nolist 1 a
RPUSH p a b c a b c a
LPOS p a
LPOS p a RANK 2
LPOS p a RANK -1
LPOS p a RANK -2
LPOS p a COUNT 0
LPOS p a COUNT 2
LPOS p a RANK 2 COUNT 0
LPOS p a RANK -1 COUNT 2
LPOS p a MAXLEN 1
LPOS p b MAXLEN 1
LPOS p b MAXLEN 1 COUNT 0
LPOS p nothere
LPOS p nothere COUNT 0
LPOS p a RANK 0
LPOS p a RANK x
LPOS p a COUNT -1
LPOS p a MAXLEN -1
LPOS p a COUNT x
LPOS p a FOO 1
LPOS p a RANK
LPOS p a RANK 10
LPOS p a RANK -9223372036854775808
LPOS nolist a
LPOS nolist a COUNT 1
RPUSH t 0 1 2 3 4 5 6 7 8 9
LTRIM t 1 -2
LRANGE t 0 -1
LTRIM t -3 100
LRANGE t 0 -1
LTRIM t x 1
LTRIM t 2 1
EXISTS t
LTRIM nolist 0 1
RPUSH q 1 2 3 4 5
LPOP q
RPOP q
LPOP q 2
RPOP q 0
LPOP q 10
EXISTS q
LPOP q
LPOP q 1
RPOP q 0
LPOP q -1
LPOP q x
LPOP q 1 2
RPUSH m1 a b c
RPUSH m2 x y z
LMOVE m1 m2 LEFT RIGHT
LMOVE m1 m2 RIGHT LEFT
LMOVE m1 m1 LEFT RIGHT
LRANGE m1 0 -1
LRANGE m2 0 -1
LMOVE m1 m2 UP LEFT
LMOVE m1 m2 LEFT UP
LMOVE nolist m2 LEFT LEFT
RPOPLPUSH m2 m3
RPOPLPUSH m2 m2
LRANGE m2 0 -1
LRANGE m3 0 -1
RPOPLPUSH nolist m3
SET s x
RPOPLPUSH m2 s
LMOVE m2 s LEFT LEFT
RPOPLPUSH s m2
LRANGE m2 0 -1
LMPOP 2 nolist m2 LEFT
LMPOP 2 nolist m2 RIGHT COUNT 2
LMPOP 1 nolist LEFT
LMPOP 2 m2 m3 LEFT COUNT 10
LMPOP 0 m2 LEFT
LMPOP x m2 LEFT
LMPOP 5 m2 LEFT
LMPOP 1 m2 UP
LMPOP 1 m2 LEFT COUNT 0
LMPOP 1 m2 LEFT COUNT x
LMPOP 1 m2 LEFT COUNT 1 COUNT 1
LMPOP 1 m2 LEFT FOO
LMPOP 2 s m2 LEFT
LPUSH s x
RPUSH s x
LPOP s
LLEN s
LRANGE s 0 1
LINDEX s 0
LSET s 0 x
LINSERT s BEFORE a b
LREM s 0 a
LTRIM s 0 1
LPOS s a
RPUSH e ""
LRANGE e 0 -1
RPUSH big 1 2 3
TYPE big
OBJECT ENCODING big
COPY big big2
LRANGE big2 0 -1
RENAME big big3
LRANGE big3 0 -1
EXISTS big
DEL big3
EXISTS big3
LPUSH
LPUSH l
RPOPLPUSH a
LMOVE a b LEFT
LINSERT l BEFORE a
`
