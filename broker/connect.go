package broker

import (
	"strconv"
	"strings"
	"time"

	"github.com/stampede-mq/stampede/stomp"
)

var supported = []stomp.Version{stomp.V12, stomp.V11, stomp.V10}

// negotiate picks the highest version both the client and the transport
// allow. A CONNECT without accept-version is a 1.0 client.
func negotiate(accept string, allowed []stomp.Version) (stomp.Version, bool) {
	offered := map[stomp.Version]bool{}
	if accept == "" {
		offered[stomp.V10] = true
	}
	for _, p := range strings.Split(accept, ",") {
		if v, ok := stomp.ParseVersion(strings.TrimSpace(p)); ok {
			offered[v] = true
		}
	}
	for _, v := range supported {
		if offered[v] && (len(allowed) == 0 || containsVersion(allowed, v)) {
			return v, true
		}
	}
	return 0, false
}

func containsVersion(vs []stomp.Version, v stomp.Version) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func versionList(vs []stomp.Version) string {
	if len(vs) == 0 {
		vs = supported
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

func (s *session) onConnect(f *stomp.Frame) error {
	c := s.c
	v, ok := negotiate(f.Value("accept-version"), c.info.Versions)
	if !ok {
		return s.refuseVersion(f)
	}
	cx, cy, err := parseHeartBeat(f.Value("heart-beat"))
	if err != nil {
		return s.protocolError(f, err.Error())
	}
	if err := s.login(f); err != nil {
		return s.protocolError(f, err.Error())
	}
	if id := f.Value("client-id"); id != "" {
		if len(id) > maxDestLen {
			return s.protocolError(f, "client-id longer than "+strconv.Itoa(maxDestLen)+" bytes")
		}
		if !s.b.claimClientID(id, s) {
			return s.protocolError(f, "client-id already connected: "+id)
		}
		s.clientID = id
	}
	c.version = v
	c.dec.SetVersion(v)
	// The server sends at the rate the client asked to receive and
	// expects the rate the client offered to send, each clamped to the
	// configured bounds.
	sx, sy := c.clamp(cy), c.clamp(cx)
	c.hbOut.Store(int64(sx))
	c.hbIn.Store(int64(sy))
	connected := stomp.New(stomp.CONNECTED,
		"version", v.String(),
		"heart-beat", strconv.FormatInt(sx.Milliseconds(), 10)+","+strconv.FormatInt(sy.Milliseconds(), 10),
		"server", serverName,
		"session", c.id)
	c.connected.Store(true)
	c.answer(connected)
	// From the CONNECT deadline to the heart-beats, if any.
	s.b.timers.set(c, c.checkTimers(time.Now().UnixNano()))
	return nil
}

// refuseVersion answers a CONNECT that offers no version this connection
// can speak.
func (s *session) refuseVersion(f *stomp.Frame) error {
	list := versionList(s.c.info.Versions)
	e := stomp.New(stomp.ERROR, "version", list, "message", "unsupported protocol version: supported versions are "+list, "content-type", "text/plain")
	if r, ok := f.Get("receipt"); ok {
		e.Add("receipt-id", r)
	}
	e.Body = []byte("Supported protocol versions are " + list + "\n")
	s.c.out.closeAfter(&Outbound{Head: stomp.AppendHead(nil, e, stomp.V10), Body: append(e.Body, 0)})
	return errStop
}

// login checks CONNECT's credentials when authentication is configured.
func (s *session) login(f *stomp.Frame) error {
	s.user = f.Value("login")
	auth := s.b.opts.Authenticate
	if auth == nil {
		return nil
	}
	p, err := auth(s.c.info, s.user, f.Value("passcode"))
	if err != nil {
		// Which part was wrong stays in the log, never in the ERROR, and
		// the secret goes nowhere.
		s.b.log.Warn("login refused", "conn", s.c.id, "remote", s.c.info.RemoteAddr, "login", s.user, "reason", err)
		s.b.limits.hit("login")
		time.Sleep(s.b.opts.FailedLoginDelay)
		return ErrAccessRefused
	}
	s.principal = p
	s.user = p.Name()
	return nil
}
