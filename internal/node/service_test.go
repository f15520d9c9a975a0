package node

import "testing"

func TestCatchupEstimate(t *testing.T) {
	for _, c := range []struct {
		lag  int64
		rate float64
		want int64 // -1: unknown (nil)
	}{
		{0, 0, 0},     // caught up, whatever the rate
		{0, 5, 0},     // caught up
		{60, 4, 20},   // gains 3 s per second: 60 s of backlog in 20 s
		{10, 1.5, 20}, // gains half a second per second
		{7, 3, 4},     // 3.5 rounds up
		{30, 1, -1},   // keeping pace, never catching up
		{30, 0.5, -1}, // falling behind
		{30, 0, -1},   // no rate measured yet
	} {
		got := catchupEstimate(c.lag, c.rate)
		switch {
		case c.want < 0 && got != nil:
			t.Errorf("lag %d rate %g: estimate %d, want unknown", c.lag, c.rate, *got)
		case c.want >= 0 && (got == nil || *got != c.want):
			t.Errorf("lag %d rate %g: estimate %v, want %d", c.lag, c.rate, got, c.want)
		}
	}
}
