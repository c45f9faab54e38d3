package broker

import (
	"testing"
	"time"
)

// FuzzSession feeds arbitrary bytes, split at arbitrary points, into a
// connected session. Whatever arrives, the broker must not panic, must end
// the session once the connection closes, and must keep serving others.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"SUBSCRIBE\nid:1\ndestination:/queue/a\nack:client\n\n\x00SEND\ndestination:/queue/a\nreceipt:r\n\nhi\x00",
		"SUBSCRIBE\nid:1\ndestination:/topic/a.#\n\n\x00SEND\ndestination:/topic/a.b\n\nx\x00",
		"BEGIN\ntransaction:t\n\n\x00SEND\ndestination:/queue/q\ntransaction:t\n\n\x00COMMIT\ntransaction:t\n\n\x00",
		"SEND\ndestination:/queue/s\nreply-to:/temp-queue/r\n\n\x00SUBSCRIBE\nid:2\ndestination:/temp-queue/r\n\n\x00",
		"SUBSCRIBE\nid:1\ndestination:/queue/n\nack:client-individual\n\n\x00SEND\ndestination:/queue/n\n\n\x00NACK\nid:1-1\n\n\x00ACK\nid:1-2\n\n\x00",
		"SEND\ndestination:/queue/p\npriority:9\nexpiration:0\ncontent-length:3\n\na\x00b\x00",
		"UNSUBSCRIBE\nid:1\n\n\x00DISCONNECT\nreceipt:z\n\n\x00",
		"\n\r\n\nSEND\ndestination:/queue/a\\c\n\n\x00",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i*7+1))
	}
	b := newBroker(f, Options{MaxRedeliveries: 2, ConnectTimeout: time.Minute})
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		c := dial(t, b)
		c.ft.discard = true
		c.write("CONNECT\naccept-version:1.2\n\n\x00")
		step := int(split%61) + 1
		for i := 0; i < len(data); i += step {
			select {
			case c.ft.in <- data[i:min(i+step, len(data))]:
			case <-c.done:
				i = len(data) // the broker closed it: fine
			}
		}
		c.close()
		// The broker still serves a well-behaved client.
		ok := connect(t, b)
		ok.send("SEND", "destination", "/queue/health", "receipt", "r")
		ok.expectReceipt()
		ok.close()
	})
}
