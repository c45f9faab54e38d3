package cluster

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// settler answers WhenSettled. Acks go out on the node's connection in
// order; once a round trip to the server made after them completes, the
// server has taken them. One round trip answers everyone who asked
// before it.
type settler struct {
	nc      *nats.Conn
	mu      sync.Mutex
	waiting []func()
	running bool
}

// WhenSettled calls fn once the acks made so far have reached JetStream.
func (n *Node) WhenSettled(fn func()) {
	s := &n.settle
	s.mu.Lock()
	s.waiting = append(s.waiting, fn)
	if s.running {
		s.mu.Unlock()
		return
	}
	s.running = true
	s.mu.Unlock()
	go s.run()
}

func (s *settler) run() {
	for {
		s.mu.Lock()
		fns := s.waiting
		s.waiting = nil
		if len(fns) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		// On failure the callers are answered all the same: the acks
		// are on their way, and a message whose ack was lost comes back
		// marked redelivered, never silently.
		s.nc.FlushTimeout(apiTimeout)
		for _, fn := range fns {
			fn()
		}
	}
}
