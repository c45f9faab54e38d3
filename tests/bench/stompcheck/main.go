// Command stompcheck tells whether a broker is ready for a benchmark run:
// it opens one STOMP connection (tcp://HOST:PORT or ws://HOST:PORT/PATH),
// and with -roundtrip subscribes to a topic and a queue and sends one
// message to each, waiting for both to come back. peers.sh runs it after
// starting each broker; it exits 0 when everything worked.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/tests/bench/wsstream"
)

func main() {
	rawURL := flag.String("url", "", "tcp://HOST:PORT or ws://HOST:PORT/PATH")
	login := flag.String("login", "guest", "CONNECT login")
	passcode := flag.String("passcode", "guest", "CONNECT passcode")
	vhost := flag.String("vhost", "/", "CONNECT host header")
	protocols := flag.String("subprotocols", "v12.stomp,v11.stomp,v10.stomp", "WebSocket subprotocols offered, comma-separated")
	roundtrip := flag.Bool("roundtrip", false, "also send one message through a topic and a queue and wait for it")
	timeout := flag.Duration("timeout", 10*time.Second, "give up after this long")
	flag.Parse()
	if *rawURL == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := check(ctx, *rawURL, *login, *passcode, *vhost, strings.Split(*protocols, ","), *roundtrip, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "stompcheck:", err)
		os.Exit(1)
	}
}

func dial(ctx context.Context, rawURL string, protocols []string) (io.ReadWriteCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "tcp":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 10 * time.Second}
		c, resp, err := d.DialContext(ctx, rawURL, nil)
		if err != nil {
			if resp != nil {
				return nil, fmt.Errorf("%w: %s", err, resp.Status)
			}
			return nil, err
		}
		if p := c.Subprotocol(); p == "" || !slices.Contains(protocols, p) {
			c.Close()
			return nil, fmt.Errorf("server chose subprotocol %q, offered %v", p, protocols)
		}
		return wsstream.New(c), nil
	}
	return nil, fmt.Errorf("unsupported scheme %q: want tcp:// or ws://", u.Scheme)
}

func check(ctx context.Context, rawURL, login, passcode, vhost string, protocols []string, roundtrip bool, timeout time.Duration) error {
	nc, err := dial(ctx, rawURL, protocols)
	if err != nil {
		return err
	}
	// go-stomp's Connect has no context: a deadline on the whole check
	// closes the connection instead.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	conn, err := stomp.Connect(nc,
		stomp.ConnOpt.Login(login, passcode),
		stomp.ConnOpt.Host(vhost),
		stomp.ConnOpt.HeartBeat(0, 0),
		stomp.ConnOpt.ReadChannelCapacity(16),
		stomp.ConnOpt.Logger(quiet{}),
	)
	if err != nil {
		return fmt.Errorf("CONNECT: %w", err)
	}
	defer conn.Disconnect()
	fmt.Printf("connected to %s: STOMP %s, server %q\n", rawURL, conn.Version(), conn.Server())
	if !roundtrip {
		return nil
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "stompcheck." + hex.EncodeToString(b[:])
	for _, dest := range []string{"/topic/" + name, "/queue/" + name} {
		// Topics auto-ack, as fanout subscribers do; queues ack each
		// message, as the queue scenario's consumers do.
		mode := stomp.AckAuto
		if strings.HasPrefix(dest, "/queue/") {
			mode = stomp.AckClientIndividual
		}
		sub, err := conn.Subscribe(dest, mode)
		if err != nil {
			return fmt.Errorf("SUBSCRIBE %s: %w", dest, err)
		}
		// A topic subscription is only in place once the broker has read
		// the SUBSCRIBE; a receipted SEND after it proves that (frames on
		// one connection are handled in order).
		body := "hello " + dest
		if err := conn.Send(dest, "text/plain", []byte(body), stomp.SendOpt.Receipt); err != nil {
			return fmt.Errorf("SEND %s: %w", dest, err)
		}
		select {
		case m, ok := <-sub.C:
			if !ok || m == nil {
				return fmt.Errorf("%s: subscription closed", dest)
			}
			if m.Err != nil {
				return fmt.Errorf("%s: %w", dest, m.Err)
			}
			if string(m.Body) != body {
				return fmt.Errorf("%s: got %q, want %q", dest, m.Body, body)
			}
			if mode != stomp.AckAuto {
				if err := conn.Ack(m); err != nil {
					return fmt.Errorf("ACK %s: %w", dest, err)
				}
			}
			fmt.Printf("round trip through %s: ok (message-id %s)\n", dest, m.Header.Get(frame.MessageId))
		case <-time.After(timeout):
			return errors.New(dest + ": no MESSAGE")
		}
		// No UNSUBSCRIBE: go-stomp's server never answers the receipt the
		// client waits for; the DISCONNECT drops the subscriptions.
	}
	return nil
}

// quiet drops go-stomp's client log: it reports the connection closing
// under a subscription as an error, which it is not here.
type quiet struct{}

func (quiet) Debugf(string, ...interface{})   {}
func (quiet) Infof(string, ...interface{})    {}
func (quiet) Warningf(string, ...interface{}) {}
func (quiet) Errorf(string, ...interface{})   {}
func (quiet) Debug(string)                    {}
func (quiet) Info(string)                     {}
func (quiet) Warning(string)                  {}
func (quiet) Error(string)                    {}
