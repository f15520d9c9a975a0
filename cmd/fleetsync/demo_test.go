package main

import (
	"strings"
	"testing"
)

// The README's first command, at a smaller size: it must end with equal clusters and exit 0.
func TestDemoEndsEqual(t *testing.T) {
	r := runFleetsync(t, "demo", "--docs", "1200")
	if r.code != exitOK {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"seeded the source: 1200 documents", "seeded the destination: 1200 documents", "EQUAL: 6 namespaces, 2400 documents compared"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
}
