package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stampede-mq/stampede/broker"
)

// Topic history lives in one stream with limits retention: each topic a
// subject under stp.h. (as stp.t. carries it live), at most HistoryMsgs
// per subject, none older than HistoryAge, HistoryBytes in all, oldest
// first. A message's stream sequence is its position, the same on every
// node. Replays read it with batched direct gets (any replica answers),
// not a consumer per subscriber.
const (
	historyStream   = "STAMPEDE_HISTORY"
	historySubjects = "stp.h."
	// historyBatch is how many messages one direct get returns.
	historyBatch = 256
)

// HistoryLimits bound the history stream; the broker holds each topic to
// its own retention within them.
type HistoryLimits struct {
	// Msgs is the most messages any topic keeps; 0: no topic history.
	Msgs int
	// Age drops messages older than this; 0: no age bound.
	Age time.Duration
	// Bytes bounds the whole history.
	Bytes int64
}

func (n *Node) setUpHistory(ctx context.Context) error {
	h := n.cfg.History
	if h.Msgs <= 0 {
		return nil
	}
	_, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: historyStream, Subjects: []string{historySubjects + ">"},
		Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(h.Msgs), MaxAge: h.Age, MaxBytes: cmp.Or(h.Bytes, -1),
		Storage: jetstream.FileStorage, Replicas: n.cfg.Replicas, AllowDirect: true,
	})
	return err
}

func historySubject(dest string) string {
	return subject(historySubjects, strings.TrimPrefix(dest, "/topic/"))
}

// KeepHistory stores retained topic messages, in order, and returns their
// stream sequences.
func (n *Node) KeepHistory(ms []*broker.Envelope) ([]uint64, error) {
	if n.cfg.History.Msgs <= 0 {
		return nil, errors.New("topic history is off in this cluster")
	}
	if err := n.Ready(); err != nil {
		return nil, err
	}
	futures := make([]jetstream.PubAckFuture, len(ms))
	for i, m := range ms {
		f, err := n.js.PublishAsync(historySubject(m.Destination), encode(m))
		if err != nil {
			return nil, err
		}
		futures[i] = f
	}
	pos := make([]uint64, len(ms))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			pos[i] = ack.Sequence
		case err := <-f.Err():
			return nil, err
		}
	}
	return pos, nil
}

// History reads retained messages on topics pattern matches, from
// position from on, in order. A pattern that needs more than one subject
// reads all topics' history and leaves the filtering to the broker.
func (n *Node) History(pattern string, from uint64, each func(uint64, *broker.Envelope) bool) error {
	if n.cfg.History.Msgs <= 0 {
		return nil
	}
	subj := historySubjects + ">"
	if subs := patternSubjects(historySubjects, pattern); len(subs) == 1 {
		subj = subs[0]
	}
	for {
		got, last, err := n.historyBatch(subj, from, each)
		if err != nil || got < historyBatch || last == 0 {
			return err
		}
		from = last + 1
	}
}

// historyBatch makes one batched direct get: up to historyBatch messages
// on subj from seq from, ended by an EOB status message.
func (n *Node) historyBatch(subj string, from uint64, each func(uint64, *broker.Envelope) bool) (got int, last uint64, err error) {
	inbox := nats.NewInbox()
	sub, err := n.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, 0, err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(map[string]any{"seq": from, "next_by_subj": subj, "batch": historyBatch})
	if err := n.nc.PublishRequest("$JS.API.DIRECT.GET."+historyStream, inbox, req); err != nil {
		return 0, 0, err
	}
	deadline := time.Now().Add(apiTimeout)
	for {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return got, last, err
		}
		if status := msg.Header.Get("Status"); status != "" {
			switch status {
			case "204", "404": // end of the batch; nothing (more) there
				return got, last, nil
			default:
				return got, last, errors.New("reading topic history: " + status + " " + msg.Header.Get("Description"))
			}
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return got, last, errors.New("reading topic history: no sequence")
		}
		got, last = got+1, seq
		m, err := decode(msg.Data)
		if err != nil {
			continue
		}
		if !each(seq, m) {
			return got, 0, nil
		}
	}
}
