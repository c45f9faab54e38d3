package broker

import (
	"slices"
	"time"
)

// In a cluster the nodes share one history (Cluster.KeepHistory and
// History): a retained message's position is its place there, so a
// client resumes on any node from the last message-id it saw. Nothing is
// kept in this node's memory; each replay reads what it needs.

// keepShared keeps a batch's retained messages in the shared history and
// gives each its position, before any of them is routed: a subscriber
// that binds meanwhile finds it in the history, if not among the
// subscribers (see replay.go).
func (r *local) keepShared(ms []*message, nowMs int64) error {
	var kept []*message
	for _, m := range ms {
		if !isQueue(m.destination) && !m.expired(nowMs) && r.hist.retentionOf(m.destination).count > 0 {
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	pos, err := r.cl.KeepHistory(exportAll(kept))
	if err != nil {
		return err
	}
	for i, m := range kept {
		m.setPosition(pos[i])
	}
	return nil
}

// sharedSnapshot is snapshot for a cluster: what req asks of the shared
// history of the topics p matches, each topic held to its retention.
func (h *histories) sharedSnapshot(p pattern, req replayRequest) (ms []*message, upto uint64, gap bool, err error) {
	if req.mode == replayNone {
		return nil, 0, false, nil
	}
	from := uint64(1)
	if (req.mode == replayAfter || req.mode == replayFrom) && !req.unknown && req.pos > 0 {
		from = req.pos
	}
	nowMs := time.Now().UnixMilli()
	var all []*message
	perTopic := map[string]int{}
	err = h.cl.History(p.dest, from, func(pos uint64, x *Envelope) bool {
		upto = max(upto, pos)
		if !p.matches(x.Destination) {
			return true // a broader subject's catch
		}
		m := imported(x, "")
		m.setPosition(pos)
		all = append(all, m)
		perTopic[m.destination]++
		return true
	})
	if err != nil {
		return nil, 0, false, err
	}
	// Held to each topic's retention: the shared history keeps as much
	// as the most generous rule allows.
	seen := map[string]int{}
	kept := all[:0]
	for _, m := range all {
		ret := h.retentionOf(m.destination)
		seen[m.destination]++
		if perTopic[m.destination]-seen[m.destination] >= ret.count || (ret.age > 0 && nowMs-m.timestamp > ret.age.Milliseconds()) || m.expired(nowMs) {
			continue
		}
		kept = append(kept, m)
	}
	switch req.mode {
	case replayLast:
		return kept[max(0, len(kept)-req.n):], upto, false, nil
	case replayAfter, replayFrom:
		if req.resume {
			// Topics lose their oldest messages first: while the one
			// resumed from is kept, so is everything after it.
			gap = req.unknown || req.pos == 0 || !slices.ContainsFunc(kept, func(m *message) bool { return m.hseq == req.pos })
		}
	}
	ms = slices.DeleteFunc(kept, func(m *message) bool { return !req.wants(m) })
	return ms, upto, gap, nil
}
