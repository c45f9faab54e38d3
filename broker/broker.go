// Package broker routes STOMP frames between sessions: topics fan out to
// every matching subscription, queues hand each message to exactly one
// consumer. Transports hand it connections through Serve or Start; it
// knows nothing of sockets or WebSocket. docs/architecture.md follows a
// frame through it.
package broker

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Broker serves client connections and routes their messages. It is safe
// for concurrent use.
type Broker struct {
	opts   Options
	log    *slog.Logger
	router router // what sessions publish and subscribe through
	local  *local // this process's queues and topics, for operators
	ids    idSource
	conSeq atomic.Uint64
	// connPrefix begins connection ids; in a cluster it names the node,
	// so ids are unique cluster-wide.
	connPrefix string
	answers    []func() // stops this node's answers to the cluster (nodes.go)

	mu        sync.Mutex
	conns     map[*conn]struct{}
	perIP     map[string]int
	clientIDs map[string]*session
	closing   bool
	connWG    sync.WaitGroup

	limits  limitCounters
	stats   counters
	taps    taps
	started time.Time
	timers  timers
	alarm   *memoryAlarm

	// readBufs lends connections their read buffers (*[]byte of
	// readBufSize), so connections waiting for input hold none.
	readBufs sync.Pool
}

// readBufSize is one read's worth of input: large enough that a busy
// publisher is read in few system calls.
const readBufSize = 16 << 10

// New returns a broker that keeps persistent messages in st and reloads
// the queues st already holds.
func New(opts Options, st Store) (*Broker, error) {
	opts.fill()
	b := &Broker{
		opts:      opts,
		log:       opts.Logger,
		ids:       idSource{base: strconv.FormatInt(time.Now().UnixNano(), 36)},
		conns:     make(map[*conn]struct{}),
		perIP:     make(map[string]int),
		clientIDs: make(map[string]*session),
		started:   time.Now(),
	}
	b.timers.wake = make(chan struct{}, 1)
	b.alarm = newMemoryAlarm(opts.MemoryHighWatermark, b.log)
	b.readBufs.New = func() any {
		buf := make([]byte, readBufSize)
		return &buf
	}
	hist, err := newHistories(&opts)
	if err != nil {
		return nil, err
	}
	hist.cl = opts.Cluster
	b.local = newLocal(b, st)
	b.local.hist = hist
	b.router = b.local
	if err := b.local.recover(); err != nil {
		return nil, err
	}
	b.connPrefix = "c"
	if opts.Cluster != nil {
		b.connPrefix = opts.Cluster.Node() + "-c"
		if err := b.answerCluster(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Serve runs one client connection until it ends. It returns after the
// session has been cleaned up and the transport closed.
func (b *Broker) Serve(t Transport) {
	if c := b.open(t, false, func() {}); c != nil {
		c.read()
	}
}

// Start serves one client connection as Serve does, but returns at once:
// the session runs on goroutines of its own, and while its client is
// quiet on a transport that parks its reads (ReadParker), on none at all.
// ended runs once the session has been cleaned up and the transport
// closed (or the connection refused), on the session's last goroutine,
// which nothing else waits for.
func (b *Broker) Start(t Transport, ended func()) {
	// Refusing writes an ERROR, which must not hold up the caller.
	go func() {
		c := b.open(t, true, ended)
		if c == nil {
			ended()
			return
		}
		c.read()
	}()
}

// open admits a connection and readies it for its read loop, or refuses
// it and returns nil.
func (b *Broker) open(t Transport, parks bool, ended func()) *conn {
	c := newConn(b, t)
	ip := hostOf(c.info.RemoteAddr)
	if refuse := b.admitConn(c, ip); refuse != "" {
		c.refuse(refuse)
		return nil
	}
	c.parks = parks
	c.ended = func() {
		b.mu.Lock()
		if b.perIP[ip]--; b.perIP[ip] <= 0 {
			delete(b.perIP, ip)
		}
		delete(b.conns, c)
		b.mu.Unlock()
		b.connWG.Done()
		ended()
	}
	b.timers.set(c, c.start.Add(b.opts.ConnectTimeout).UnixNano())
	return c
}

// admitConn registers a new connection, or says why it is refused.
func (b *Broker) admitConn(c *conn, ip string) (refuse string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closing:
		return "server shutting down"
	case len(b.conns) >= b.opts.MaxConnections:
		b.limits.hit("connections")
		return limitError("connection", b.opts.MaxConnections).Error()
	case b.perIP[ip] >= b.opts.MaxConnectionsPerIP:
		b.limits.hit("connections-per-ip")
		return limitError("connections per address", b.opts.MaxConnectionsPerIP).Error()
	}
	b.conns[c] = struct{}{}
	b.perIP[ip]++
	b.connWG.Add(1)
	return ""
}

// claimClientID registers a CONNECT client-id; a second live connection
// of the same user with the same id is refused. Ids are the user's own:
// another user's connection cannot squat one.
func (b *Broker) claimClientID(id string, s *session) bool {
	key := s.owner() + "\x00" + id
	b.mu.Lock()
	if other, ok := b.clientIDs[key]; ok && other != s {
		b.mu.Unlock()
		return false
	}
	b.clientIDs[key] = s
	b.mu.Unlock()
	if cl := b.opts.Cluster; cl != nil {
		// At most one connection in the whole cluster holds the id.
		ok, err := cl.ClaimClientID(key)
		if err != nil {
			b.log.Warn("claiming a client-id in the cluster failed", "err", err)
		}
		if !ok {
			b.mu.Lock()
			delete(b.clientIDs, key)
			b.mu.Unlock()
			return false
		}
	}
	return true
}

func (b *Broker) releaseClientID(id string, s *session) {
	key := s.owner() + "\x00" + id
	b.mu.Lock()
	mine := b.clientIDs[key] == s
	if mine {
		delete(b.clientIDs, key)
	}
	b.mu.Unlock()
	if cl := b.opts.Cluster; mine && cl != nil {
		cl.ReleaseClientID(key)
	}
}

// allConns returns the connections at one moment.
func (b *Broker) allConns() []*conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := make([]*conn, 0, len(b.conns))
	for c := range b.conns {
		all = append(all, c)
	}
	return all
}

// Shutdown stops taking connections, tells every client "server shutting
// down" after the frames already queued for it, and waits for sessions to
// end until ctx is done, when it closes the rest outright.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	for _, stop := range b.answers {
		stop()
	}
	all := b.allConns()
	for _, c := range all {
		c.fail("server shutting down", "")
	}
	done := make(chan struct{})
	go func() {
		b.connWG.Wait()
		// Settled messages leave the store before it is closed, so a
		// clean restart redelivers nothing that was acked, and the
		// dispatch marks come down to what was really delivered.
		b.local.settleMarks()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range all {
			c.t.Close()
		}
		<-done
		return errors.New("shutdown: sessions closed before their frames were flushed")
	}
}
