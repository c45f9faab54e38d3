package cluster

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A client-id is held cluster-wide by an entry in a key-value bucket
// whose entries live claimTTL: the node holding it renews it every
// refreshEvery, so a node that dies lets its ids go within claimTTL.
// Creating an entry that exists fails, so of two nodes racing for one id
// exactly one wins.

// ClaimClientID holds key for this node; it reports false while another
// connection anywhere holds it.
func (n *Node) ClaimClientID(id string) (bool, error) {
	if err := n.Ready(); err != nil {
		return false, err
	}
	k := key("c", id)
	ctx, cancel := ctxTimeout()
	defer cancel()
	rev, err := n.claims.Create(ctx, k, []byte(n.cfg.Node))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	n.held[k] = rev
	n.mu.Unlock()
	return true, nil
}

// ReleaseClientID lets go of key.
func (n *Node) ReleaseClientID(id string) { n.releaseKey(key("c", id)) }

func (n *Node) releaseKey(k string) {
	n.mu.Lock()
	rev, ok := n.held[k]
	delete(n.held, k)
	n.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := ctxTimeout()
	defer cancel()
	if err := n.claims.Delete(ctx, k, jetstream.LastRevision(rev)); err != nil {
		n.log.Debug("releasing a client-id failed; it expires on its own", "err", err)
	}
}

// refreshLoop renews this node's claims.
func (n *Node) refreshLoop() {
	defer n.done.Done()
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.Lock()
		held := make(map[string]uint64, len(n.held))
		for k, rev := range n.held {
			held[k] = rev
		}
		n.mu.Unlock()
		for k, rev := range held {
			ctx, cancel := ctxTimeout()
			next, err := n.claims.Update(ctx, k, []byte(n.cfg.Node), rev)
			cancel()
			if err != nil {
				n.log.Warn("renewing a client-id claim failed", "err", err)
				continue
			}
			n.mu.Lock()
			if n.held[k] == rev {
				n.held[k] = next
			}
			n.mu.Unlock()
		}
	}
}
