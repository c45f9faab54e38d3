package broker

import "slices"

// deliver hands a planned batch to its destinations: queues keep their
// copies and dispatch them, topics fan out to their live subscribers. It
// returns the subscribers that a client publisher (from) left congested.
// Subscribers a client publisher may write to itself are left in
// from.inline, for writeInline once no lock is held.
func (r *local) deliver(from *conn, p *plan) (congested []*topicSub) {
	for i := range p.routes {
		rt := &p.routes[i]
		m := rt.m
		r.stats.published.Add(1)
		r.taps.notify(m)
		for j, q := range rt.queues {
			q.enqueue(rt.copies[j])
		}
		if !rt.fanout {
			continue
		}
		if rt.topic != nil {
			rt.topic.published.Add(1)
		}
		if rt.expired {
			r.stats.expired.Add(1)
			continue
		}
		for _, sub := range p.live[rt.live[0]:rt.live[1]] {
			busy := r.deliverTo(from, sub, m, rt.topic)
			if busy && from != nil && sub.conn != from && !slices.Contains(congested, sub) {
				congested = append(congested, sub)
			}
		}
	}
	return congested
}

// deliverTo hands m to one live subscriber that may read it, counting it
// on t (if recorded), and reports whether the subscriber's connection is
// congested. One that cannot keep up is disconnected.
func (r *local) deliverTo(from *conn, sub *topicSub, m *message, t *topic) (busy bool) {
	if sub.reader != nil && !sub.mayRead(m.destination) {
		return false
	}
	ok, busy := sub.deliver(m, from)
	if !ok {
		r.dropSlow(sub)
		return false
	}
	r.stats.delivered.Add(1)
	if t != nil {
		t.delivered.Add(1)
	}
	return busy
}

// mayRead checks the subscriber's read permission on a name its pattern
// reached.
func (sub *topicSub) mayRead(name string) bool {
	if last := sub.allowed.Load(); last != nil && *last == name {
		return true
	}
	if !sub.reader.CanRead(name) {
		return false
	}
	sub.allowed.Store(&name)
	return true
}

// deliver hands a published message to this subscription. It reports
// false when the subscriber cannot keep up, and otherwise whether its
// connection is congested. A client publisher (from) may be left to write
// it (see pushLater).
func (sub *topicSub) deliver(m *message, from *conn) (ok, congested bool) {
	if sub.holding.Load() {
		if held, ok := sub.hold(m); held {
			return ok, false
		}
	}
	// Read after holding: replay sets replayed before it stops holding.
	if m.hseq != 0 && m.hseq <= sub.replayed.Load() {
		return true, false // its replay gave it
	}
	return sub.push(m, "", false, from)
}

// send delivers one message of a replay, or one held back during it;
// force lets it past the prefetch and the outbound bound, since history
// is bounded already.
func (sub *topicSub) send(m *message, extra string, force bool) bool {
	ok, _ := sub.push(m, extra, force, nil)
	return ok
}

func (sub *topicSub) push(m *message, extra string, force bool, from *conn) (ok, congested bool) {
	if sub.markGap.Load() && sub.markGap.CompareAndSwap(true, false) {
		extra += gapLine
	}
	ackID := ""
	if sub.mode != ackAuto {
		sub.mu.Lock()
		if !force && (len(sub.pending) >= sub.prefetch || !sub.conn.window.hasRoom(nil)) {
			sub.mu.Unlock()
			return false, false
		}
		sub.conn.window.hold(m.size())
		sub.ackSeq++
		ackID = makeAckID(sub.num, sub.ackSeq)
		sub.pending = append(sub.pending, delivery{ackID: ackID, m: m})
		sub.mu.Unlock()
	}
	head := appendMessageHead(nil, m, sub.conn.version, sub.id, ackID, false, extra)
	ob := Outbound{Head: head, Body: m.wire, Binary: m.binary}
	if from != nil && from.inlining && !force && sub.conn.try != nil && len(from.inline) < maxInline {
		var later bool
		ok, congested, later = sub.conn.out.pushLater(ob)
		if later {
			from.inline = append(from.inline, sub.conn)
		}
	} else {
		ok, congested = sub.conn.out.pushCongested(ob, force)
	}
	if ok {
		sub.conn.msgsOut.Add(1)
	}
	return ok, congested
}
