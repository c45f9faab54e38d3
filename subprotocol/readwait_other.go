//go:build !linux

package subprotocol

import (
	"net"
	"time"
)

// waitReadable returns at once where peeking at a socket is not wired up;
// the caller then reads with its buffer held, as it would without waiting.
func waitReadable(net.Conn) error { return nil }

// waitReadableFor reports input at once, as waitReadable does.
func waitReadableFor(net.Conn, time.Duration) (bool, error) { return true, nil }
