package bolt

import (
	"testing"

	"go.uber.org/goleak"
)

// The store's writer runs in a goroutine of its own; every test must leave
// none behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
