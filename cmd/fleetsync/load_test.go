package main

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
)

// loadSummary is the last line of a load run that had no failed writes.
var loadSummary = regexp.MustCompile(`^load: done in \d+\.\ds: (\d+) ops \(\d+\.\d/s\): insert \d+, set \d+, unset \d+, inc \d+, push \d+, replace \d+, delete \d+; errors 0$`)

var loadProgress = regexp.MustCompile(`^load: \d+\.\ds \d+ ops \(\d+\.\d/s\) errors 0$`)

func seededSource(t *testing.T) string {
	t.Helper()
	uri := sandboxtest.Server(t, true)
	if _, err := seed.Seed(context.Background(), sandboxtest.Connect(t, uri), seed.Options{Docs: 600, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return uri
}

func TestLoadPrintsProgressAndASummary(t *testing.T) {
	uri := seededSource(t)
	r := runFleetsync(t, "load", "--uri", uri, "--rate", "200", "--duration", "1500ms", "--seed", "3", "--include", "shop.customers,shop.orders")
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) < 2 || !loadProgress.MatchString(lines[0]) || !loadSummary.MatchString(lines[len(lines)-1]) {
		t.Fatalf("want progress lines and a summary, got:\n%s\nstderr: %s", r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestLoadStopsWithASummaryOnSIGINT(t *testing.T) {
	uri := seededSource(t)
	b := startBackground(t, "load", "--uri", uri, "--rate", "100")
	if line := b.readLine(t); !loadProgress.MatchString(line) {
		t.Fatalf("first line %q is not a progress line; stderr: %s", line, b.stderr.String())
	}
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var last string
	for {
		line := b.readLine(t)
		if !loadProgress.MatchString(line) {
			last = line
			break
		}
	}
	<-b.done
	if code := b.cmd.ProcessState.ExitCode(); code != exitOK || !loadSummary.MatchString(last) {
		t.Fatalf("exit %d, last line %q; stderr: %s", code, last, b.stderr.String())
	}
}

func TestLoadBadFlagsAreOneLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--uri is required"},
		{[]string{"--uri", "mongodb://127.0.0.1:1/", "--rate", "0"}, "--rate must be above 0"},
		{[]string{"--uri", "mongodb://127.0.0.1:1/", "--rate", "fast"}, "invalid value"},
		{[]string{"--uri", "mongodb://127.0.0.1:1/", "--duration", "-1s"}, "--duration must be 0"},
		{[]string{"--uri", "mongodb://127.0.0.1:1/", "--workers", "0"}, "--workers must be 1 or more"},
		{[]string{"--uri", "mongodb://127.0.0.1:1/", "--include", "nodot"}, "--include"},
		{[]string{"--uri", "mongodb://127.0.0.1:1/", "extra"}, `unexpected argument "extra"`},
		{[]string{"--frobnicate"}, "flag provided but not defined"},
	} {
		assertOneLineError(t, runFleetsync(t, append([]string{"load"}, c.args...)...), "load", c.want)
	}
}

func TestLoadNeverPrintsThePassword(t *testing.T) {
	r := runFleetsync(t, "load", "--uri", "mongodb://loader:s3cr3t-pw@127.0.0.1:1/", "--server-selection-timeout", "300ms")
	assertOneLineError(t, r, "load", "cannot reach mongodb://loader:xxxxx@127.0.0.1:1/")
	if strings.Contains(r.stderr, "s3cr3t") {
		t.Fatalf("the password is in the error: %s", r.stderr)
	}
}
