// Command relay is the fan-out floor: the least a STOMP-over-WebSocket
// server can do to pass a topic message from one client to many, run so
// the benchmark scripts in tests/bench can tell how much of a broker's
// fan-out latency is the machine's own (system calls, wake-ups, the
// load tool) and how much is the broker's.
//
// It is not a broker. It answers CONNECT, SUBSCRIBE (with its RECEIPT),
// UNSUBSCRIBE and DISCONNECT, and writes each SEND as a MESSAGE to every
// subscriber of its destination straight from the publisher's reading
// goroutine: no queue, no hand-off to another goroutine, one WebSocket
// message and one system call per subscriber. It keeps nothing, acks
// nothing, checks no limits and serves only topics, so it is only good
// for the fanout scenarios.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-stomp/stomp/v3/frame"
	"github.com/gorilla/websocket"
	"github.com/stampede-mq/stampede/tests/bench/wsstream"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:61616", "HTTP address to serve STOMP over WebSocket on, at /ws")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "relay: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("relay: %v", err)
	}
	r := &relay{
		subs: map[string][]*subscription{},
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"v12.stomp", "v11.stomp", "v10.stomp"},
			CheckOrigin:  func(*http.Request) bool { return true },
		},
		escaper: strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r", ":", "\\c"),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", r.serve)
	log.Printf("relay: STOMP over WebSocket on ws://%s/ws", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		log.Printf("relay: %v, exiting", <-sig)
		os.Exit(0)
	}()
	if err := http.Serve(ln, mux); err != nil {
		log.Fatalf("relay: %v", err)
	}
}

// relay holds the subscriptions of every connection, by destination.
type relay struct {
	mu       sync.RWMutex
	subs     map[string][]*subscription
	msgSeq   atomic.Uint64
	upgrader websocket.Upgrader
	escaper  *strings.Replacer // header values, as STOMP 1.2 escapes them
}

type subscription struct {
	c    *client
	id   string
	dest string
}

// client is one WebSocket connection. Any publisher's goroutine may write
// to it, one at a time.
type client struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

// writeTimeout bounds a write to a subscriber that stopped reading.
const writeTimeout = 5 * time.Second

func (c *client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (r *relay) serve(w http.ResponseWriter, req *http.Request) {
	ws, err := r.upgrader.Upgrade(w, req, nil)
	if err != nil {
		return
	}
	c := &client{ws: ws}
	mine := map[string]*subscription{}
	defer func() {
		for _, s := range mine {
			r.unsubscribe(s)
		}
		ws.Close()
	}()
	fr := frame.NewReader(wsstream.New(ws))
	for {
		f, err := fr.Read()
		if err != nil {
			return
		}
		if f == nil {
			continue // a heart-beat
		}
		if !r.handle(c, f, mine) {
			return
		}
	}
}

// handle acts on one frame; it reports whether the connection goes on.
func (r *relay) handle(c *client, f *frame.Frame, mine map[string]*subscription) bool {
	switch f.Command {
	case frame.CONNECT, frame.STOMP:
		return c.write([]byte("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\x00")) == nil
	case frame.SUBSCRIBE:
		s := &subscription{c: c, id: f.Header.Get(frame.Id), dest: f.Header.Get(frame.Destination)}
		if old := mine[s.id]; old != nil {
			r.unsubscribe(old)
		}
		mine[s.id] = s
		r.mu.Lock()
		r.subs[s.dest] = append(r.subs[s.dest], s)
		r.mu.Unlock()
	case frame.UNSUBSCRIBE:
		if s := mine[f.Header.Get(frame.Id)]; s != nil {
			delete(mine, s.id)
			r.unsubscribe(s)
		}
	case frame.SEND:
		r.fanOut(f)
	case frame.DISCONNECT:
		r.receipt(c, f)
		return false
	}
	return r.receipt(c, f)
}

// receipt answers a frame's receipt header, if any.
func (r *relay) receipt(c *client, f *frame.Frame) bool {
	id, ok := f.Header.Contains(frame.Receipt)
	if !ok {
		return true
	}
	return c.write([]byte("RECEIPT\nreceipt-id:"+r.escaper.Replace(id)+"\n\n\x00")) == nil
}

// fanOut writes f as a MESSAGE to each subscriber of its destination, in
// turn, from this goroutine. A subscriber whose write fails is left to its
// own reading goroutine to clean up.
func (r *relay) fanOut(f *frame.Frame) {
	dest := f.Header.Get(frame.Destination)
	r.mu.RLock()
	subs := r.subs[dest]
	r.mu.RUnlock()
	if len(subs) == 0 {
		return
	}
	id := strconv.FormatUint(r.msgSeq.Add(1), 10)
	tail := "\nmessage-id:" + id + "\ndestination:" + r.escaper.Replace(dest) +
		"\ncontent-length:" + strconv.Itoa(len(f.Body)) + "\n\n"
	var b []byte
	for _, s := range subs {
		b = append(b[:0], "MESSAGE\nsubscription:"...)
		b = append(b, r.escaper.Replace(s.id)...)
		b = append(b, tail...)
		b = append(b, f.Body...)
		b = append(b, 0)
		s.c.write(b)
	}
}

func (r *relay) unsubscribe(s *subscription) {
	r.mu.Lock()
	defer r.mu.Unlock()
	subs := r.subs[s.dest]
	for i, x := range subs {
		if x == s {
			// A new slice: fanOut may be ranging over the old one.
			r.subs[s.dest] = append(subs[:i:i], subs[i+1:]...)
			break
		}
	}
	if len(r.subs[s.dest]) == 0 {
		delete(r.subs, s.dest)
	}
}
