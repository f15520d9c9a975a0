package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The README's first command, at a smaller size: a fleet of separate processes copies the source
// while the load generator writes to it, applies the change events live, commits once the load
// stops (restoring the unique and TTL index settings), and the demo ends with equal clusters and
// exit 0.
func TestDemoEndsEqual(t *testing.T) {
	t.Parallel()
	r := runFleetsync(t, "demo", "--docs", "3000", "--nodes", "2", "--rate", "300", "--apply-for", "2s")
	if r.code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"seeded the source: 3000 documents", "writing to the source at 300 ops/s",
		"node node-2: API http://127.0.0.1:", "copy ", "load stopped: ", "errors 0", "from the oplog",
		"/api/v1/commit: the fleet cuts over", "COMMITTED: canWrite true", "verified by the commit: passed"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{
		`EQUAL: 6 namespaces, \d+ documents compared`,
		`copied +\d+ documents \([0-9.]+ MB\) in \d+ partitions by 2 nodes`,
		`applied +[1-9]\d* change events`,
		`spooled +[1-9]\d* change events \([0-9.]+ MB\) from the start; \d+ applied from the spool`,
		`commit +pause [0-9.]+s from POST /commit to COMMITTED; [1-9]\d* index setting\(s\) restored`,
		`restored shop\.customers \S+: unique \(rebuilt\)`,
		`verify +EQUAL`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Fatalf("demo output does not match %q:\n%s", want, r.stdout)
		}
	}
}

// A demo killed with SIGKILL cannot stop its fleet, so the kernel does: no node outlives it.
func TestDemoNodesDieWithTheDemo(t *testing.T) {
	t.Parallel()
	b := startBackground(t, "demo", "--docs", "3000", "--nodes", "2", "--rate", "100", "--apply-for", "10m")
	for {
		line := b.readLine(t)
		if strings.HasPrefix(line, "node node-2: API") {
			break
		}
	}
	var nodes []int
	for _, pid := range childPids(b.cmd.Process.Pid) {
		if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(cmdline), "--cluster0") {
			nodes = append(nodes, pid)
		}
	}
	t.Cleanup(func() { // even when the test fails
		for _, pid := range nodes {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if len(nodes) != 2 {
		t.Fatalf("found %d node processes of the demo, want 2", len(nodes))
	}
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range nodes {
		waitGone(t, pid)
	}
}
