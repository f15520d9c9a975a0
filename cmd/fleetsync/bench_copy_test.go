package main

import (
	"strings"
	"testing"
)

func TestBenchCopyBadFlagsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		command string
		says    string
	}{
		{[]string{"bench", "copy", "--workers", "0"}, "bench copy", "worker counts of 1 or more"},
		{[]string{"bench", "copy", "--workers", "1,two"}, "bench copy", "like 1,2,4"},
		{[]string{"bench", "copy", "--workers", "2,2"}, "bench copy", "lists 2 twice"},
		{[]string{"bench", "copy", "--runs", "0"}, "bench copy", "--runs must be 1 or more"},
		{[]string{"bench", "copy", "--docs", "0"}, "bench copy", "--docs must be 1 or more"},
		{[]string{"bench", "copy", "--frob"}, "bench copy", "flag provided but not defined: -frob"},
		{[]string{"bench", "naive-copy", "--cluster0", "mongodb://a:1/"}, "bench naive-copy", "--cluster0 and --cluster1 are required"},
		{[]string{"bench", "frob"}, "bench", `unknown benchmark "frob"; available: verify, copy`},
	} {
		assertOneLineError(t, runFleetsync(t, tc.args...), tc.command, tc.says)
	}
}

// TestBenchCopyRunsEveryConfiguration runs the whole benchmark on a tiny dataset: the naive copy and
// two fleet configurations, each checked document for document count by the benchmark itself.
func TestBenchCopyRunsEveryConfiguration(t *testing.T) {
	t.Parallel()
	r := runFleetsync(t, "bench", "copy", "--docs", "3000", "--collections", "3", "--runs", "1", "--workers", "1,2")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, row := range []string{"| naive | ", "| fleet, 1 worker | ", "| fleet, 2 workers | ", "time relative to naive"} {
		if !strings.Contains(r.stdout, row) {
			t.Errorf("the report lacks %q:\n%s", row, r.stdout)
		}
	}
	// One warm-up round and one measured round of three configurations, each reported on stderr.
	if n := strings.Count(r.stderr, "peak RSS"); n != 6 {
		t.Errorf("%d runs reported, want 6:\n%s", n, r.stderr)
	}
}
