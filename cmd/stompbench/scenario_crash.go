package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// crashResult is the crash scenario's part of the report.
type crashResult struct {
	Rounds int `json:"rounds"`
	// Kills counts the SIGKILLs; the broker is stopped with SIGTERM once
	// at the end, which must exit 0.
	Kills            int   `json:"kills"`
	Backlog          int64 `json:"backlog"`
	Transactions     int64 `json:"transactions_receipted"`
	AckReceipts      int64 `json:"ack_receipts"`
	Repeats          int64 `json:"repeats"`
	UnflaggedRepeats int64 `json:"unflagged_repeats"`
	// DeliveredAfterAck counts deliveries of a message after its ACK's,
	// or its transaction's COMMIT's, RECEIPT.
	DeliveredAfterAck int64 `json:"delivered_after_ack_receipt"`
	HalfTransactions  int64 `json:"half_transactions"`
	// StartMS is, per start, how long from exec to the first CONNECTED.
	StartMS      []float64 `json:"start_ms"`
	StartBoundMS float64   `json:"start_bound_ms"`
	StopExit     int       `json:"stop_exit"`
}

// soak is one run of the crash scenario: the broker command run, killed
// and run again on its own data directory, and the ledger of the clients
// that loaded it meanwhile.
type soak struct {
	b       *bench
	cfg     *config
	l       *crashLedger
	res     *crashResult
	main    string // the destination under load
	backlog string // filled in the first round, read only at the end
	// Slots: the producers', then the transaction producer's, then the
	// backlog's.
	txSlot, backlogSlot int

	proc   *exec.Cmd
	exited chan struct{} // closed when proc has ended
	log    *os.File      // the broker's output, or nil
}

// runCrash is the crash scenario: -rounds times, start the broker, load it
// with producers, consumers and transactions, and SIGKILL it after a
// random while; then start it once more, drain everything and stop it
// with SIGTERM. What the clients saw is checked as it comes in, whether
// each round's restart delivered every message receipted before, and at
// the end whether every receipted message was delivered.
func runCrash(ctx context.Context, b *bench, res *result) (err error) {
	cfg := b.cfg
	s := &soak{
		b: b, cfg: cfg, main: b.dest, backlog: b.dest + ".backlog",
		txSlot: cfg.producers, backlogSlot: cfg.producers + 1,
		res: &crashResult{StartBoundMS: float64(cfg.startBound.Milliseconds())},
	}
	s.l = newCrashLedger(cfg.producers+2, cfg.txSize, b.errorf)
	res.Crash = s.res
	if c, err := net.DialTimeout("tcp", cfg.target.addr, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("something already listens at %s; the soak starts the broker itself", cfg.target.addr)
	}
	if cfg.brokerLog != "" {
		if s.log, err = os.OpenFile(cfg.brokerLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
		defer s.log.Close()
	}
	b.setProgress("delivered", s.l.deliveryCount)
	defer s.fill(res)
	defer s.halt()
	for round := range cfg.rounds {
		if err := s.round(ctx, round); err != nil {
			return fmt.Errorf("round %d: %w", round+1, err)
		}
	}
	return s.finish(ctx)
}

// mainSlots are the slots whose messages go to the destination under load.
func (s *soak) mainSlots() []int {
	slots := make([]int, 0, s.cfg.producers+1)
	for i := range s.cfg.producers + 1 {
		slots = append(slots, i)
	}
	return slots
}

// round is one broker process: started, loaded, killed.
func (s *soak) round(ctx context.Context, round int) error {
	cfg := s.cfg
	s.b.setPhase(fmt.Sprintf("round %d", round+1))
	if err := s.start(ctx); err != nil {
		return err
	}
	life := s.newLife(ctx)
	defer life.end()
	if round == 0 && cfg.backlog > 0 {
		select {
		case <-life.produce(s.backlogSlot, s.backlog, 0, uint64(cfg.backlog)):
		case <-s.exited:
		}
		s.res.Backlog = int64(cfg.backlog)
	}
	for range cfg.consumers {
		life.consume(s.main, false)
	}
	if cfg.txSize > 0 {
		life.consume(s.main, true)
	}
	if err := s.catchUp(ctx, s.mainSlots()...); err != nil {
		return err
	}
	s.b.setPhase(fmt.Sprintf("round %d", round+1))
	for p := range cfg.producers {
		life.produce(p, s.main, cfg.rate/float64(cfg.producers), 0)
	}
	if cfg.txSize > 0 && cfg.txRate > 0 {
		life.produceTx(s.txSlot, s.main, cfg.txRate)
	}
	runFor := cfg.killMin + rand.N(cfg.killMax-cfg.killMin+1)
	select {
	case <-time.After(runFor):
	case <-s.exited:
		return fmt.Errorf("the broker exited on its own: %v", s.proc.ProcessState)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	life.dead.Store(true)
	s.kill()
	life.end()
	s.res.Rounds++
	if !cfg.quiet {
		fmt.Fprintf(s.b.stderr, "round %d/%d: started in %.0fms, killed after %v; %s\n",
			round+1, cfg.rounds, s.res.StartMS[len(s.res.StartMS)-1], runFor.Round(time.Millisecond), s.l.summary())
	}
	return nil
}

// catchUp waits until every receipted message of slots has been delivered,
// giving up after -drain without a delivery.
func (s *soak) catchUp(ctx context.Context, slots ...int) error {
	s.b.drain(ctx, s.l.deliveryCount, func() bool { return s.l.undelivered(slots...) == 0 })
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if n := s.l.undelivered(slots...); n > 0 {
		return fmt.Errorf("%d receipted messages lost: not delivered within -drain %v of the last delivery", n, s.cfg.drain)
	}
	return nil
}

// finish starts the broker a last time, drains both destinations and
// stops it with SIGTERM.
func (s *soak) finish(ctx context.Context) error {
	s.b.setPhase("drain")
	if err := s.start(ctx); err != nil {
		return err
	}
	life := s.newLife(ctx)
	for range s.cfg.consumers {
		life.consume(s.main, false)
	}
	life.consume(s.backlog, false)
	err := s.catchUp(ctx, append(s.mainSlots(), s.backlogSlot)...)
	life.end()
	s.res.HalfTransactions = s.l.halfTransactions(s.txSlot)
	if stopErr := s.stop(); err == nil {
		err = stopErr
	}
	return err
}

// start runs the broker command and waits for a CONNECT to be answered,
// recording how long that took.
func (s *soak) start(ctx context.Context) error {
	cmd := exec.Command(s.cfg.brokerCmd[0], s.cfg.brokerCmd[1:]...)
	if s.log != nil {
		cmd.Stdout, cmd.Stderr = s.log, s.log
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	exited := make(chan struct{})
	s.proc, s.exited = cmd, exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	// Past the bound, the start is still waited for a while, to report
	// how long it took.
	limit := s.cfg.startBound + time.Minute
	for {
		probe := s.b.spec()
		probe.onError = nil
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := dial(dctx, probe)
		cancel()
		if err == nil {
			took := time.Since(t0)
			c.close()
			<-c.done
			s.res.StartMS = append(s.res.StartMS, float64(took.Microseconds())/1e3)
			if s.cfg.startBound > 0 && took > s.cfg.startBound {
				s.b.errorf("the broker took %v to start, over -start-bound %v", took.Round(time.Millisecond), s.cfg.startBound)
			}
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the broker exited before answering a CONNECT: %v", cmd.ProcessState)
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Since(t0) > limit {
			return fmt.Errorf("the broker answered no CONNECT within %v: %v", limit, err)
		}
	}
}

// kill ends the broker with SIGKILL and waits for it to be gone.
func (s *soak) kill() {
	s.proc.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.res.Kills++
}

// stop ends the broker with SIGTERM, as an operator would, and checks it
// exited 0.
func (s *soak) stop() error {
	s.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.proc.Process.Signal(syscall.SIGKILL)
		<-s.exited
		return errors.New("the broker did not stop within 30s of SIGTERM")
	}
	s.res.StopExit = s.proc.ProcessState.ExitCode()
	if s.res.StopExit != 0 {
		return fmt.Errorf("the broker exited %d after SIGTERM", s.res.StopExit)
	}
	return nil
}

// halt kills a broker the run leaves behind when it ends early.
func (s *soak) halt() {
	if s.proc == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		s.proc.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

// fill copies the ledger's figures into the report.
func (s *soak) fill(res *result) {
	l := s.l
	l.mu.Lock()
	defer l.mu.Unlock()
	res.Published = l.sent
	for i := range l.receipted {
		res.Receipted += int64(l.receipted[i].count())
		res.Lost += int64(l.receipted[i].count() - intersectCount(&l.receipted[i], &l.delivered[i]))
	}
	res.Consumed = l.deliveries
	res.Foreign = l.foreign
	c := s.res
	c.Transactions, c.AckReceipts = l.transactions, l.ackReceipts
	c.Repeats, c.UnflaggedRepeats, c.DeliveredAfterAck = l.repeats, l.unflagged, l.afterAck
}
