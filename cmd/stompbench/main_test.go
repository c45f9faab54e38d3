package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every run must end its readers, publishers and tickers: goleak checks
// that nothing the tool or the in-process broker started is left over.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
