package broker

import "errors"

// Principal is an authenticated client: who it is and where it may go.
type Principal interface {
	// Name is the user name shown to operators and in logs.
	Name() string
	// CanRead reports whether the client may SUBSCRIBE to destination.
	CanRead(destination string) bool
	// CanWrite reports whether the client may SEND to destination.
	CanWrite(destination string) bool
}

// ErrAccessRefused is what a failed login or a forbidden destination gets.
var ErrAccessRefused = errors.New("access refused")

// errAccess names the refused action and destination, as operators and
// clients want to see it, without saying anything about credentials.
func errAccess(action, dest string) error {
	return errors.New("access refused: " + action + " " + dest)
}

// checkRead and checkWrite apply the session's permissions; a session with
// no principal (no authentication configured) may do anything.
func (s *session) checkRead(dest string) error {
	if s.principal != nil && !s.principal.CanRead(dest) {
		s.b.limits.hit("access-refused")
		return errAccess("read", dest)
	}
	return nil
}

func (s *session) checkWrite(dest string) error {
	if s.principal == nil || dest == s.lastWritable {
		return nil
	}
	if !s.principal.CanWrite(dest) {
		s.b.limits.hit("access-refused")
		return errAccess("write", dest)
	}
	// A producer mostly sends to one destination; the principal's
	// patterns, often regular expressions, need not run for every SEND.
	s.lastWritable = dest
	return nil
}
