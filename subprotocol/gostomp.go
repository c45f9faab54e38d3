package subprotocol

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
)

// GoStompPrefetch is the prefetch-count Subscribe asks for: no more
// unacknowledged messages than go-stomp can hold.
//
// go-stomp (v3) hands each MESSAGE to its subscription through a channel
// of 16 from the one goroutine that also writes the client's frames, and
// Ack queues its frame for that goroutine. A consumer that acks in its
// receive loop, with more messages in flight than the channel holds, can
// leave that goroutine blocked handing over a MESSAGE while the consumer
// is blocked in Ack, for good. With at most 16 unacknowledged, the
// handing over never blocks.
const GoStompPrefetch = 16

// ConnectOptions configures Connect. The zero value connects as the
// built-in guest (no login) with go-stomp's defaults otherwise.
type ConnectOptions struct {
	// Login and Passcode are sent in CONNECT when Login is set.
	Login, Passcode string
	// TLS configures stomp+ssl:// and wss:// connections; nil means the
	// system's roots and the URL's host name.
	TLS *tls.Config
	// Header is added to the WebSocket handshake (Origin, Authorization).
	Header http.Header
	// Options are further go-stomp connection options (heart-beats,
	// timeouts, a logger); they come after Connect's own.
	Options []func(*stomp.Conn) error
}

// Connect opens a go-stomp connection to rawURL, which names the broker
// and the transport:
//
//	tcp://host:61613          STOMP over TCP (also host:61613 alone)
//	stomp+ssl://host:61613    STOMP over TLS
//	ws://host:8080/ws         STOMP over WebSocket
//	wss://host/ws             STOMP over WebSocket with TLS
//
// ctx bounds dialling and the CONNECT exchange. Use Subscribe on the
// result for subscriptions that cannot hang go-stomp.
func Connect(ctx context.Context, rawURL string, opts ConnectOptions) (*stomp.Conn, error) {
	u, err := parseBrokerURL(rawURL)
	if err != nil {
		return nil, err
	}
	rwc, err := dialBroker(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", rawURL, err)
	}
	// go-stomp only watches ctx for a net.Conn with a deadline; closing
	// the stream covers the rest, WebSocket included.
	stop := context.AfterFunc(ctx, func() { rwc.Close() })
	all := []func(*stomp.Conn) error{stomp.ConnOpt.Host(u.Hostname())}
	if opts.Login != "" {
		all = append(all, stomp.ConnOpt.Login(opts.Login, opts.Passcode))
	}
	conn, err := stomp.ConnectWithContext(ctx, rwc, append(all, opts.Options...)...)
	if !stop() {
		if err == nil {
			conn.MustDisconnect()
		}
		return nil, fmt.Errorf("connect %s: %w", rawURL, ctx.Err())
	}
	if err != nil {
		rwc.Close()
		return nil, fmt.Errorf("connect %s: %w", rawURL, err)
	}
	return conn, nil
}

// parseBrokerURL accepts a broker URL, or host:port for STOMP over TCP.
func parseBrokerURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		// "localhost:61613" parses as scheme "localhost".
		if _, _, e := net.SplitHostPort(rawURL); e == nil {
			return &url.URL{Scheme: "tcp", Host: rawURL}, nil
		}
		return nil, fmt.Errorf("broker URL %q: want tcp://, stomp+ssl://, ws:// or wss://", rawURL)
	}
	switch u.Scheme {
	case "tcp", "stomp", "stomp+ssl", "ssl", "ws", "wss":
		return u, nil
	}
	return nil, fmt.Errorf("broker URL %q: unknown scheme %q; want tcp://, stomp+ssl://, ws:// or wss://", rawURL, u.Scheme)
}

func dialBroker(ctx context.Context, u *url.URL, opts ConnectOptions) (io.ReadWriteCloser, error) {
	switch u.Scheme {
	case "ws", "wss":
		return dialWebSocket(ctx, u, opts)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "61613")
	}
	if u.Scheme == "stomp+ssl" || u.Scheme == "ssl" {
		d := tls.Dialer{Config: opts.TLS}
		return d.DialContext(ctx, "tcp", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

func dialWebSocket(ctx context.Context, u *url.URL, opts ConnectOptions) (io.ReadWriteCloser, error) {
	var dopts []DialOption
	if opts.Header != nil {
		dopts = append(dopts, WithHeader(opts.Header))
	}
	if opts.TLS != nil {
		d := defaultDialer()
		d.TLSClientConfig = opts.TLS
		dopts = append(dopts, WithDialer(&d))
	}
	return Dial(ctx, u.String(), dopts...)
}

// Subscribe is conn.Subscribe with a prefetch-count of GoStompPrefetch
// for client and client-individual acknowledgements, unless opts set one.
// Messages are then safe to Ack (or Nack) in the loop that receives them,
// however many wait in the queue.
func Subscribe(conn *stomp.Conn, destination string, ack stomp.AckMode, opts ...func(*frame.Frame) error) (*stomp.Subscription, error) {
	if ack != stomp.AckAuto {
		// Try the options on a scratch frame to see what they set.
		probe := frame.New(frame.SUBSCRIBE)
		for _, o := range opts {
			if o == nil {
				continue
			}
			if err := o(probe); err != nil {
				return nil, err
			}
		}
		if _, ok := probe.Header.Contains("prefetch-count"); !ok {
			opts = append(opts, stomp.SubscribeOpt.Header("prefetch-count", strconv.Itoa(GoStompPrefetch)))
		}
	}
	sub, err := conn.Subscribe(destination, ack, opts...)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", destination, err)
	}
	return sub, nil
}
