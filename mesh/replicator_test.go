package mesh

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/redmesh/redmesh/hlc"
	"github.com/redmesh/redmesh/merkle"
)

// TestReplicatorScripts runs testdata/replicator: a node's replication
// decisions as a driver sees them. Every command but new and state prints
// the Ready that follows it ("-" when there is nothing to do). Times are
// milliseconds; random choices take the first candidate. Commands:
//
//	new [self=N] [epoch=E] [head=H] [log-max=N] [always] [forget-after=MS] [no-catch-up]
//	add p=P                               a known peer, not linked
//	link-up p=P at=MS | link-down p=P at=MS | assume-linked p=P | remove p=P at=MS
//	push [from=F] p=P epoch=E prev=A to=B at=MS [refused [admit-at=MS]]   P's push, handed over by F (default P)
//	arrived p=P run=R epoch=E head=H next=N [entries=K] [truncated]   a reply as it arrives, before it is applied
//	reply p=P run=R epoch=E head=H next=N [entries=K] [truncated] [empty] [fresh] [refused [admit-at=MS]] [at=MS]
//	roots p=P epoch=E head=H root=X ours=Y [own=O]   O: P's last local write (default H-1)
//	ack p=P epoch=E seq=S durable=D [stable=T] [aside=T] at=MS
//	want p=P epoch=E seq=S | peers p=P
//	wait seq=S | ack-in p=P [closed]     a WAIT for our writes up to S; the peer's ack stream opened or closed
//	failed p=P run=R                      the catch-up's stream failed, the link up
//	fallback-done p=P run=R [failed] | bootstrap-done p=P run=R [failed]
//	chunk p=P epoch=E head=H next=N [begins] [done]   a snapshot chunk from P applied (Table.SnapshotChunk)
//	round root=X | session-done | accept p=P   an anti-entropy round; its session ended; a session P opens
//	tick at=MS | gaps at=MS
//	synced synced=N mark=M | sample seq=S ts=T | stable-saved ts=T | aside-done ts=T
//	skip seq=S | push-header first=A to=B | push-targets   the peers a push of our writes goes to
//	member p=P                            a member this node is not linked to
//	receive [from=F] p=P epoch=E prev=A to=B hops=H at=MS [won] [refused]
//	                                      the driver's whole receive of P's push from F: held
//	                                      (its records left unmerged, won ignored), Step, Relay
//	held [from=F] p=P epoch=E prev=A to=B hops=H   PushHeld alone: a copy's check as it arrives
//	relay [from=F] p=P epoch=E prev=A to=B hops=H at=MS [won] [refused]   Step and Relay alone: its merge done
//	state p=P                             the peer's progress, cursor and acknowledgement
func TestReplicatorScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/replicator", func(t *testing.T, path string) {
		var r *Replicator
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var (
				self, p, from, run, epoch, head, next, prev, to, seq, durable, entries uint64
				root, ours, synced, mark, first, logMax                                uint64
				stable, aside, ts, at, forget, admitAt, hops, fanout                   uint64
			)
			self, epoch, head = 1, 1, 1
			for _, a := range []struct {
				name string
				v    *uint64
			}{
				{"self", &self}, {"p", &p}, {"from", &from}, {"run", &run}, {"epoch", &epoch}, {"head", &head},
				{"next", &next}, {"prev", &prev}, {"to", &to}, {"seq", &seq}, {"durable", &durable},
				{"entries", &entries}, {"root", &root}, {"ours", &ours}, {"synced", &synced}, {"mark", &mark},
				{"first", &first}, {"log-max", &logMax}, {"stable", &stable}, {"aside", &aside}, {"ts", &ts},
				{"at", &at}, {"forget-after", &forget}, {"admit-at", &admitAt}, {"hops", &hops}, {"fanout", &fanout},
			} {
				d.MaybeScanArgs(t, a.name, a.v)
			}
			if from == 0 {
				from = p
			}
			id := PeerID(p)
			now := time.UnixMilli(int64(at))
			if d.Cmd != "new" && r == nil {
				t.Fatalf("%s: no replicator (new first)", d.Pos)
			}
			var out string
			switch d.Cmd {
			case "new":
				r = NewReplicator(ReplicatorConfig{
					Self: PeerID(self), Epoch: epoch, Head: head, LogMax: uint32(logMax), Always: d.HasArg("always"),
					ForgetAfter: time.Duration(forget) * time.Millisecond, NoCatchUp: d.HasArg("no-catch-up"),
					Intn: func(int) int { return 0 }, Fanout: int(fanout),
				})
				return ""
			case "add":
				r.AddPeer(id)
			case "link-up":
				r.LinkUp(id, now)
			case "link-down":
				r.LinkDown(id, now)
			case "assume-linked":
				r.AssumeLinked(id, Cursor{Epoch: epoch, Next: head}, root)
			case "remove":
				r.RemovePeer(id, now)
			case "push":
				r.Step(PeerID(from), PushHeader{Origin: id, Epoch: epoch, Prev: prev, To: to, At: now, Refused: d.HasArg("refused"), AdmitAt: msTime(admitAt)})
			case "arrived":
				rep := &LogReply{Epoch: epoch, Head: head, Next: next, Truncated: d.HasArg("truncated")}
				for range entries {
					rep.Records = append(rep.Records, recordFor(len(rep.Records)))
				}
				r.Step(id, LogArrivedMsg{Run: run, Reply: rep})
			case "member":
				r.Member(id)
			case "receive":
				h := PushHeader{Origin: id, Epoch: epoch, Prev: prev, To: to, Hops: uint8(hops), At: now, Refused: d.HasArg("refused")}
				if r.PushHeld(PeerID(from), h) {
					out = "held\n"
				} else {
					h.Won = d.HasArg("won")
				}
				r.Step(PeerID(from), h)
				rh, to := r.Relay(PeerID(from), h, nil)
				if len(to) > 0 {
					out += fmt.Sprintf("relay hops=%d to=%v\n", rh.Hops, to)
				}
			case "held":
				h := PushHeader{Origin: id, Epoch: epoch, Prev: prev, To: to, Hops: uint8(hops)}
				out = fmt.Sprintf("held=%v\n", r.PushHeld(PeerID(from), h))
			case "relay":
				h := PushHeader{Origin: id, Epoch: epoch, Prev: prev, To: to, Hops: uint8(hops), At: now, Won: d.HasArg("won"), Refused: d.HasArg("refused")}
				r.Step(PeerID(from), h)
				rh, to := r.Relay(PeerID(from), h, nil)
				if len(to) > 0 {
					out = fmt.Sprintf("relay hops=%d to=%v\n", rh.Hops, to)
				}
			case "wait":
				r.WaitFor(seq)
			case "ack-in":
				r.AckStreamIn(id, !d.HasArg("closed"))
			case "failed":
				r.CatchUpFailed(id, run)
			case "reply":
				rep := &LogReply{Epoch: epoch, Head: head, Next: next, Truncated: d.HasArg("truncated")}
				for range entries {
					rep.Records = append(rep.Records, recordFor(len(rep.Records)))
				}
				r.Step(id, LogReplyMsg{Run: run, Reply: rep, Empty: d.HasArg("empty"), Fresh: d.HasArg("fresh"), Refused: d.HasArg("refused"), AdmitAt: msTime(admitAt), At: now})
			case "roots":
				own := head - 1
				d.MaybeScanArgs(t, "own", &own)
				r.Step(id, RootsMsg{Theirs: RootAt{Epoch: epoch, Head: head, Root: root, Own: own}, Ours: ours})
			case "ack":
				r.Step(id, AckMsg{Ack: Ack{Epoch: epoch, Seq: seq, Durable: durable, Stable: hlc.Timestamp(stable), AsideBelow: hlc.Timestamp(aside)}, At: now})
			case "want":
				r.Step(id, AckWantMsg{Epoch: epoch, Seq: seq})
			case "peers":
				r.Step(id, PeersMsg{})
			case "fallback-done":
				r.FallbackDone(id, run, !d.HasArg("failed"))
			case "chunk":
				done, err := r.Table().SnapshotChunk(id, d.HasArg("begins"), &SnapshotChunk{Epoch: epoch, Head: head, Next: next, Done: d.HasArg("done")})
				if err != nil {
					return fmt.Sprintf("error: %v\n", err)
				}
				out = fmt.Sprintf("snapshot done=%v\n", done)
			case "bootstrap-done":
				r.BootstrapDone(id, run, !d.HasArg("failed"))
			case "round":
				out = fmt.Sprintf("round %v\n", r.Round(root))
			case "session-done":
				r.SessionDone()
			case "accept":
				out = fmt.Sprintf("accept-session %v\n", r.AcceptSession(id))
			case "tick":
				r.Tick(now)
			case "gaps":
				r.CheckGaps(now)
			case "synced":
				r.Synced(synced, mark)
			case "sample":
				r.Sample(seq, hlc.Timestamp(ts))
			case "stable-saved":
				r.StableSaved(hlc.Timestamp(ts))
			case "aside-done":
				r.AsideDone(hlc.Timestamp(ts))
			case "skip":
				r.LocalSkipped(seq)
			case "push-header":
				h := r.PushHeader(first, to)
				out = fmt.Sprintf("header epoch=%d prev=%d to=%d hops=%d\n", h.Epoch, h.Prev, h.To, h.Hops)
			case "push-targets":
				out = fmt.Sprintf("push-targets %v\n", r.PushTargets(nil))
			case "state":
				pp := r.Peer(id)
				cursor := "none"
				for _, c := range r.Cursors() {
					if c.Peer == id {
						cursor = fmt.Sprintf("%d:%d", c.Cursor.Epoch, c.Cursor.Next)
					}
				}
				return fmt.Sprintf("progress=%d:%d waiting=%d cursor=%s acked=%d behind=%d catching-up=%v stable=%d own=%d\n",
					pp.Progress.Epoch, pp.Progress.Acked, pp.Progress.Waiting(), cursor, pp.Acked, pp.Behind,
					r.CatchingUp(id), r.Stability().Stable(), r.Stability().Own())
			default:
				t.Fatalf("unknown command %q", d.Cmd)
			}
			return out + formatReady(r.Ready())
		})
	})
}

func recordFor(i int) merkle.Record { return merkle.Record{Key: []byte(fmt.Sprint("k", i))} }

// formatReady prints a Ready one decision a line, in a fixed order.
// msTime is a script's time in milliseconds, 0 the zero time.
func msTime(ms uint64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

func formatReady(rd Ready) string {
	var b strings.Builder
	for _, x := range rd.Reads {
		first := ""
		if x.First {
			first = " first"
		}
		if x.Early {
			first = " early"
		}
		fmt.Fprintf(&b, "read p=%d run=%d from=%d:%d%s\n", x.Peer, x.Run, x.Req.Epoch, x.Req.From, first)
	}
	for _, x := range rd.Reconciles {
		fmt.Fprintf(&b, "reconcile p=%d run=%d\n", x.Peer, x.Run)
	}
	for _, x := range rd.Bootstraps {
		fmt.Fprintf(&b, "bootstrap p=%d run=%d\n", x.Peer, x.Run)
	}
	for _, x := range rd.CaughtUp {
		fmt.Fprintf(&b, "caught-up p=%d entries=%d loud=%v\n", x.Peer, x.Entries, x.Loud)
	}
	for _, x := range rd.Sessions {
		fmt.Fprintf(&b, "session p=%d\n", x)
	}
	for _, x := range rd.Acks {
		a := x.Ack
		fmt.Fprintf(&b, "ack p=%d epoch=%d seq=%d durable=%d stable=%d", x.Peer, a.Epoch, a.Seq, a.Durable, a.Stable)
		if a.AsideBelow != 0 {
			fmt.Fprintf(&b, " aside=%d", a.AsideBelow)
		}
		b.WriteString("\n")
	}
	for _, x := range rd.Wants {
		fmt.Fprintf(&b, "want p=%d epoch=%d seq=%d\n", x.Peer, x.Epoch, x.Seq)
	}
	if rd.AckedMoved {
		b.WriteString("acked-moved\n")
	}
	if rd.SaveCursorsNow {
		b.WriteString("save-cursors now\n")
	} else if rd.SaveCursors {
		b.WriteString("save-cursors\n")
	}
	if rd.SaveStable != 0 {
		fmt.Fprintf(&b, "save-stable %d\n", rd.SaveStable)
	}
	for _, x := range rd.Forget {
		fmt.Fprintf(&b, "forget p=%d\n", x)
	}
	for _, x := range rd.Returned {
		fmt.Fprintf(&b, "returned p=%d\n", x)
	}
	if rd.SetAside != 0 {
		fmt.Fprintf(&b, "set-aside %d\n", rd.SetAside)
	}
	if rd.SyncWanted {
		b.WriteString("sync-wanted\n")
	}
	if b.Len() == 0 {
		return "-\n"
	}
	return b.String()
}

// TestTickInterval: ticks are the driver's interval up to 2*TickMembers-1
// members, this node included, and spaced by the mesh's size beyond;
// members linked or not count alike.
func TestTickInterval(t *testing.T) {
	const base = 250 * time.Millisecond
	for _, c := range []struct {
		mesh int
		want time.Duration
	}{
		{1, base}, {3, base}, {2*TickMembers - 1, base}, {2 * TickMembers, 2 * base},
		{10 * TickMembers, 10 * base}, {10*TickMembers + 999, 10 * base},
	} {
		r := NewReplicator(ReplicatorConfig{Self: 1, Epoch: 1, Head: 1, Intn: func(int) int { return 0 }})
		ids := make([]PeerID, c.mesh)
		for i := range ids {
			ids[i] = PeerID(i + 1)
		}
		r.Members(ids)
		if c.mesh > 1 {
			r.AssumeLinked(2, Cursor{Epoch: 1, Next: 1}, 0)
		}
		if got := r.TickInterval(base); got != c.want {
			t.Errorf("a mesh of %d: ticks every %v, want %v", c.mesh, got, c.want)
		}
	}
}

// TestPeerFilter: an ID added is always found; of IDs never added, few are.
func TestPeerFilter(t *testing.T) {
	var f peerFilter
	for id := PeerID(1); id <= 20; id++ {
		f.add(id * 7919)
	}
	found := 0
	for id := PeerID(1); id <= 20000; id++ {
		if id%7919 == 0 && id/7919 <= 20 {
			if !f.has(id) {
				t.Fatalf("%d added, not found", id)
			}
		} else if f.has(id) {
			found++
		}
	}
	if found > 20000/5 {
		t.Fatalf("%d of 20,000 IDs never added found", found)
	}
}
