package broker

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// heartBeatLead makes server heart-beats go out a little before the
// interval ends, so network delay does not make them late.
const heartBeatLead = 5

// parseHeartBeat reads a CONNECT heart-beat header: what the client can
// send (cx) and what it wants to receive (cy).
func parseHeartBeat(h string) (cx, cy time.Duration, err error) {
	if h == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(h, ",")
	x, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 31)
	y, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 31)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, errors.New("invalid heart-beat header " + strconv.Quote(h))
	}
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond, nil
}

// clamp bounds a heart-beat interval to the configured range; zero (not
// wanted / cannot) stays zero.
func (c *conn) clamp(d time.Duration) time.Duration {
	if d == 0 {
		return 0
	}
	return min(max(d, c.b.opts.HeartbeatMin), c.b.opts.HeartbeatMax)
}

func (c *conn) grace(in time.Duration) time.Duration {
	return time.Duration(float64(in) * c.b.opts.HeartbeatGrace)
}

// checkTimers runs the connection's time checks at now (unix ns): it
// closes a connection that missed its CONNECT deadline or fell silent,
// and queues a heart-beat when one is due. It returns when to check next,
// 0 for never.
func (c *conn) checkTimers(now int64) int64 {
	if c.out.isClosing() {
		return 0
	}
	next := int64(math.MaxInt64)
	if !c.connected.Load() {
		deadline := c.start.Add(c.b.opts.ConnectTimeout).UnixNano()
		if now >= deadline {
			c.fail("no CONNECT frame within "+c.b.opts.ConnectTimeout.String(), "")
			return 0
		}
		next = deadline
	}
	if in := time.Duration(c.hbIn.Load()); in > 0 {
		grace := c.grace(in)
		deadline := c.lastRead.Load() + int64(grace)
		if now >= deadline {
			c.fail("heart-beat timeout: nothing received for "+grace.String(), "")
			return 0
		}
		next = min(next, deadline)
	}
	if out := c.hbOut.Load(); out > 0 {
		every := out - out/heartBeatLead
		due := c.lastWrite.Load() + every
		if now >= due {
			c.out.push(Outbound{Head: []byte{'\n'}}, true)
			due = now + every
		}
		next = min(next, due)
	}
	if next == math.MaxInt64 {
		return 0
	}
	return next
}
