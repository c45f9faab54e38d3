package subprotocol

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
	"github.com/go-stomp/stomp/v3/frame"
	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/store"
)

// quietLogger keeps go-stomp from printing to stdout.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any)   {}
func (quietLogger) Infof(string, ...any)    {}
func (quietLogger) Warningf(string, ...any) {}
func (quietLogger) Errorf(string, ...any)   {}
func (quietLogger) Debug(string)            {}
func (quietLogger) Info(string)             {}
func (quietLogger) Warning(string)          {}
func (quietLogger) Error(string)            {}

// startBroker runs a broker with its default options (prefetch 1000) over
// TCP and WebSocket, and returns a tcp:// and a ws:// URL for it.
func startBroker(t *testing.T) (tcpURL, wsURL string) {
	t.Helper()
	b, err := broker.New(broker.DefaultOptions(), store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = ServeTCP(ln, b, TCPOptions{})
	}()
	mux := http.NewServeMux()
	mux.Handle("/ws", NewWebSocketHandler(b, WebSocketOptions{}))
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ln.Close()
		<-served
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		ts.Close()
	})
	return "tcp://" + ln.Addr().String(), "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

func connect(t *testing.T, url string) *stomp.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Connect(ctx, url, ConnectOptions{Options: []func(*stomp.Conn) error{stomp.ConnOpt.Logger(quietLogger{})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Disconnect() })
	return conn
}

// TestSubscribeDrainsBacklog drains a queue of thousands of messages
// with acknowledgements sent from the receive loop, the pattern that
// hangs go-stomp with the broker's default prefetch (see
// tests/gostomp_hang_test.go), over both transports.
func TestSubscribeDrainsBacklog(t *testing.T) {
	const n = 3000
	tcpURL, wsURL := startBroker(t)
	for _, url := range []string{tcpURL, wsURL} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			pub := connect(t, url)
			for i := range n {
				if err := pub.Send("/queue/backlog", "application/json", []byte(`{"n":`+strconv.Itoa(i)+`}`)); err != nil {
					t.Fatal(err)
				}
			}
			if err := pub.Send("/queue/backlog-barrier", "", nil, stomp.SendOpt.Receipt); err != nil {
				t.Fatal(err)
			}
			conn := connect(t, url)
			sub, err := Subscribe(conn, "/queue/backlog", stomp.AckClientIndividual)
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.After(30 * time.Second)
			for i := range n {
				select {
				case m := <-sub.C:
					if m.Err != nil {
						t.Fatal(m.Err)
					}
					if want := `{"n":` + strconv.Itoa(i) + `}`; string(m.Body) != want {
						t.Fatalf("message %d: %s, want %s", i, m.Body, want)
					}
					if err := conn.Ack(m); err != nil {
						t.Fatal(err)
					}
				case <-deadline:
					t.Fatalf("received %d of %d messages in 30 s", i, n)
				}
			}
		})
	}
}

// TestSubscribePrefetch checks that Subscribe asks for GoStompPrefetch
// unless told otherwise.
func TestSubscribePrefetch(t *testing.T) {
	tcpURL, _ := startBroker(t)
	pub := connect(t, tcpURL)
	for _, tc := range []struct {
		name string
		opts []func(*frame.Frame) error
		want int
	}{
		{"default", nil, GoStompPrefetch},
		{"given", []func(*frame.Frame) error{stomp.SubscribeOpt.Header("prefetch-count", "5")}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := "/queue/prefetch." + tc.name
			for i := range 40 {
				if err := pub.Send(dest, "", []byte(strconv.Itoa(i)), stomp.SendOpt.Receipt); err != nil {
					t.Fatal(err)
				}
			}
			conn := connect(t, tcpURL)
			sub, err := Subscribe(conn, dest, stomp.AckClientIndividual, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			quiet := time.NewTimer(time.Second)
			for {
				select {
				case <-sub.C:
					got++
					continue
				case <-quiet.C:
				}
				break
			}
			if got != tc.want {
				t.Errorf("%d messages delivered unacknowledged, want %d", got, tc.want)
			}
		})
	}
}

func TestConnectURLs(t *testing.T) {
	for _, tc := range []struct{ in, scheme, host string }{
		{"tcp://localhost:61613", "tcp", "localhost:61613"},
		{"localhost:61613", "tcp", "localhost:61613"},
		{"stomp+ssl://broker.example.com:61614", "stomp+ssl", "broker.example.com:61614"},
		{"ws://127.0.0.1:8080/ws", "ws", "127.0.0.1:8080"},
		{"wss://broker.example.com/ws", "wss", "broker.example.com"},
	} {
		u, err := parseBrokerURL(tc.in)
		if err != nil || u.Scheme != tc.scheme || u.Host != tc.host {
			t.Errorf("parseBrokerURL(%q) = %v, %v; want %s://%s", tc.in, u, err, tc.scheme, tc.host)
		}
	}
	for _, bad := range []string{"", "http://localhost:8080", "localhost"} {
		if _, err := parseBrokerURL(bad); err == nil {
			t.Errorf("parseBrokerURL(%q) accepted", bad)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// A listener that never answers CONNECT: ctx must end the wait.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	if _, err := Connect(ctx, "tcp://"+ln.Addr().String(), ConnectOptions{}); err == nil {
		t.Error("Connect to a silent listener succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect took %v past its context", d)
	}
}
