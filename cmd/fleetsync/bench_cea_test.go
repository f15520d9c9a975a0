package main

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

func TestBenchCEABadFlagsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--backlog", "0"}, "--backlog must be 1 or more events"},
		{[]string{"--runs", "0"}, "--runs must be 1 or more"},
		{[]string{"--rates", "500,fast"}, "like 500,1000,2000"},
		{[]string{"--rates", "500,500"}, "lists 500 twice"},
		{[]string{"--step-duration", "2s"}, "longer than the 2s warm-up"},
		{[]string{"--memory-backlog", "-1"}, "--memory-backlog must be 0"},
		{[]string{"--lanes", "0"}, "--lanes must be 1 or more"},
		{[]string{"--quick", "--runs", "0"}, "--runs must be 1 or more"}, // explicit flags win over --quick
		{[]string{"--frob"}, "flag provided but not defined: -frob"},
	} {
		assertOneLineError(t, runFleetsync(t, append([]string{"bench", "cea"}, tc.args...)...), "bench cea", tc.says)
	}
}

// TestBenchCEARunsEveryPart runs the whole benchmark at --quick sizes: the catch-up of a backlog by
// the fleet applier, the serial baseline and the read-only floor (each applying run checked against
// the source by the benchmark itself), the steady-load steps and the memory runs.
func TestBenchCEARunsEveryPart(t *testing.T) {
	t.Parallel()
	r := runFleetsync(t, "bench", "cea", "--quick", "--lanes", "4")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, row := range []string{
		"| fleet applier, 4 lanes | ", "| serial baseline (one write per event) | ", "| read-only floor (read and parse, no writes) | ",
		"fleet applier / serial baseline, events/s (median over median): ",
		"| 200 | ", "| 400 | ", "highest rate that held (max lag < 2 s): ",
		// The memory runs' backlogs: their writes, and the create of the collection they write
		// to, which the sandbox logs as MongoDB does (mongoJavaServerLogsNoDDL).
		"| 501 | ", "| 5001 | ", "peak RSS at 5000 events − at 500 events",
	} {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("the report lacks %q:\n%s", row, r.stdout)
		}
	}
	// A warm-up round and one measured round of three appliers, each reported on stderr.
	if n := strings.Count(r.stderr, " refreshed; CPU s: "); n != 6 {
		t.Errorf("%d catch-up runs reported, want 6:\n%s", n, r.stderr)
	}
}

func TestBenchCEAStalenessIsTheTimeSinceTheSourceWasLastAtTheCheckpoint(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ts := func(s uint32) primitive.Timestamp { return primitive.Timestamp{T: s, I: 1} }
	seen := []sourceSample{
		{at: t0, latest: ts(100)},
		{at: t0.Add(200 * time.Millisecond), latest: ts(101)},
		{at: t0.Add(400 * time.Millisecond), latest: ts(102)},
	}
	now := seen[2].at
	for _, c := range []struct {
		pos  primitive.Timestamp
		want time.Duration
	}{
		{ts(102), 0},                      // at the source's latest: not stale
		{ts(101), 200 * time.Millisecond}, // the source was last there 200 ms ago
		{ts(100), 400 * time.Millisecond},
		{primitive.Timestamp{T: 101, I: 5}, 200 * time.Millisecond}, // between two samples: the earlier one bounds it
		{ts(99), 400 * time.Millisecond},                            // behind the step's start: at least that stale
	} {
		if got := staleness(seen, c.pos, now); got != c.want {
			t.Errorf("checkpoint %v: staleness %s, want %s", c.pos, got, c.want)
		}
	}
}
