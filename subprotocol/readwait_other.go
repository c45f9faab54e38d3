//go:build !linux

package subprotocol

import "net"

// waitReadable returns at once where peeking at a socket is not wired up;
// the caller then reads with its buffer held, as it would without waiting.
func waitReadable(net.Conn) error { return nil }
