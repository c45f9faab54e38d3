package broker

import (
	"errors"
	"strconv"
	"strings"

	"github.com/stampede-mq/stampede/stomp"
)

// ackTarget finds the subscription and delivery an ACK or NACK names: by
// the ack header's id in 1.2, by message-id (and subscription) before.
func (s *session) ackTarget(f *stomp.Frame) (*subscription, func(*delivery) bool, error) {
	if s.c.version >= stomp.V12 {
		id, err := requireHeader(f, "id")
		if err != nil {
			return nil, nil, err
		}
		num, _, _ := strings.Cut(id, "-")
		n, err := strconv.Atoi(num)
		sub := s.subsByNum[n]
		if err != nil || sub == nil || sub.mode == ackAuto {
			return nil, nil, errors.New("unknown ack id " + strconv.Quote(id))
		}
		match := func(d *delivery) bool { return d.ackID == id }
		if !s.r.holds(sub, match) {
			return nil, nil, errors.New("unknown ack id " + strconv.Quote(id))
		}
		return sub, match, nil
	}
	msgID, err := requireHeader(f, "message-id")
	if err != nil {
		return nil, nil, err
	}
	match := func(d *delivery) bool { return d.m.id == msgID }
	subID, hasSub := f.Get("subscription")
	if !hasSub && s.c.version >= stomp.V11 {
		return nil, nil, errors.New("missing subscription header")
	}
	for id, sub := range s.subs {
		if (!hasSub || id == subID) && sub.mode != ackAuto && s.r.holds(sub, match) {
			return sub, match, nil
		}
	}
	return nil, nil, errors.New("unknown message-id " + strconv.Quote(msgID))
}

func (s *session) onAck(f *stomp.Frame, ack bool) error {
	tx, err := s.txFor(f)
	if err != nil {
		return err
	}
	sub, match, err := s.ackTarget(f)
	if err != nil {
		return err
	}
	cumulative := sub.mode == ackClient
	requeue := f.Value("requeue") != "false"
	settle := func() error { return s.r.settle(sub, match, cumulative, ack, requeue) }
	if tx != nil {
		// Settled at COMMIT; by then an earlier cumulative ACK in the
		// same transaction may have covered it, which is fine.
		tx.actions = append(tx.actions, txAction{settle: func() error {
			if err := settle(); err != nil && !errors.Is(err, errUnknownAck) {
				return err
			}
			return nil
		}})
		return nil
	}
	if err := settle(); err != nil {
		return err
	}
	s.durableReceipt(f)
	return nil
}

// durableReceipt makes a RECEIPT for an ACK, NACK or COMMIT mean that the
// store agrees: the settled message will not come back after a crash.
// The RECEIPT waits for the store (see receipts), the read loop does not;
// without a receipt, the store catches up in the background.
func (s *session) durableReceipt(f *stomp.Frame) {
	if _, ok := f.Get("receipt"); ok {
		s.receiptAwaitsStore = true
	}
}

func requireHeader(f *stomp.Frame, key string) (string, error) {
	v, ok := f.Get(key)
	if !ok {
		return "", errors.New("missing " + key + " header")
	}
	return v, nil
}
