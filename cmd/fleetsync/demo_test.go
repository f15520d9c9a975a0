package main

import (
	"strings"
	"testing"
)

// The README's first command, at a smaller size: a fleet of separate processes copies the source,
// and the demo ends with equal clusters and exit 0.
func TestDemoEndsEqual(t *testing.T) {
	t.Parallel()
	r := runFleetsync(t, "demo", "--docs", "3000", "--nodes", "2")
	if r.code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"seeded the source: 3000 documents", "node node-2: API http://127.0.0.1:",
		"copy ", "copied ", "EQUAL: 6 namespaces, 6000 documents compared", "copied 3000 documents", "by 2 nodes"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
}
