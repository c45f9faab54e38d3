package cluster

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stampede-mq/stampede/broker"
)

// Every node keeps an entry in a bucket whose entries live nodeTTL and
// renews it with each health check: the nodes alive are the entries.
const nodeTTL = 5 * checkEvery

// nodeEntry is a node's entry in the bucket.
type nodeEntry struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
}

func (n *Node) announce(ctx context.Context) error {
	if n.started.IsZero() {
		n.started = time.Now()
	}
	b, _ := json.Marshal(nodeEntry{Name: n.cfg.Node, Started: n.started})
	_, err := n.nodes.Put(ctx, key("n", n.cfg.Node), b)
	return err
}

func (n *Node) leave() {
	ctx, cancel := ctxTimeout()
	defer cancel()
	n.nodes.Purge(ctx, key("n", n.cfg.Node))
}

// Nodes lists the nodes alive in the cluster, by name.
func (n *Node) Nodes() ([]broker.NodeInfo, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	keys, err := n.nodes.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []broker.NodeInfo
	for k := range keys.Keys() {
		e, err := n.nodes.Get(ctx, k)
		if err != nil {
			continue
		}
		var info nodeEntry
		if json.Unmarshal(e.Value(), &info) == nil {
			out = append(out, broker.NodeInfo{Name: info.Name, Started: info.Started, Self: info.Name == n.cfg.Node})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// QueueDepths reports the messages each queue's subject holds in the
// queue stream: waiting, or handed out and not yet acknowledged.
func (n *Node) QueueDepths() (map[string]int, error) {
	ctx, cancel := ctxTimeout()
	defer cancel()
	s, err := n.js.Stream(ctx, queueStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(queueSubjects+">"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(info.State.Subjects))
	for subj, count := range info.State.Subjects {
		out[queueName(subj)] = int(count)
	}
	return out, nil
}

// askWait bounds how long Ask waits for the other nodes.
const askWait = 500 * time.Millisecond

// Ask puts a question to every other node and gathers their answers
// until all the nodes alive have answered or askWait has passed.
func (n *Node) Ask(question string, body []byte) ([][]byte, error) {
	want := -1
	if nodes, err := n.Nodes(); err == nil {
		want = len(nodes) - 1
	}
	return n.ask(question, body, askWait, want)
}

// ask gathers answers until want have come (any number when negative) or
// wait has passed.
func (n *Node) ask(question string, body []byte, wait time.Duration, want int) ([][]byte, error) {
	if want == 0 {
		return nil, nil
	}
	inbox := n.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := n.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	if err := n.nc.PublishRequest(askSubjects+question, inbox, body); err != nil {
		return nil, err
	}
	var out [][]byte
	deadline := time.After(wait)
	for want < 0 || len(out) < want {
		select {
		case m := <-ch:
			out = append(out, m.Data)
		case <-deadline:
			return out, nil
		}
	}
	return out, nil
}

// Answer makes this node answer question.
func (n *Node) Answer(question string, answer func(body []byte) []byte) (stop func(), err error) {
	sub, err := n.nc.Subscribe(askSubjects+question, func(m *nats.Msg) {
		if reply := answer(m.Data); reply != nil {
			m.Respond(reply)
		}
	})
	if err != nil {
		return nil, err
	}
	return func() { sub.Unsubscribe() }, nil
}
