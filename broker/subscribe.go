package broker

import (
	"errors"
	"strconv"
	"strings"

	"github.com/stampede-mq/stampede/stomp"
)

func (s *session) onSubscribe(f *stomp.Frame) error {
	sub, err := s.parseSubscribe(f)
	if err != nil {
		return err
	}
	if sub.kind == kindQueue && strings.HasPrefix(sub.dest, tempQueueNamePrefix) && !s.ownsTemp(sub.dest) {
		return errAccess("read", sub.dest+" (another connection's temporary queue)")
	}
	if sub.kind != kindTempQueue {
		if err := s.checkRead(sub.dest); err != nil {
			return err
		}
	}
	if sub.kind == kindTopic && s.principal != nil && !s.principal.CanRead(withoutHashes(sub.dest)) {
		sub.reader = s.principal
	}
	switch {
	case sub.kind == kindTopic && isDurable(f):
		if sub.durableName, err = durableName(f, s.clientID, sub.id); err != nil {
			return err
		}
		sub.owner = s.owner()
	case sub.kind == kindTempQueue:
		if sub.queue, err = s.tempQueue(sub.dest); err != nil {
			return err
		}
	case sub.kind == kindQueue:
		sub.queue = sub.dest
	}
	if sub.kind == kindTopic && sub.durableName == "" {
		if sub.replay, err = parseReplay(f); err != nil {
			return err
		}
	}
	if err := s.subscribe(sub); err != nil {
		return err
	}
	if sub.replay != nil {
		s.receiptHeaders = []string{"x-resume", "ok"}
		if sub.resumeGap {
			s.receiptHeaders[1] = "gap"
		}
	}
	return nil
}

// parseSubscribe reads a SUBSCRIBE frame's id, destination, ack mode and
// prefetch.
func (s *session) parseSubscribe(f *stomp.Frame) (*subscription, error) {
	dest, err := requireHeader(f, "destination")
	if err != nil {
		return nil, err
	}
	id, ok := f.Get("id")
	if !ok {
		if s.c.version >= stomp.V11 {
			return nil, errors.New("missing id header")
		}
		id = dest // STOMP 1.0 subscriptions may go unnamed
	}
	if _, dup := s.subs[id]; dup {
		return nil, errors.New("duplicate subscription id " + strconv.Quote(id))
	}
	sub := &subscription{id: id, dest: dest, prefetch: s.b.opts.DefaultPrefetch}
	if sub.kind, err = parseDestination(dest, true); err != nil {
		return nil, destinationError(dest, err)
	}
	if n := strings.Count(dest, "*") + strings.Count(dest, "#"); sub.kind == kindTopic && n > s.b.opts.MaxWildcards {
		s.b.limits.hit("wildcards")
		return nil, limitError("wildcards per subscription", s.b.opts.MaxWildcards)
	}
	switch a := f.Value("ack"); a {
	case "", "auto":
		sub.mode = ackAuto
	case "client":
		sub.mode = ackClient
	case "client-individual":
		sub.mode = ackIndividual
	default:
		return nil, errors.New("invalid ack mode " + strconv.Quote(a))
	}
	if p, ok := f.Get("prefetch-count"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, errors.New("invalid prefetch-count " + strconv.Quote(p))
		}
		sub.prefetch = n
	}
	return sub, nil
}

// isDurable tells a durable topic subscription: durable:true (RabbitMQ,
// DESIGN) or an ActiveMQ subscription name.
func isDurable(f *stomp.Frame) bool {
	return f.Value("durable") == "true" || f.Value("activemq.subscriptionName") != ""
}

// ownsTemp reports whether name is one of this session's temporary
// queues.
func (s *session) ownsTemp(name string) bool {
	for _, own := range s.temps {
		if own == name {
			return true
		}
	}
	return false
}

// subscribe numbers sub, hands it to the router and records it. Every
// subscription counts against the limit, those reply-to makes included.
func (s *session) subscribe(sub *subscription) error {
	if _, dup := s.subs[sub.id]; dup {
		return errors.New("duplicate subscription id " + strconv.Quote(sub.id))
	}
	if len(s.subs) >= s.b.opts.MaxSubscriptions {
		s.b.limits.hit("subscriptions")
		return errors.New("subscription limit reached (max " + strconv.Itoa(s.b.opts.MaxSubscriptions) + " per connection)")
	}
	s.subNum++
	sub.conn, sub.num = s.c, s.subNum
	if err := s.r.subscribe(sub); err != nil {
		return err
	}
	if s.subs == nil {
		// Made on first use: many connections only publish.
		s.subs = make(map[string]*subscription)
		s.subsByNum = make(map[int]*subscription)
	}
	s.subs[sub.id] = sub
	s.subsByNum[sub.num] = sub
	s.nsubs.Add(1)
	return nil
}

func (s *session) onUnsubscribe(f *stomp.Frame) error {
	id, ok := f.Get("id")
	if !ok {
		if s.c.version >= stomp.V11 {
			return errors.New("missing id header")
		}
		if id, ok = f.Get("destination"); !ok {
			return errors.New("missing id or destination header")
		}
	}
	sub := s.subs[id]
	forget := f.Value("durable") == "true"
	if sub == nil {
		if forget {
			// Deleting a durable subscription that is offline.
			name, err := durableName(f, s.clientID, id)
			if err != nil {
				return err
			}
			return s.r.forgetDurable(name, s.owner())
		}
		return errors.New("no subscription with id " + strconv.Quote(id))
	}
	s.unsubscribe(sub)
	delete(s.subs, id)
	if forget && sub.durableName != "" {
		return s.r.forgetDurable(sub.durableName, s.owner())
	}
	return nil
}

func (s *session) unsubscribe(sub *subscription) {
	s.nsubs.Add(-1)
	delete(s.subsByNum, sub.num)
	s.r.unsubscribe(sub)
}
