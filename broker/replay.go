package broker

// Replaying history to a new subscription. The subscription is bound
// first, holding back what it is sent live; then the history is read up
// to a position S and delivered; then what was held back, less what the
// history already gave (positions up to S), and from then on live
// deliveries go straight through. Publishers of retained messages take
// their positions before they look up subscribers (route), so a message
// is either in the snapshot or reaches the bound subscription, never
// neither: no gap. One kept before the snapshot may also reach the
// subscription live, even after the replay: it is dropped by its
// position (topicSub.replayed), so there is no duplicate either.

const (
	replayedLine = "x-replayed:true\n"
	gapLine      = "x-resume-gap:true\n"
)

// hold keeps a live delivery back while the subscription replays, and
// reports whether it did; ok is false once what is held would overflow
// the connection's outbound bound.
func (sub *topicSub) hold(m *message) (held, ok bool) {
	sub.hmu.Lock()
	defer sub.hmu.Unlock()
	if !sub.holding.Load() {
		return false, true
	}
	sub.heldBytes += m.size()
	if sub.heldBytes > sub.conn.out.max {
		return true, false
	}
	sub.held = append(sub.held, m)
	return true, true
}

// replay delivers what req asks of the history to sub, which was bound
// holding, then what it held back, and lets live deliveries through. It
// reports whether a resume found a gap.
func (r *local) replay(sub *topicSub, req replayRequest) (gap bool, err error) {
	var ms []*message
	var upto uint64
	if r.cl != nil {
		if ms, upto, gap, err = r.hist.sharedSnapshot(sub.pattern, req); err != nil {
			return false, err
		}
	} else {
		ms, upto, gap = r.hist.snapshot(sub.pattern, req)
	}
	sub.replayed.Store(upto)
	if gap {
		sub.markGap.Store(true)
	}
	for _, m := range ms {
		if sub.reader != nil && !sub.mayRead(m.destination) {
			continue
		}
		if !sub.send(m, replayedLine, true) {
			r.dropSlow(sub)
			break
		}
		r.stats.delivered.Add(1)
	}
	for {
		sub.hmu.Lock()
		held := sub.held
		sub.held, sub.heldBytes = nil, 0
		if len(held) == 0 {
			sub.holding.Store(false)
			sub.hmu.Unlock()
			return gap, nil
		}
		sub.hmu.Unlock()
		for _, m := range held {
			if m.hseq != 0 && m.hseq <= upto {
				continue // the history gave it
			}
			if !sub.send(m, "", true) {
				r.dropSlow(sub)
				break
			}
			r.stats.delivered.Add(1)
		}
	}
}
