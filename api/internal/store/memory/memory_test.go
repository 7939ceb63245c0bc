package memory_test

import (
	"testing"

	"github.com/devicegate/devicegate/api/internal/store"
	"github.com/devicegate/devicegate/api/internal/store/memory"
	"github.com/devicegate/devicegate/api/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(_ *testing.T, now store.Clock) store.Store { return memory.New(now) })
}

func TestCounterConformance(t *testing.T) {
	storetest.RunCounter(t, func(_ *testing.T, now store.Clock) store.Counter { return memory.New(now) })
}
