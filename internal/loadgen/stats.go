package loadgen

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxFirstErrors is how many failure messages Stats keeps; later failures are only counted.
const maxFirstErrors = 5

// Counts is a number per Kind, indexed by Kind.
type Counts [numKinds]int64

// Total is the sum over all kinds.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Stats is what a run has done so far, or in all.
type Stats struct {
	Elapsed time.Duration // since the first write was due
	Done    Counts        // writes the server acknowledged, by kind
	Errors  Counts        // writes that failed, by kind
	// Missed counts acknowledged updates, replacements and deletes that matched no document: another
	// client deleted it. Without other writers it stays 0.
	Missed      int64
	FirstErrors []string // the first few failures, in the order they happened
}

// Ops is the number of writes the server acknowledged.
func (s Stats) Ops() int64 { return s.Done.Total() }

// ErrorCount is the number of writes that failed.
func (s Stats) ErrorCount() int64 { return s.Errors.Total() }

// Rate is the achieved rate: acknowledged writes per second of Elapsed.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops()) / s.Elapsed.Seconds()
}

// String summarises the counts: "15012 ops (500.4/s): insert 3003, set 3001, ...; errors 0".
func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops (%.1f/s): ", s.Ops(), s.Rate())
	for k, n := range s.Done {
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", Kind(k), n)
	}
	fmt.Fprintf(&b, "; errors %d", s.ErrorCount())
	if s.ErrorCount() > 0 {
		var parts []string
		for k, n := range s.Errors {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", Kind(k), n))
			}
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if s.Missed > 0 {
		fmt.Fprintf(&b, "; missed %d (document already gone)", s.Missed)
	}
	return b.String()
}

// tally is the live, concurrently updated form of Stats.
type tally struct {
	done, errors [numKinds]atomic.Int64
	missed       atomic.Int64

	mu          sync.Mutex
	firstErrors []string
}

func (t *tally) failed(k Kind, msg string) {
	t.errors[k].Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.firstErrors) < maxFirstErrors {
		t.firstErrors = append(t.firstErrors, msg)
	}
}

func (t *tally) snapshot(elapsed time.Duration) Stats {
	s := Stats{Elapsed: elapsed, Missed: t.missed.Load()}
	for k := range s.Done {
		s.Done[k] = t.done[k].Load()
		s.Errors[k] = t.errors[k].Load()
	}
	t.mu.Lock()
	s.FirstErrors = append([]string(nil), t.firstErrors...)
	t.mu.Unlock()
	return s
}
