package tests

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
)

// routeLinks carry a test cluster's NATS routes: one TCP proxy per ordered
// pair of nodes, the one node i dials to reach node j, so that cutting a
// node off is closing the links that touch it while the others keep
// theirs.
//
// NATS servers tell each other the route addresses they know and connect
// to those they have no route to yet ("implicit routes"), which would go
// around the proxies. So every node advertises, with
// --nats-cluster-advertise, an address where connections are refused:
// the routes each node lists (every other node's link) are then
// the only ones there are.
type routeLinks struct {
	ports []int // each node's own route port
	links map[[2]int]*routeLink
	sinks []*routeSink
}

func newRouteLinks(t testing.TB, ports []int) *routeLinks {
	t.Helper()
	rl := &routeLinks{ports: ports, links: make(map[[2]int]*routeLink)}
	for i := range ports {
		rl.sinks = append(rl.sinks, newRouteSink(t))
		for j := range ports {
			if i != j {
				rl.links[[2]int{i, j}] = newRouteLink(t, fmt.Sprintf("127.0.0.1:%d", ports[j]))
			}
		}
	}
	t.Cleanup(func() {
		for _, l := range rl.links {
			l.close()
		}
		for _, s := range rl.sinks {
			s.close()
		}
	})
	return rl
}

// routesFrom lists the route URLs node i is given: its links to the
// others, and with listOwn its own route port, which it recognises as
// itself, as a list shared by every node would have it.
func (rl *routeLinks) routesFrom(i int, listOwn bool) []string {
	var out []string
	for j := range rl.sinks {
		if l := rl.links[[2]int{i, j}]; l != nil {
			out = append(out, "nats://"+l.ln.Addr().String())
		} else if listOwn {
			out = append(out, fmt.Sprintf("nats://127.0.0.1:%d", rl.ports[j]))
		}
	}
	return out
}

// advertise is the route address node i tells the others about.
func (rl *routeLinks) advertise(i int) string { return rl.sinks[i].addr }

// isolate cuts node i off from the others (cut true) or links it again.
func (rl *routeLinks) isolate(i int, cut bool) {
	for pair, l := range rl.links {
		if pair[0] == i || pair[1] == i {
			l.setCut(cut)
		}
	}
}

// routeLink is a TCP proxy to one node's route port. While cut it closes
// what it carries and every connection made to it, as a broken network
// would, from both nodes' point of view.
type routeLink struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newRouteLink(t testing.TB, target string) *routeLink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &routeLink{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	l.wg.Add(1)
	go l.accept()
	return l
}

func (l *routeLink) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.carry(c)
		}()
	}
}

// carry joins an accepted connection to the target until either side
// ends or the link is cut.
func (l *routeLink) carry(c net.Conn) {
	if !l.track(c) {
		c.Close()
		return
	}
	defer l.untrackClose(c)
	up, err := net.Dial("tcp", l.target)
	if err != nil {
		return
	}
	if !l.track(up) {
		up.Close()
		return
	}
	defer l.untrackClose(up)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	// Closing both ends stops the other copy too.
	c.Close()
	up.Close()
	<-done
}

// track registers c, unless the link is cut.
func (l *routeLink) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *routeLink) untrackClose(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

func (l *routeLink) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
	}
}

func (l *routeLink) close() {
	l.ln.Close()
	l.setCut(true)
	l.wg.Wait()
}

// routeSink is the address a node advertises for implicit routes: a
// loopback port the test holds bound but never listens on, so that a
// connection there is refused at once, and NATS does not retry an
// implicit route it could not connect. (One that accepted and closed
// instead would have the servers reconnect to it for ever.)
type routeSink struct {
	fd   int
	addr string
}

func newRouteSink(t testing.TB) *routeSink {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	return &routeSink{fd: fd, addr: fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)}
}

func (s *routeSink) close() { syscall.Close(s.fd) }
