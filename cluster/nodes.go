package cluster

import (
	"context"
	"encoding/json"
	"sort"
	"time"
)

// Every node keeps an entry in a bucket whose entries live nodeTTL and
// renews it with each health check: the nodes alive are the entries.
const nodeTTL = 5 * checkEvery

// NodeInfo describes one node of the cluster.
type NodeInfo struct {
	Name    string    `json:"name"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
}

func (n *Node) announce(ctx context.Context) error {
	if n.started.IsZero() {
		n.started = time.Now()
	}
	b, _ := json.Marshal(NodeInfo{Name: n.cfg.Node, Started: n.started, Seen: time.Now().UTC()})
	_, err := n.nodes.Put(ctx, key("n", n.cfg.Node), b)
	return err
}

func (n *Node) leave() {
	ctx, cancel := ctxTimeout()
	defer cancel()
	n.nodes.Purge(ctx, key("n", n.cfg.Node))
}

// Nodes lists the nodes alive in the cluster, by name.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	keys, err := n.nodes.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []NodeInfo
	for k := range keys.Keys() {
		e, err := n.nodes.Get(ctx, k)
		if err != nil {
			continue
		}
		var info NodeInfo
		if json.Unmarshal(e.Value(), &info) == nil {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
