package main

import (
	"math"
	"strconv"
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
// the fleet applier, the serial baseline, the read-only floor and the fleet applier from the spool
// after the capture (each applying run checked against the source by the benchmark itself), the
// steady-load steps and the memory runs.
func TestBenchCEARunsEveryPart(t *testing.T) {
	t.Parallel()
	r := runFleetsync(t, "bench", "cea", "--quick", "--lanes", "4")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, row := range []string{
		"| fleet applier, 4 lanes | ", "| serial baseline (one write per event) | ", "| read-only floor (read and parse, no writes) | ",
		"| fleet applier, 4 lanes, from the spool | ",
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
	// A warm-up round and one measured round of four appliers, each reported on stderr, and the
	// capture before each run from the spool.
	if n := strings.Count(r.stderr, " refreshed; CPU s: "); n != 8 {
		t.Errorf("%d catch-up runs reported, want 8:\n%s", n, r.stderr)
	}
	if n := strings.Count(r.stderr, ": capture (oplog): "); n != 2 {
		t.Errorf("%d captures reported, want 2:\n%s", n, r.stderr)
	}
	checkCaptureReport(t, r.stdout)
}

// checkCaptureReport checks the capture's part of a bench cea report: the capture spooled the
// backlog's events, the applier from the spool applied as many, and every figure is a positive
// number (their sizes are the benchmark's to measure, not the test's).
func checkCaptureReport(t *testing.T, report string) {
	t.Helper()
	fleet := tableRow(t, report, "| fleet applier, 4 lanes | ")
	spooled := tableRow(t, report, "| fleet applier, 4 lanes, from the spool | ")
	capture := tableRow(t, report, "| applier.Capture (oplog) | ")
	if t.Failed() {
		return
	}
	events := fleet[1]
	if positive(t, "the fleet applier's events", events); spooled[1] != events {
		t.Errorf("the applier from the spool applied %s events, from the source %s", spooled[1], events)
	}
	// One spool entry per oplog entry, and each of the backlog's entries holds one event.
	if capture[1] != events {
		t.Errorf("the capture spooled %s entries, the applier applied %s events", capture[1], events)
	}
	for i, name := range map[int]string{2: "bytes", 3: "bytes per event", 5: "events/s"} {
		positive(t, "the capture's "+name, capture[i])
	}
	positive(t, "the applier's events/s from the spool", spooled[4])
	for _, line := range []string{
		"source's write rate (the backlog's 16 writers, as fast as the source takes them): ",
		"capture / source's write rate, events/s (median): ",
		"fleet applier from the spool / from the source, events/s (median over median): ",
		"spool bytes per event (capturedBytes / captured): ",
	} {
		_, rest, ok := strings.Cut(report, line)
		if !ok {
			t.Errorf("the report lacks %q:\n%s", line, report)
			continue
		}
		positive(t, line, strings.TrimSuffix(strings.Fields(rest)[0], "×"))
	}
	if _, rest, ok := strings.Cut(report, "spool bytes per event (capturedBytes / captured): "); ok {
		if got := strings.Fields(rest)[0]; got != capture[3] {
			t.Errorf("spool bytes per event %s, the capture's row says %s", got, capture[3])
		}
	}
}

// tableRow returns the cells of the report's table row that starts with prefix.
func tableRow(t *testing.T, report, prefix string) []string {
	t.Helper()
	for _, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(line, prefix) {
			var cells []string
			for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
				cells = append(cells, strings.TrimSpace(c))
			}
			return cells
		}
	}
	t.Errorf("the report has no row %q:\n%s", prefix, report)
	return nil
}

// positive fails unless s, a figure of the report, is a number above 0; a number followed by a
// parenthesis, like "0.45 (0.45–0.45)", counts as its first.
func positive(t *testing.T, what, s string) {
	t.Helper()
	fields := strings.Fields(s)
	if len(fields) == 0 {
		t.Errorf("%s: empty, not a positive number", what)
		return
	}
	f, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || !(f > 0) || math.IsInf(f, 0) {
		t.Errorf("%s: %q is not a positive number", what, s)
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
