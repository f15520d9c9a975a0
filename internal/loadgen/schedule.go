package loadgen

import (
	"context"
	"time"
)

// maxScheduleLag is how far the schedule may fall behind before it skips the missed writes. Below it,
// brief stalls (the Go scheduler, a slow write holding a queue) are caught up unnoticed; above it the
// writes are not sent in a burst but skipped, and the achieved rate shows the loss.
const maxScheduleLag = 25 * time.Millisecond

// schedule is the pacing of a run: slot i is due at start + i/rate. Waiting for absolute due times
// rather than sleeping an interval after each write keeps timer lateness from adding up, so the
// average rate holds even when each single wake-up is a little late.
type schedule struct {
	start    time.Time
	interval float64 // nanoseconds between slots
	i        int64   // next slot
	timer    *time.Timer
}

func newSchedule(start time.Time, rate float64) *schedule {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &schedule{start: start, interval: float64(time.Second) / rate, timer: t}
}

func (s *schedule) due() time.Time {
	return s.start.Add(time.Duration(float64(s.i) * s.interval))
}

// wait blocks until the next slot is due. It returns false when ctx ends or the slot is at or after
// end (unless end is zero).
func (s *schedule) wait(ctx context.Context, end time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	due := s.due()
	if !end.IsZero() && !due.Before(end) {
		return false
	}
	now := time.Now()
	if now.Sub(due) > maxScheduleLag {
		// Fallen behind: skip the missed slots instead of catching up in a burst.
		if !end.IsZero() && !now.Before(end) {
			return false
		}
		s.start = s.start.Add(now.Sub(due))
	} else if d := due.Sub(now); d > 0 {
		s.timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-s.timer.C:
		}
	}
	s.i++
	return true
}

func (s *schedule) stop() { s.timer.Stop() }
