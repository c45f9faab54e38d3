package main

import (
	"fmt"
	"time"

	"github.com/stampede-mq/stampede/broker"
	"github.com/stampede-mq/stampede/web"
)

// webAuth gives the admin console the broker's users: the same names and
// passcodes (or tokens) as STOMP, the built-in guest while nothing is
// configured, and never anonymous. The console itself requires the admin
// tag.
type webAuth struct {
	sec   *security
	delay time.Duration
}

// webAuthenticator is the console's web.Authenticator.
func (s *security) webAuthenticator(failedLoginDelay time.Duration) web.Authenticator {
	if failedLoginDelay <= 0 {
		failedLoginDelay = broker.DefaultOptions().FailedLoginDelay // as the broker does
	}
	return webAuth{sec: s, delay: failedLoginDelay}
}

// GuestOpen implements web.GuestReporter: the built-in guest is open
// while no users and no tokens are configured.
func (w webAuth) GuestOpen() bool {
	_, _, guest := w.sec.auth.Summary()
	return guest
}

// Authenticate implements web.Authenticator. A refusal is logged with its
// reason, never the password, and slowed down as STOMP logins are.
func (w webAuth) Authenticate(name, password, remoteAddr string) (web.User, error) {
	p, err := w.sec.auth.AuthenticateUser(name, password, remoteAddr)
	if err != nil {
		w.sec.log.Warn("console login refused", "remote", remoteAddr, "login", name, "reason", err)
		time.Sleep(w.delay)
		return web.User{}, fmt.Errorf("%w (%v)", web.ErrBadCredentials, err)
	}
	return web.User{Name: p.Name(), Admin: p.Admin()}, nil
}
