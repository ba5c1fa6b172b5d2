package merkle

import (
	"errors"
	"fmt"
)

// Peer is one side for Drive: its session and how it merges what it receives.
type Peer struct {
	Session *Session
	Apply   func(Record) error
}

// Stats counts what a driven session put on the wire. Each message is
// encoded and decoded on the way, so the byte counts are the real encoding's.
type Stats struct {
	RoundTrips   int   // flights / 2, rounded up
	Flights      int   // batches of messages sent by one side in one go
	Messages     int   // messages, Transfer chunks counted one by one
	MetaBytes    int64 // everything but record payloads
	PayloadBytes int64 // record payloads
	// MetaByType splits MetaBytes by message type (indexed by MsgType).
	MetaByType [TypeAbort + 1]int64
}

// Drive runs a session between a (the initiator) and b (the responder) in
// memory, passing each flight to the other side until neither has more to
// send, and applying received records as they arrive. afterFlight, if not
// nil, runs after each flight has been processed (benchmarks sample memory
// there).
func Drive(a, b Peer, afterFlight func()) (Stats, error) {
	var st Stats
	out, err := a.Session.Start()
	if err != nil {
		return st, err
	}
	flight := out.Msgs
	sides := [2]Peer{b, a} // sides[0] receives the current flight
	for len(flight) > 0 {
		st.Flights++
		to := sides[0]
		var next []Message
		for _, m := range flight {
			buf := Marshal(m)
			st.Messages++
			p := payloadBytes(m)
			st.PayloadBytes += int64(p)
			st.MetaBytes += int64(len(buf) - p)
			st.MetaByType[m.Type()] += int64(len(buf) - p)
			dm, err := Unmarshal(buf)
			if err != nil {
				return st, fmt.Errorf("merkle: decoding own %s: %w", m.Type(), err)
			}
			o, err := to.Session.Step(dm)
			if err != nil {
				return st, err
			}
			for _, r := range o.Records {
				if err := to.Apply(r); err != nil {
					return st, err
				}
			}
			next = append(next, o.Msgs...)
		}
		if afterFlight != nil {
			afterFlight()
		}
		flight = next
		sides[0], sides[1] = sides[1], sides[0]
	}
	st.RoundTrips = (st.Flights + 1) / 2
	if !a.Session.Done() || !b.Session.Done() {
		return st, errors.New("merkle: sessions stalled before both were done")
	}
	return st, nil
}

// Reconcile runs one session between two MemStores, a initiating with salt.
func Reconcile(a, b *MemStore, salt uint64) (Stats, Result, Result, error) {
	sa, err := NewInitiator(Config{Shape: a.tree.shape, Local: a, Salt: salt})
	if err != nil {
		return Stats{}, Result{}, Result{}, err
	}
	sb, err := NewResponder(Config{Shape: b.tree.shape, Local: b})
	if err != nil {
		return Stats{}, Result{}, Result{}, err
	}
	st, err := Drive(Peer{sa, a.Apply}, Peer{sb, b.Apply}, nil)
	return st, sa.Result(), sb.Result(), err
}
