package main

import (
	"fmt"
	"sync"
)

// crashLedger is what the crash scenario's clients did and saw, across
// every broker process of the run. Messages are named by slot (a
// producer's place, which a new connection takes over after each restart)
// and sequence number, and every promise is checked as the deliveries
// come in: nothing delivered again once its ACK's (or its transaction's
// COMMIT's) RECEIPT arrived, and every repeat flagged redelivered:true.
type crashLedger struct {
	mu        sync.Mutex
	next      []uint64 // per slot: the next sequence number
	sent      int64
	receipted []seqSet // per slot: SENDs receipted, alone or by their COMMIT
	delivered []seqSet // per slot: delivered at least once
	acked     []seqSet // per slot: its ACK's or COMMIT's RECEIPT arrived
	txSize    uint64   // SENDs per transaction; 0 for none

	deliveries   int64 // MESSAGEs received
	repeats      int64 // of those, of a message delivered before
	unflagged    int64 // repeats without redelivered:true
	afterAck     int64 // deliveries after the ACK's RECEIPT
	ackReceipts  int64 // ACK and COMMIT RECEIPTs for consumers
	transactions int64 // producer transactions whose COMMIT was receipted
	foreign      int64 // MESSAGEs not from this run

	// report is told about each broken promise.
	report func(format string, args ...any)
}

func newCrashLedger(slots int, txSize int, report func(string, ...any)) *crashLedger {
	return &crashLedger{
		next:      make([]uint64, slots),
		receipted: make([]seqSet, slots),
		delivered: make([]seqSet, slots),
		acked:     make([]seqSet, slots),
		txSize:    uint64(txSize),
		report:    report,
	}
}

// claim hands slot its next n sequence numbers and returns the first. A
// block of more than one (a transaction) starts at a multiple of n, so a
// transaction is known by its first sequence number divided by n.
func (l *crashLedger) claim(slot int, n uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.next[slot]
	if n > 1 {
		first = (first + n - 1) / n * n
	}
	l.next[slot] = first + n
	l.sent += int64(n)
	return first
}

// receipt records the RECEIPT of SENDs first..first+n-1 of slot.
func (l *crashLedger) receipt(slot int, first, n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for seq := first; seq < first+n; seq++ {
		l.receipted[slot].add(seq)
	}
	if n > 1 {
		l.transactions++
	}
}

// delivery checks one MESSAGE against what came before.
func (l *crashLedger) delivery(slot int, seq uint64, redelivered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliveries++
	if l.acked[slot].has(seq) {
		l.afterAck++
		l.report("slot %d seq %d delivered again after its ACK's RECEIPT", slot, seq)
	}
	if l.delivered[slot].add(seq) {
		return
	}
	l.repeats++
	if !redelivered {
		l.unflagged++
		l.report("slot %d seq %d delivered again without redelivered:true", slot, seq)
	}
}

// ackReceipt records the RECEIPT of an ACK, or of a COMMIT holding ACKs.
func (l *crashLedger) ackReceipt(msgs ...crashMsg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ackReceipts++
	for _, m := range msgs {
		l.acked[m.slot].add(m.seq)
	}
}

func (l *crashLedger) foreignMessage() {
	l.mu.Lock()
	l.foreign++
	l.mu.Unlock()
	l.report("a MESSAGE this run never sent")
}

// crashMsg names one message of the run.
type crashMsg struct {
	slot int
	seq  uint64
}

// undelivered counts the receipted messages of slots never delivered.
func (l *crashLedger) undelivered(slots ...int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range slots {
		n += int64(l.receipted[s].count() - intersectCount(&l.receipted[s], &l.delivered[s]))
	}
	return n
}

// deliveryCount returns the MESSAGEs received so far.
func (l *crashLedger) deliveryCount() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deliveries
}

// halfTransactions counts the transactions of slot of which some SENDs
// were delivered and some never were: a COMMIT takes effect whole or not
// at all, receipted or not.
func (l *crashLedger) halfTransactions(slot int) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.txSize
	if k == 0 {
		return 0
	}
	var half int64
	for first := uint64(0); first < l.next[slot]; first += k {
		var got uint64
		for seq := first; seq < first+k; seq++ {
			if l.delivered[slot].has(seq) {
				got++
			}
		}
		if got != 0 && got != k {
			half++
			l.report("transaction of slot %d at seq %d: %d of its %d SENDs delivered", slot, first, got, k)
		}
	}
	return half
}

// summary is a one-line account of the run so far.
func (l *crashLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var receipted uint64
	for i := range l.receipted {
		receipted += l.receipted[i].count()
	}
	return fmt.Sprintf("sent %d, receipted %d, delivered %d, repeats %d (%d unflagged), after ACK receipt %d",
		l.sent, receipted, l.deliveries, l.repeats, l.unflagged, l.afterAck)
}
