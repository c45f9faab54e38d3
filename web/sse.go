package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/stampede-mq/stampede/broker"
)

const (
	// maxStreams bounds the event streams open at once; each holds a
	// goroutine and, for a tail, a tap on the publish path.
	maxStreams = 256
	// tailBuffer is how many messages a tail holds for a slow reader
	// before it drops (and counts) the rest.
	tailBuffer = 256
	// keepAlive is how often an idle stream sends a comment, so proxies
	// and the browser see it is alive.
	keepAlive = 15 * time.Second
	// streamWriteTimeout bounds one write to a stream's client.
	streamWriteTimeout = 10 * time.Second
)

// eventStream writes Server-Sent Events.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startStream sends the headers of an event stream. Errors after it are
// the client's going away: the handler just returns.
func (s *Server) startStream(w http.ResponseWriter) (*eventStream, func(), error) {
	if s.streams.Add(1) > maxStreams {
		s.streams.Add(-1)
		return nil, nil, &httpError{status: http.StatusServiceUnavailable, msg: "too many event streams open"}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // reverse proxies must not buffer it
	w.WriteHeader(http.StatusOK)
	es := &eventStream{w: w, rc: http.NewResponseController(w)}
	// Ask EventSource to come back soon when the stream breaks.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return es, func() { s.streams.Add(-1) }, nil
	}
	es.flush()
	return es, func() { s.streams.Add(-1) }, nil
}

func (es *eventStream) flush() error {
	// Deadlines are best effort: a ResponseWriter that cannot set them
	// (a test recorder) still streams.
	err := es.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return es.rc.Flush()
}

// send writes one event whose data is v as JSON (one line: encoding/json
// escapes line breaks inside strings).
func (es *eventStream) send(event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(es.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	return es.flush()
}

func (es *eventStream) comment() error {
	if _, err := fmt.Fprint(es.w, ": keep-alive\n\n"); err != nil {
		return err
	}
	return es.flush()
}

// streamOverview streams the overview's samples: first "history" with the
// kept ones (five minutes), then a "sample" every second.
func (s *Server) streamOverview(w http.ResponseWriter, r *http.Request) error {
	past, ch, stop := s.sampler.watch()
	defer stop()
	es, end, err := s.startStream(w)
	if err != nil {
		return err
	}
	defer end()
	if es.send("history", past) != nil {
		return nil
	}
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		case smp := <-ch:
			err = es.send("sample", smp)
		case <-ka.C:
			err = es.comment()
		}
		if err != nil {
			return nil
		}
	}
}

// tailDestination streams the messages that reach a destination from now
// on, without taking them from its consumers: "ready" once the tap is in
// place, "message" for each message, "dropped" with the running count of
// messages this client was too slow for. The publisher never waits: a
// full buffer drops the message from this stream only.
func (s *Server) tailDestination(w http.ResponseWriter, r *http.Request) error {
	name, err := destName(r)
	if err != nil {
		return err
	}
	ch := make(chan broker.Message, tailBuffer)
	var dropped atomic.Uint64
	stopTap := s.b.Tap(name, func(m broker.Message) {
		select {
		case ch <- m:
		default:
			dropped.Add(1)
		}
	})
	defer stopTap()
	es, end, err := s.startStream(w)
	if err != nil {
		return err
	}
	defer end()
	if es.send("ready", map[string]string{"destination": name}) != nil {
		return nil
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reported uint64
	idle := 0
	for {
		var err error
		select {
		case <-r.Context().Done():
			return nil
		case <-s.done:
			return nil
		case m := <-ch:
			idle = 0
			err = es.send("message", messageOf(m))
		case <-tick.C:
			if n := dropped.Load(); n != reported {
				reported = n
				err = es.send("dropped", map[string]uint64{"dropped": n})
			} else if idle++; idle >= int(keepAlive/time.Second) {
				idle = 0
				err = es.comment()
			}
		}
		if err != nil {
			return nil
		}
	}
}
