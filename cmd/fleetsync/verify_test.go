package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
)

// seededPair returns two sandbox clusters holding the same seeded data.
func seededPair(t *testing.T) sandboxtest.Clusters {
	t.Helper()
	pair := sandboxtest.Pair(t)
	for _, uri := range []string{pair.Source, pair.Destination} {
		if _, err := seed.Seed(context.Background(), sandboxtest.Connect(t, uri), seed.Options{Docs: 300, Collections: 3, Seed: 2}); err != nil {
			t.Fatal(err)
		}
	}
	return pair
}

func TestVerifyExitCodesAndReports(t *testing.T) {
	pair := seededPair(t)
	r := runFleetsync(t, "verify", "--cluster0", pair.Source, "--cluster1", pair.Destination)
	if r.code != exitOK || !strings.Contains(r.stdout, "EQUAL: 3 namespaces, 600 documents compared") {
		t.Fatalf("equal clusters: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	first := seed.Plan(seed.Options{Docs: 300, Collections: 3, Seed: 2})[0]
	coll := sandboxtest.Connect(t, pair.Destination).Database(first.DB).Collection(first.Name)
	if _, err := coll.DeleteOne(context.Background(), bson.D{}); err != nil {
		t.Fatal(err)
	}
	ns := first.DB + "." + first.Name
	r = runFleetsync(t, "verify", "--cluster0", pair.Source, "--cluster1", pair.Destination)
	if r.code != exitDifferent {
		t.Fatalf("exit %d for a missing document, want 1\n%s", r.code, r.stdout)
	}
	var row string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), ns+" ") {
			row = line
		}
	}
	if fields := strings.Fields(row); len(fields) != 8 || fields[1] != "100" || fields[2] != "99" || fields[3] != "1" || fields[7] != "DIFFERENT" {
		t.Fatalf("row for %s is %q\n%s", ns, row, r.stdout)
	}
	if !strings.Contains(r.stdout, "DIFFERENT: 1 of 3 namespaces differ") {
		t.Fatalf("summary missing:\n%s", r.stdout)
	}

	r = runFleetsync(t, "verify", "--json", "--cluster0", pair.Source, "--cluster1", pair.Destination)
	var report struct {
		Equal      bool `json:"equal"`
		Namespaces []struct {
			Namespace        string            `json:"namespace"`
			Missing          int               `json:"missing"`
			FirstDifferences []json.RawMessage `json:"firstDifferences"`
		} `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil || r.code != exitDifferent {
		t.Fatalf("--json: exit %d, %v\n%s", r.code, err, r.stdout)
	}
	if report.Equal || len(report.Namespaces) != 3 || report.Namespaces[0].Namespace > report.Namespaces[1].Namespace {
		t.Fatalf("--json report: %+v", report)
	}

	// Only the untouched namespaces: equal again.
	var others []string
	for _, c := range seed.Plan(seed.Options{Docs: 300, Collections: 3, Seed: 2})[1:] {
		others = append(others, c.DB+"."+c.Name)
	}
	r = runFleetsync(t, "verify", "--include", strings.Join(others, ","), "--cluster0", pair.Source, "--cluster1", pair.Destination)
	if r.code != exitOK || !strings.Contains(r.stdout, "EQUAL: 2 namespaces") {
		t.Fatalf("--include of the untouched namespaces: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestVerifyBadInputIsOneClearLine(t *testing.T) {
	pair := sandboxtest.Pair(t)
	const secret = "s3cr3t-pa55"
	unreachable := "mongodb://admin:" + secret + "@127.0.0.1:1/"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no clusters", []string{}, "--cluster0 and --cluster1 are required"},
		{"malformed URI", []string{"--cluster0", "mongo://nope", "--cluster1", pair.Destination}, "cluster0: \"mongo://nope\" is not a valid MongoDB connection string"},
		{"unreachable server, password hidden", []string{"--cluster0", pair.Source, "--cluster1", unreachable, "--server-selection-timeout", "300ms"},
			"cluster1: cannot reach mongodb://admin:xxxxx@127.0.0.1:1/ within 300ms"},
		{"unknown namespace", []string{"--cluster0", pair.Source, "--cluster1", pair.Destination, "--include", "shop.nothing"},
			"namespace shop.nothing exists on neither cluster"},
		{"include without a collection", []string{"--cluster0", pair.Source, "--cluster1", pair.Destination, "--include", "shop"},
			`--include: "shop" is not a namespace: write it as database.collection`},
		{"unknown flag", []string{"--cluster", pair.Source}, "flag provided but not defined: -cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runFleetsync(t, append([]string{"verify"}, tc.args...)...)
			assertOneLineError(t, r, "verify", tc.want)
			if strings.Contains(r.stderr, secret) {
				t.Fatalf("the password leaked: %s", r.stderr)
			}
		})
	}
}
