package workflow

import "github.com/dropgate/dropgate/clock/clocktest"

// fakeClock is a Clock that moves only when a test advances it.
type fakeClock = clocktest.Fake

var newFakeClock = clocktest.NewFake
