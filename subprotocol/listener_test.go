package subprotocol

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestLimitPerIP: past the bound an address's connections are closed at
// once; other addresses are not affected, and a closed connection gives
// its place back.
func TestLimitPerIP(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitPerIP(raw, 2, nil)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accept := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}

	dial("127.0.0.1")
	first := accept()
	dial("127.0.0.1")
	accept()
	if !closed(dial("127.0.0.1")) {
		t.Fatal("a third connection from one address stayed open")
	}
	dial("127.0.0.2")
	accept()
	if _, ok := first.(syscall.Conn); !ok {
		t.Error("a counted connection hides its socket")
	}
	first.Close()
	first.Close() // gives its place back once only
	dial("127.0.0.1")
	accept()
	if !closed(dial("127.0.0.1")) {
		t.Fatal("a closed connection gave back more than its place")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
