package broker

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// limitCounters counts refusals by limit name, for operators.
type limitCounters struct {
	m sync.Map // name → *atomic.Uint64
}

func (l *limitCounters) hit(name string) {
	v, ok := l.m.Load(name)
	if !ok {
		v, _ = l.m.LoadOrStore(name, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

func (l *limitCounters) snapshot() map[string]uint64 {
	out := map[string]uint64{}
	l.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// limitError is an ERROR message naming the limit that was exceeded.
func limitError(what string, max int) error {
	return errors.New(what + " limit reached (max " + strconv.Itoa(max) + ")")
}

// hostOf returns the IP part of a remote address, for per-IP limits.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
