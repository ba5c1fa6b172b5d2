package sim

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/redmesh/redmesh/record"
)

// List commands at a simulated node: LPUSH, RPUSH, LPOP, RPOP (one
// element), LINSERT and LSET, deciding and building their writes as the
// node's listPush, listPop, cmdLInsert and cmdLSet do, with record.TypedOp.
// The checker's element rules cover them as they do hash fields: a pushed
// element (its dot) that no acknowledged write observed removed must be
// there, a popped one must be gone; and every live node must hold the
// same list in the same order.

// list runs one list command.
func (c *typedCmd) list(name string, args [][]byte, now int64) (record.Record, error) {
	if err := c.begin(record.KindList, now); err != nil {
		return record.Record{}, err
	}
	var view record.ListView
	if c.live {
		view = c.cur.Typed.ListView()
	}
	at := func(i int) []byte { return view.At(i).Name }
	push := func(lo, hi, value []byte) error {
		pos, err := c.op.PushListed(lo, hi, value)
		if err != nil {
			return err
		}
		c.obs.add(listList, pos, c.op.Rec.Typed.Listed[len(c.op.Rec.Typed.Listed)-1].Dot, value)
		return nil
	}
	remove := func(pos []byte) {
		c.obs.observe(c.s, c.cur, listList, pos)
		c.op.RemListed(pos)
	}
	switch name {
	case "RPUSH", "LPUSH":
		var lo, hi []byte
		run := args[2:]
		if view.Len() > 0 {
			if name == "RPUSH" {
				lo = at(view.Len() - 1)
			} else {
				hi = at(0)
			}
		}
		if name == "LPUSH" {
			run = make([][]byte, len(args)-2)
			for i, v := range args[2:] {
				run[len(run)-1-i] = v
			}
		}
		start := len(c.op.Rec.Typed.Listed)
		if _, err := c.op.PushListedRun(lo, hi, run); err != nil {
			return record.Record{}, err
		}
		for _, e := range c.op.Rec.Typed.Listed[start:] {
			c.obs.add(listList, e.Name, e.Dot, e.Value)
		}
	case "LPOP", "RPOP":
		if view.Len() == 0 {
			return record.Record{}, nil
		}
		i := 0
		if name == "RPOP" {
			i = view.Len() - 1
		}
		remove(at(i))
	case "LINSERT":
		pivot := -1
		for i := range view.Len() {
			if bytes.Equal(view.At(i).Value, args[3]) {
				pivot = i
				break
			}
		}
		if pivot < 0 {
			return record.Record{}, nil
		}
		var lo, hi []byte
		if strings.EqualFold(string(args[2]), "AFTER") {
			lo = at(pivot)
			if pivot+1 < view.Len() {
				hi = at(pivot + 1)
			}
		} else {
			hi = at(pivot)
			if pivot > 0 {
				lo = at(pivot - 1)
			}
		}
		if err := push(lo, hi, args[4]); err != nil {
			return record.Record{}, err
		}
	case "LSET":
		i, _ := strconv.Atoi(string(args[2]))
		if i < 0 {
			i += view.Len()
		}
		if i < 0 || i >= view.Len() {
			return record.Record{}, nil // Redis's "no such key" or "index out of range"
		}
		pos := at(i)
		c.obs.observe(c.s, c.cur, listList, pos)
		if err := c.op.SetListed(pos, args[3]); err != nil {
			return record.Record{}, err
		}
		e := c.op.Rec.Typed.Listed[len(c.op.Rec.Typed.Listed)-1]
		c.obs.add(listList, pos, e.Dot, e.Value)
	}
	return c.op.Delta(), nil
}

// randomListCommand draws one list command on key: values are unique, so
// that an element's value names its push.
func (s *Sim) randomListCommand(key []byte, elements int) [][]byte {
	r := s.rng
	s.listValues++
	v := strconv.AppendInt([]byte("v"), int64(s.listValues), 10)
	switch x := r.IntN(12); {
	case x < 3:
		return [][]byte{[]byte("RPUSH"), key, v}
	case x < 5:
		return [][]byte{[]byte("LPUSH"), key, v, append(bytes.Clone(v), 'b')}
	case x < 7:
		return [][]byte{[]byte("LPOP"), key}
	case x < 8:
		return [][]byte{[]byte("RPOP"), key}
	case x < 11:
		// A pivot some node may hold: one of the last values drawn.
		where := "BEFORE"
		if r.IntN(2) == 0 {
			where = "AFTER"
		}
		back := int64(1 + r.IntN(max(elements, 1)*4))
		pivot := fmt.Appendf(nil, "v%d", max(s.listValues-back, 1))
		return [][]byte{[]byte("LINSERT"), key, []byte(where), pivot, v}
	}
	return [][]byte{[]byte("LSET"), key, strconv.AppendInt(nil, int64(r.IntN(4)-2), 10), v}
}

// checkListOrder fails a run whose live nodes hold a list in different
// orders (convergence compares whole records; this names the list).
func (s *Sim) checkListOrder(ref *node, fails []string) (int, []string) {
	lists := 0
	for id := range s.keys.len() {
		t := ref.st.get(uint32(id)).Typed
		if t.ListLen() == 0 {
			continue
		}
		lists++
		want := t.ListView()
		for _, n := range s.nodes {
			if !n.up || n.gone || n == ref {
				continue
			}
			got := n.st.get(uint32(id)).Typed.ListView()
			same := got.Len() == want.Len()
			if same {
				var wants []record.Elem // At(i) on each index would decode its leaf from the start each time
				want.Ascend(0, func(e record.Elem) bool { wants = append(wants, e); return true })
				i := 0
				got.Ascend(0, func(e record.Elem) bool {
					same = bytes.Equal(e.Name, wants[i].Name) && bytes.Equal(e.Value, wants[i].Value)
					i++
					return same
				})
			}
			if !same {
				return lists, append(fails, fmt.Sprintf("list %s differs between node %d and node %d", s.keys.names[id], ref.idx, n.idx))
			}
		}
	}
	return lists, fails
}
