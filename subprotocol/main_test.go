package subprotocol

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/stomp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serverFunc adapts a function to Server.
type serverFunc func(t broker.Transport)

func (f serverFunc) Serve(t broker.Transport) { f(t) }

// decodeAll reads tr until it fails, in reads of at most bufSize bytes,
// and passes each decoded frame to fn. It returns the error that ended it.
func decodeAll(tr broker.Transport, bufSize int, fn func(*stomp.Frame) error) error {
	dec := stomp.NewDecoder(stomp.Limits{MaxBodyBytes: 64 << 20})
	buf := make([]byte, bufSize)
	for {
		n, err := tr.Read(buf)
		if n > 0 {
			if ferr := dec.Feed(buf[:n], fn); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
}

// outbound encodes f the way the broker does: Binary is set when the body
// is not UTF-8.
func outbound(f *stomp.Frame) broker.Outbound {
	return broker.Outbound{
		Head:   stomp.AppendHead(nil, f, stomp.V12),
		Body:   append(slices.Clone(f.Body), 0),
		Binary: !utf8.Valid(f.Body),
	}
}

// echoServer writes every frame it reads straight back.
func echoServer() Server {
	return serverFunc(func(tr broker.Transport) {
		_ = decodeAll(tr, 4096, func(f *stomp.Frame) error {
			return tr.WriteFrames([]broker.Outbound{outbound(f)})
		})
	})
}

// startWS serves srv at /ws on a loopback test server and returns the
// ws:// URL. The server is closed when the test ends.
func startWS(t testing.TB, srv Server, opts WebSocketOptions) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ws", NewWebSocketHandler(srv, opts))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws"
}

// decodeOne decodes data, which must hold exactly one frame (heart-beat
// EOLs aside).
func decodeOne(t *testing.T, data []byte) *stomp.Frame {
	t.Helper()
	var got []*stomp.Frame
	dec := stomp.NewDecoder(stomp.Limits{MaxBodyBytes: 64 << 20})
	if err := dec.Feed(data, func(f *stomp.Frame) error { got = append(got, f); return nil }); err != nil {
		t.Fatalf("decoding %q: %v", trunc(data), err)
	}
	if len(got) != 1 {
		t.Fatalf("message %q holds %d frames, want 1", trunc(data), len(got))
	}
	return got[0]
}

func trunc(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// closeDuringRead blocks a Read on tr, then closes tr three times at once
// (repeated and concurrent calls must be harmless). It reports whether
// the Read ended, and what it returned.
func closeDuringRead(tr broker.Transport) (ended bool, readErr error) {
	result := make(chan error, 1)
	go func() {
		_, err := tr.Read(make([]byte, 16))
		result <- err
	}()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _ = tr.Close() })
	}
	wg.Wait()
	select {
	case err := <-result:
		return true, err
	case <-time.After(5 * time.Second):
		return false, nil
	}
}
