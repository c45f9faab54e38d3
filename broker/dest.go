package broker

import (
	"errors"
	"strconv"
	"strings"
)

const (
	topicPrefix     = "/topic/"
	queuePrefix     = "/queue/"
	tempQueuePrefix = "/temp-queue/"
	// tempQueueNamePrefix begins the queue names temporary queues get.
	tempQueueNamePrefix = queuePrefix + "tmp."
	maxDestLen          = 255
)

func isQueue(dest string) bool { return strings.HasPrefix(dest, queuePrefix) }

type destKind uint8

const (
	kindTopic destKind = iota + 1
	kindQueue
	kindTempQueue
)

var errUnknownDestination = errors.New("unknown destination")

// parseDestination checks a destination and tells its kind. Wildcards are
// allowed only in topic subscriptions.
func parseDestination(dest string, subscribe bool) (destKind, error) {
	if len(dest) > maxDestLen {
		return 0, errors.New("destination longer than 255 bytes")
	}
	var kind destKind
	var name string
	switch {
	case strings.HasPrefix(dest, topicPrefix):
		kind, name = kindTopic, dest[len(topicPrefix):]
	case strings.HasPrefix(dest, queuePrefix):
		kind, name = kindQueue, dest[len(queuePrefix):]
	case strings.HasPrefix(dest, tempQueuePrefix):
		kind, name = kindTempQueue, dest[len(tempQueuePrefix):]
	default:
		return 0, errUnknownDestination
	}
	if name == "" {
		return 0, errors.New("destination has no name")
	}
	wild := subscribe && kind == kindTopic
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-', c == '/':
		case (c == '*' || c == '#') && wild:
		default:
			return 0, errors.New("invalid character in destination name")
		}
	}
	if wild {
		for _, w := range strings.Split(name, ".") {
			if strings.ContainsAny(w, "*#") && len(w) != 1 {
				return 0, errors.New("a wildcard must be a whole word")
			}
		}
	}
	return kind, nil
}

func destinationError(dest string, err error) error {
	return errors.New(err.Error() + ": " + strconv.Quote(dest))
}

// isTemp tells a subscription to a temporary queue: by its /temp-queue/
// name, or by the name the broker gave it.
func (sub *subscription) isTemp() bool {
	return sub.kind == kindTempQueue || strings.HasPrefix(sub.queue, tempQueueNamePrefix)
}
