package broker

import (
	"strings"

	"github.com/stampede-mq/stampede/stomp"
)

// effects are the follow-ups of a change made under the queue lock, run
// after it is released so that no lock is held across store writes or
// while taking another queue's lock.
type effects struct {
	deletes   []*message // settled persistent messages
	redeliver []*message // persistent messages whose count changed
	dead      []deadLetter
	expired   int
}

type deadLetter struct {
	m      *message
	reason string
}

func (fx *effects) expire(m *message, toDLQ bool) {
	fx.expired++
	if toDLQ {
		fx.dead = append(fx.dead, deadLetter{m, "expired"})
	} else if m.settledElsewhere() {
		fx.deletes = append(fx.deletes, m)
	}
}

// apply carries out what a queue change left to do once its lock is
// released: dead letters now, store bookkeeping in the background.
func (r *local) apply(q *queue, fx *effects) {
	r.stats.expired.Add(uint64(fx.expired))
	var ops []storeOp
	for _, m := range fx.deletes {
		if m.lease != nil {
			m.lease.Ack()
		}
		if m.persistent && m.seq != 0 {
			ops = append(ops, storeOp{q: q, seq: m.seq, del: true})
		}
	}
	for _, m := range fx.redeliver {
		ops = append(ops, storeOp{q: q, seq: m.seq, deliveries: m.deliveries})
	}
	for _, d := range fx.dead {
		// The dead letter is stored before the original goes, so a
		// crash in between duplicates it rather than losing it.
		if dlq, ok := dlqName(q.name); ok && !q.temp {
			r.stats.deadLettered.Add(1)
			dm := d.m.withDestination(r.ids.next(), dlq, deathHeaders(d.m.destination, d.reason)...)
			if err := r.publish(nil, []*message{dm}); err != nil {
				r.log.Error("dead-lettering failed; the message stays", "queue", q.name, "err", err)
				continue
			}
		} else {
			r.log.Warn("message dropped: no dead letter queue", "queue", q.name, "reason", d.reason)
		}
		if d.m.lease != nil {
			d.m.lease.Ack()
		}
		if d.m.persistent && d.m.seq != 0 {
			ops = append(ops, storeOp{q: q, seq: d.m.seq, del: true})
		}
	}
	r.writer.add(ops...)
}

// dlqName is the dead letter queue for a queue: /queue/DLQ.NAME. Dead
// letter queues themselves have none, so a poison message cannot loop.
func dlqName(queueName string) (string, bool) {
	name, ok := strings.CutPrefix(queueName, queuePrefix)
	if !ok || strings.HasPrefix(name, "DLQ.") {
		return "", false
	}
	return queuePrefix + "DLQ." + name, true
}

func deathHeaders(orig, reason string) []stomp.Header {
	return []stomp.Header{{Key: "x-original-destination", Value: orig}, {Key: "x-death-reason", Value: reason}}
}
