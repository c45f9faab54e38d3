package broker

import (
	"encoding/json"
	"slices"
	"strings"
)

// In a cluster the operator's views answer for every node: a node asks
// the others for their connections and sends a kick to the node that
// holds the connection; queue depths come from the cluster's queues.

// ConnectionInfo.Node names the node a connection is on; these are the
// questions nodes answer each other.
const (
	askConnections = "connections"
	askKick        = "kick"
)

type kickRequest struct {
	ID, Reason string
}

func (b *Broker) answerCluster() error {
	cl := b.opts.Cluster
	stop, err := cl.Answer(askConnections, func([]byte) []byte {
		out, _ := json.Marshal(b.localConnections())
		return out
	})
	if err != nil {
		return err
	}
	b.answers = append(b.answers, stop)
	stop, err = cl.Answer(askKick, func(body []byte) []byte {
		var k kickRequest
		if json.Unmarshal(body, &k) != nil || b.closeLocal(k.ID, k.Reason) != nil {
			return nil
		}
		return []byte("ok")
	})
	if err != nil {
		return err
	}
	b.answers = append(b.answers, stop)
	return nil
}

// Nodes lists the nodes of the cluster, or this broker alone.
func (b *Broker) Nodes() []NodeInfo {
	self := NodeInfo{Name: "local", Started: b.started, Self: true}
	cl := b.opts.Cluster
	if cl == nil {
		return []NodeInfo{self}
	}
	self.Name = cl.Node()
	nodes, err := cl.Nodes()
	if err != nil {
		b.log.Warn("listing the cluster's nodes failed", "err", err)
	}
	found := false
	for i := range nodes {
		if nodes[i].Name == self.Name {
			nodes[i].Self, found = true, true
		}
	}
	if !found {
		nodes = append(nodes, self)
	}
	slices.SortFunc(nodes, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return nodes
}

// Connections lists the connections of every node, oldest first.
func (b *Broker) Connections() []ConnectionInfo {
	out := b.localConnections()
	if cl := b.opts.Cluster; cl != nil {
		answers, err := cl.Ask(askConnections, nil)
		if err != nil {
			b.log.Warn("asking the other nodes for their connections failed", "err", err)
		}
		for _, a := range answers {
			var theirs []ConnectionInfo
			if json.Unmarshal(a, &theirs) == nil {
				out = append(out, theirs...)
			}
		}
	}
	slices.SortFunc(out, func(a, b ConnectionInfo) int { return a.ConnectedAt.Compare(b.ConnectedAt) })
	return out
}

func (b *Broker) localConnections() []ConnectionInfo {
	all := b.allConns()
	out := make([]ConnectionInfo, 0, len(all))
	for _, c := range all {
		ci := c.describe()
		if b.opts.Cluster != nil {
			ci.Node = b.opts.Cluster.Node()
		}
		out = append(out, ci)
	}
	return out
}

// CloseConnection ends a connection, on whichever node it is, with an
// ERROR carrying reason.
func (b *Broker) CloseConnection(id, reason string) error {
	err := b.closeLocal(id, reason)
	cl := b.opts.Cluster
	if err == nil || cl == nil {
		return err
	}
	body, _ := json.Marshal(kickRequest{ID: id, Reason: reason})
	answers, _ := cl.Ask(askKick, body)
	for _, a := range answers {
		if string(a) == "ok" {
			return nil
		}
	}
	return ErrNotFound
}

func (b *Broker) closeLocal(id, reason string) error {
	for _, c := range b.allConns() {
		if c.id == id {
			c.fail(reason, "")
			return nil
		}
	}
	return ErrNotFound
}

// sharedDepths sets, in a cluster, each queue's depth to what the whole
// cluster holds, and adds the queues no consumer here stands in for.
func (b *Broker) sharedDepths(out []DestinationInfo) []DestinationInfo {
	cl := b.opts.Cluster
	if cl == nil {
		return out
	}
	depths, err := cl.QueueDepths()
	if err != nil {
		b.log.Warn("reading the cluster's queue depths failed", "err", err)
		return out
	}
	for i := range out {
		if d, ok := depths[out[i].Name]; ok && out[i].Type == "queue" {
			out[i].Depth = max(d-out[i].Unacked, 0)
			delete(depths, out[i].Name)
		}
	}
	for name, d := range depths {
		out = append(out, DestinationInfo{Name: name, Type: "queue", Depth: d, DLQ: strings.HasPrefix(name, queuePrefix+"DLQ.")})
	}
	return out
}
