//go:build !linux

package subprotocol

import "net"

// poller is where epoll is not wired up: nothing parks, and every quiet
// connection keeps its read loop waiting on its socket.
type poller struct{}

func newPoller() *poller { return &poller{} }

// parking is one socket's place in a poller.
type parking struct{}

func (p *poller) slot(net.Conn) parking { return parking{} }

func (s *parking) park(func()) bool { return false }

func (s *parking) cancel() {}
