package bench

import (
	"time"
)

// Schedule is the open-loop timetable: request k (from 0) is due at
// Start + k/Rate. Due times are computed from k, never accumulated, so a
// long run does not drift.
type Schedule struct {
	Start time.Time
	Rate  float64 // requests per second, > 0
}

// At returns when request k is due.
func (s Schedule) At(k int64) time.Time {
	return s.Start.Add(time.Duration(float64(k) * float64(time.Second) / s.Rate))
}

// Count returns how many requests are due strictly before Start+d.
func (s Schedule) Count(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	n := int64(d.Seconds() * s.Rate)
	// Guard against float rounding on either side of the boundary.
	for n > 0 && !s.At(n-1).Before(s.Start.Add(d)) {
		n--
	}
	for s.At(n).Before(s.Start.Add(d)) {
		n++
	}
	return n
}

// Clock is the time source of the load generator. The real one is
// wallClock; tests inject a fake to check the pacing without sleeping.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at or after t (immediately if t has passed) or
	// when done is closed.
	SleepUntil(t time.Time, done <-chan struct{})
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(t time.Time, done <-chan struct{}) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-done:
	}
}
