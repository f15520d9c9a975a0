package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestBenchCommitBadFlagsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--docs", "0"}, "--docs must be 1 or more"},
		{[]string{"--rate", "-1"}, "--rate must be 0 (no writes) or more"},
		{[]string{"--nodes", "0"}, "--nodes must be 1 or more"},
		{[]string{"--steady", "-1s"}, "--steady cannot be negative"},
		{[]string{"--steady", "ten"}, `invalid value "ten" for flag -steady`},
		{[]string{"--runs", "0"}, "--runs must be 1 or more"},
		{[]string{"--quick", "--runs", "0"}, "--runs must be 1 or more"}, // explicit flags win over --quick
		{[]string{"--frob"}, "flag provided but not defined: -frob"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		assertOneLineError(t, runFleetsync(t, append([]string{"bench", "commit"}, tc.args...)...), "bench commit", tc.says)
	}
}

// TestBenchCommitRunsEveryConfiguration runs the whole benchmark at --quick sizes: for each
// configuration a sandbox of its own, a fleet of two node processes syncing under load, and at the
// load's stop the catch-up alone or a commit with the verifier off or on, each run checked EQUAL by
// the benchmark itself before its numbers count.
func TestBenchCommitRunsEveryConfiguration(t *testing.T) {
	t.Parallel()
	r := runFleetsync(t, "bench", "commit", "--quick")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	num := `[0-9]+\.[0-9]+`
	for _, row := range []string{
		`\| baseline: catch-up only \(no commit\) \| 1 \| ` + num + ` \| ` + num + ` \| – \| \d+ \| [1-9]\d* \| – \| – \|`,
		`\| commit, verification off \| 1 \| ` + num + ` \| ` + num + ` \| ` + num + ` \(` + num + `\) \| \d+ \| [1-9]\d* \| [1-9]\d* \| – \|`,
		`\| commit, verification on \| 1 \| ` + num + ` \| ` + num + ` \| ` + num + ` \(` + num + `\) \| \d+ \| [1-9]\d* \| [1-9]\d* \| [1-9]\d* \|`,
		`target: commit pause under 2 s at steady state \(verification off\): (held|NOT held) \(median ` + num + ` s, max ` + num + ` s over 1 run\)`,
	} {
		if !regexp.MustCompile(row).MatchString(r.stdout) {
			t.Errorf("the report lacks a line matching %s:\n%s", row, r.stdout)
		}
	}
	// One run per configuration, each verified EQUAL and reported on stderr.
	if n := strings.Count(r.stderr, "; EQUAL\n"); n != 3 {
		t.Errorf("%d runs reported EQUAL, want 3:\n%s", n, r.stderr)
	}
}
