package broker

import (
	"errors"
	"strconv"

	"github.com/stampede-mq/stampede/stomp"
)

// transaction holds a client's SENDs and ACK/NACKs until COMMIT. Each
// action is a message to publish or a settlement to make.
type transaction struct {
	actions []txAction
	bytes   int64 // of the messages it holds
}

type txAction struct {
	send   *message
	settle func() error
}

// commit carries out the actions in order. Consecutive SENDs are
// published together, so their persistent messages share one store write.
func (tx *transaction) commit(s *session) error {
	var batch []*message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.r.publish(s.c, batch)
		batch = nil
		return err
	}
	for _, a := range tx.actions {
		if a.send != nil {
			batch = append(batch, a.send)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := a.settle(); err != nil {
			return err
		}
	}
	return flush()
}

// hold adds a SEND to a transaction, within the bytes all the session's
// open transactions may hold together.
func (s *session) hold(tx *transaction, m *message) error {
	n := int64(m.size())
	if max := s.b.opts.MaxTransactionBytes; s.txBytes+n > max {
		s.b.limits.hit("transaction-bytes")
		return limitError("bytes held by transactions", int(max))
	}
	tx.actions = append(tx.actions, txAction{send: m})
	tx.bytes += n
	s.txBytes += n
	return nil
}

// txFor returns the transaction a frame names, if any, checking that it
// exists and has room for one more frame.
func (s *session) txFor(f *stomp.Frame) (*transaction, error) {
	id, ok := f.Get("transaction")
	if !ok {
		return nil, nil
	}
	tx := s.txs[id]
	if tx == nil {
		return nil, errors.New("unknown transaction " + strconv.Quote(id))
	}
	if len(tx.actions) >= s.b.opts.MaxTransactionFrames {
		s.b.limits.hit("transaction-frames")
		return nil, limitError("frames per transaction", s.b.opts.MaxTransactionFrames)
	}
	return tx, nil
}

func (s *session) onTransaction(f *stomp.Frame) error {
	id, err := requireHeader(f, "transaction")
	if err != nil {
		return err
	}
	tx := s.txs[id]
	if f.Command == stomp.BEGIN {
		if tx != nil {
			return errors.New("transaction " + strconv.Quote(id) + " already begun")
		}
		if len(s.txs) >= s.b.opts.MaxTransactions {
			s.b.limits.hit("transactions")
			return limitError("open transactions", s.b.opts.MaxTransactions)
		}
		if s.txs == nil {
			s.txs = make(map[string]*transaction)
		}
		s.txs[id] = &transaction{}
		return nil
	}
	if tx == nil {
		return errors.New("unknown transaction " + strconv.Quote(id))
	}
	delete(s.txs, id)
	s.txBytes -= tx.bytes
	if f.Command == stomp.ABORT {
		return nil
	}
	if err := tx.commit(s); err != nil {
		return err
	}
	s.durableReceipt(f)
	return nil
}
