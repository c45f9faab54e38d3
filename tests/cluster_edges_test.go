package tests

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/go-stomp/stomp/v3"
)

// TestClusterSendAsNodeCutOff: a persistent SEND that reaches a node just
// as it is cut off from the others must be answered, with a RECEIPT or an
// ERROR, within a few seconds, and once linked again the node must stop
// on SIGTERM like any other. Which node leads the queues' stream, where
// what is sent waits for its acknowledgement, cannot be seen from
// outside, so each node is cut off in turn until one leaves a SEND
// unanswered or all three have been.
func TestClusterSendAsNodeCutOff(t *testing.T) {
	c := startCluster(t)
	const clients = 3
	for k, p := range c.Nodes {
		var raws []*rawClient
		for range clients {
			r := dialRaw(t, p, tcpTransport)
			r.connect()
			raws = append(raws, r)
		}
		cutAt := time.Now()
		c.links.isolate(k, true)
		// At once, before the node's health check (every 2 s) can have
		// noticed.
		for i, r := range raws {
			r.send("SEND", "as cut off", "destination", "/queue/cl.cutting", "persistent", "true", "receipt", fmt.Sprint("r", i))
		}
		unanswered := 0
		for i, r := range raws {
			f, ended := frameOrEnd(r, 15*time.Second-time.Since(cutAt))
			switch {
			case ended:
				t.Logf("SEND %d on %s as it was cut off: the connection closed after %v", i, p.Name, time.Since(cutAt).Round(time.Millisecond))
			case f != nil:
				t.Logf("SEND %d on %s as it was cut off: %s %q after %v", i, p.Name, f.Command, f.Value("message"), time.Since(cutAt).Round(time.Millisecond))
			default:
				unanswered++
			}
		}
		if unanswered > 0 {
			code, why := readyz(p)
			t.Errorf("%d of %d persistent SENDs on %s got neither RECEIPT nor ERROR within 15s of the cut (meanwhile its /readyz said %d %q)", unanswered, clients, p.Name, code, why)
		}
		c.links.isolate(k, false)
		for _, q := range c.Nodes {
			waitReady(t, q, 200, 90*time.Second)
		}
		if unanswered > 0 {
			// The harness fails the test if it does not exit within 15 s.
			p.Stop(t)
			return
		}
	}
}

// TestClusterRoutesWithoutOwnURL: --nats-routes may leave out the node's
// own URL (its help says the own "may be among them"); the cluster is
// three nodes all the same, and any two of them must go on storing what
// is sent while the third is cut off, as with the own URL listed
// (TestCluster/CutOff). Each node is cut off in turn, since which nodes
// hold a stream's replicas cannot be seen from outside.
func TestClusterRoutesWithoutOwnURL(t *testing.T) {
	c := startClusterRoutes(t, false)
	for k, cut := range c.Nodes {
		rest := slices.Delete(slices.Clone(c.Nodes), k, k+1)
		c.links.isolate(k, true)
		waitReady(t, cut, 503, 30*time.Second)
		err := storeWithin(rest[0], 20*time.Second)
		c.links.isolate(k, false)
		if err != nil {
			replicas := "?"
			if m := regexp.MustCompile(`"joined the cluster" node=\S+ replicas=(\d+)`).FindStringSubmatch(rest[0].Logs()); m != nil {
				replicas = m[1]
			}
			t.Fatalf("with %s cut off, %s and %s refused every persistent SEND for 20s (last: %v); they joined with replicas=%s",
				cut.Name, rest[0].Name, rest[1].Name, err, replicas)
		}
		t.Logf("with %s cut off, %s stored a persistent SEND", cut.Name, rest[0].Name)
		for _, p := range c.Nodes {
			waitReady(t, p, 200, 90*time.Second)
		}
	}
}

// storeWithin tries a persistent SEND on p until it is receipted, for up
// to d; it returns the last error if none was.
func storeWithin(p *brokerProc, d time.Duration) error {
	var err error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var conn *stomp.Conn
		if conn, err = dialGoStomp(p); err != nil {
			continue
		}
		err = conn.Send("/queue/cl.own", "text/plain", []byte("stored?"), stomp.SendOpt.Header("persistent", "true"), stomp.SendOpt.Receipt)
		conn.MustDisconnect()
		if err == nil {
			return nil
		}
	}
	return err
}

// TestClusterHeldLongerThanAckWait: a message a live consumer holds
// unacknowledged stays its own, whatever --nats-ack-wait says; the flag
// is how long a dead node's messages wait. Here the ack wait is 3 s, as
// the kill tests use, and the message is held for 10 s while a second
// consumer on another node waits for work.
func TestClusterHeldLongerThanAckWait(t *testing.T) {
	c := startCluster(t, "--nats-ack-wait", killAckWait)
	const queue = "/queue/cl.held"
	a := goConnect(t, c.Nodes[1], tcpTransport)
	subA := subscribe(t, a, queue, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "1"))
	send(t, goConnect(t, c.Nodes[0], tcpTransport), queue, "held", stomp.SendOpt.Header("persistent", "true"))
	m := recv(t, subA)
	held := time.Now()
	b := goConnect(t, c.Nodes[2], tcpTransport)
	subB := subscribe(t, b, queue, stomp.AckClientIndividual, stomp.SubscribeOpt.Header("prefetch-count", "1"))
	select {
	case mb := <-subB.C:
		if mb.Err != nil {
			t.Fatalf("consumer on n3: %v", mb.Err)
		}
		t.Errorf("%q, held unacknowledged by a live consumer on n2, was delivered to n3 too after %v (redelivered:%s)",
			mb.Body, time.Since(held).Round(100*time.Millisecond), mb.Header.Get("redelivered"))
	case <-time.After(10 * time.Second):
	}
	if err := a.Ack(m); err != nil {
		t.Fatal(err)
	}
}
