package broker

import (
	"errors"
	"slices"
	"strconv"
)

type ackMode uint8

const (
	ackAuto ackMode = iota
	ackClient
	ackIndividual
)

// errUnknownAck: no delivery of the subscription matches an ACK or NACK.
var errUnknownAck = errors.New("no unacknowledged message matches")

// delivery is a message handed to a subscription and not yet acked.
type delivery struct {
	ackID string
	m     *message
}

func makeAckID(subNum int, seq uint64) string {
	return strconv.Itoa(subNum) + "-" + strconv.FormatUint(seq, 10)
}

func findDelivery(ds []delivery, match func(*delivery) bool) int {
	for i := range ds {
		if match(&ds[i]) {
			return i
		}
	}
	return -1
}

// removeSettled removes ds[i], or ds[:i+1] when cumulative, moving
// whichever side of i is shorter. Acks mostly settle the oldest delivery,
// which then costs nothing, however many are outstanding.
func removeSettled(ds []delivery, i int, cumulative bool) []delivery {
	if cumulative {
		clear(ds[:i+1])
		return ds[i+1:]
	}
	if i < len(ds)/2 {
		copy(ds[1:i+1], ds[:i])
		ds[0] = delivery{}
		return ds[1:]
	}
	return slices.Delete(ds, i, i+1)
}
