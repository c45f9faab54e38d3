package store_test

import (
	"testing"

	"github.com/stampede-mq/stampede/store"
	"github.com/stampede-mq/stampede/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return store.NewMemory() })
}
