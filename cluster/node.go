package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a node's part in the cluster.
type Config struct {
	// Node names this node, uniquely in the cluster.
	Node string
	// Conn is the node's NATS connection; Open takes it over and closes
	// it with the node. It should be made with Options below.
	Conn *nats.Conn
	// Replicas is how many JetStream servers keep each stream.
	Replicas int
	// Isolated, when set, reports whether the node has lost every route
	// to the others (an embedded server's), which makes it unavailable
	// at once.
	Isolated func() bool
	// AckWait is how long a message handed to a node may go without news
	// before the cluster hands it to another (the node reports progress
	// well within it while its clients hold the message).
	AckWait time.Duration
	// History bounds the topic history the nodes share; zero keeps none.
	History HistoryLimits
	Logger  *slog.Logger
}

// Options are the NATS connection options a node needs: it must not hear
// its own topic messages back (it has delivered them locally already),
// and it must fail rather than buffer while cut off, so that clients hear
// of it.
func Options(name string) []nats.Option {
	return []nats.Option{
		nats.Name("stampede " + name), nats.NoEcho(),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1),
	}
}

const (
	queueStream    = "STAMPEDE_QUEUES"
	topicStream    = "STAMPEDE_TOPICS"
	claimBucket    = "stampede-client-ids"
	nodeBucket     = "stampede-nodes"
	claimTTL       = 30 * time.Second
	apiTimeout     = 5 * time.Second
	attemptTime    = 2 * time.Second
	refreshEvery   = claimTTL / 3
	checkEvery     = 2 * time.Second
	defaultAckWait = 30 * time.Second
)

// Node is this broker's membership of the cluster. It implements
// broker.Cluster.
type Node struct {
	cfg    Config
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	claims jetstream.KeyValue
	nodes  jetstream.KeyValue

	durableKV   jetstream.KeyValue
	durables    *durableIndex
	stopAnswers []func()
	ready       atomic.Pointer[error] // nil pointer: ready

	mu       sync.Mutex
	held     map[string]uint64 // client-id claims of this node: key → revision
	started  time.Time         // owned by watchHealth
	failures int               // checks failed in a row; owned by watchHealth

	settle settler
	stop   chan struct{}
	done   sync.WaitGroup
}

// Open joins the cluster: it makes the streams and buckets the nodes
// share, if they do not exist yet, retrying while JetStream elects its
// leaders, until ctx is done.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = defaultAckWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// A publish the cluster cannot take (cut off, no majority) fails in
	// time, so its client hears of it.
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncTimeout(apiTimeout))
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, nc: cfg.Conn, js: js, held: make(map[string]uint64),
		stop: make(chan struct{}), durables: newDurableIndex(),
	}
	n.settle.nc = cfg.Conn
	if err := retry(ctx, n.setUp); err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", err)
	}
	if err := n.startDurables(); err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", err)
	}
	n.done.Add(2)
	go n.watchHealth()
	go n.refreshLoop()
	return n, nil
}

// retry calls fn with a short deadline until it succeeds, fails for good
// (permanent) or ctx ends: a JetStream call made before the cluster has a
// leader waits for its whole deadline.
func retry(ctx context.Context, fn func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTime)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Node) setUp(ctx context.Context) error {
	r := n.cfg.Replicas
	if _, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: queueStream, Subjects: []string{queueSubjects + ">"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: r,
	}); err != nil {
		return err
	}
	// Topic messages that durable subscriptions take are kept only until
	// each has taken them.
	if _, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: topicStream, Subjects: []string{durableSubjects + ">"},
		Retention: jetstream.InterestPolicy, Storage: jetstream.FileStorage, Replicas: r,
	}); err != nil {
		return err
	}
	if err := n.setUpHistory(ctx); err != nil {
		return err
	}
	var err error
	if n.claims, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: claimBucket, TTL: claimTTL, Replicas: r, Storage: jetstream.FileStorage,
	}); err != nil {
		return err
	}
	if n.nodes, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: nodeBucket, TTL: nodeTTL, Replicas: r, Storage: jetstream.MemoryStorage,
	}); err != nil {
		return err
	}
	n.durableKV, err = n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: durableBucket, Replicas: r, Storage: jetstream.FileStorage,
	})
	return err
}

// Node is this node's name.
func (n *Node) Node() string { return n.cfg.Node }

// Ready reports why the node cannot serve the cluster, or nil.
func (n *Node) Ready() error {
	if p := n.ready.Load(); p != nil {
		return *p
	}
	return nil
}

// watchHealth checks, every few seconds, that NATS is connected and
// JetStream answers, and publishes this node's entry in the node list.
func (n *Node) watchHealth() {
	defer n.done.Done()
	t := time.NewTicker(checkEvery)
	defer t.Stop()
	for {
		n.check()
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

func (n *Node) check() {
	err := n.probe()
	if err == nil {
		n.failures = 0
		if n.Ready() != nil {
			n.log.Info("cluster available")
		}
		n.ready.Store(nil)
		return
	}
	// One failed check may be a JetStream leader being elected after a
	// node left, which takes a few seconds: the node is declared
	// unavailable on the second, unless it plainly is (no connection, no
	// route to any other node).
	n.failures++
	var plain *plainError
	if n.failures < 2 && !errors.As(err, &plain) {
		n.log.Debug("a cluster health check failed", "err", err)
		return
	}
	if n.Ready() == nil {
		n.log.Warn("cluster unavailable", "err", err)
	}
	n.ready.Store(&err)
}

// plainError is a failed check that needs no second opinion.
type plainError struct{ msg string }

func (e *plainError) Error() string { return e.msg }

// probe checks the connection, the routes and JetStream, and renews this
// node's entry in the node list (whose failure alone is only logged: the
// bucket's leader may be the node that just left).
func (n *Node) probe() error {
	if !n.nc.IsConnected() {
		return &plainError{"not connected to NATS"}
	}
	if n.cfg.Isolated != nil && n.cfg.Isolated() {
		return &plainError{"cut off from the other nodes"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkEvery)
	defer cancel()
	if _, err := n.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream does not answer: %w", err)
	}
	if err := n.announce(ctx); err != nil {
		n.log.Debug("renewing this node's entry failed", "err", err)
	}
	return nil
}

// Close leaves the cluster: claims are dropped, the connection closed.
func (n *Node) Close() error {
	for _, stop := range n.stopAnswers {
		stop()
	}
	close(n.stop)
	n.done.Wait()
	n.mu.Lock()
	keys := make([]string, 0, len(n.held))
	for k := range n.held {
		keys = append(keys, k)
	}
	n.mu.Unlock()
	for _, k := range keys {
		n.releaseKey(k)
	}
	n.leave()
	n.nc.Close()
	return nil
}

// key turns an arbitrary string into a name NATS accepts for a key or a
// consumer.
func key(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	return prefix + hex.EncodeToString(sum[:12])
}

func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), apiTimeout)
}

// permanent marks an error retrying cannot cure.
type permanent struct{ error }

// isTemporary tells errors a retry may cure.
func isTemporary(err error) bool {
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		strings.Contains(err.Error(), "temporarily unavailable"))
}
