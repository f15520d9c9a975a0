package applier

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// windowChecks is how many oplog-window checks the warning test makes (one every 10 s in a sync).
const windowChecks = 6

// The oplog-window warning is a state, not an event: every check replaces it (its numbers change
// each time), and a check that finds the resume point safe again removes it. Other warnings stay.
// In memory and in the checkpoint (and so in /progress), there is at most one at any time.
func TestOplogWindowWarningIsReplacedNotAppended(t *testing.T) {
	t.Parallel()
	d := newRealDocs(t)
	ctx := context.Background()
	// A source whose oplog spans 1000 s: a plain server holding local.oplog.rs as given, since
	// the sandbox's own oplog only holds entries of the last moments.
	src := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	const oldest, newest = 1_700_000_000, 1_700_001_000
	oplog := src.Database("local").Collection("oplog.rs")
	for _, ts := range []uint32{oldest, newest} {
		if _, err := oplog.InsertOne(ctx, bson.D{{Key: "ts", Value: primitive.Timestamp{T: ts, I: 1}}, {Key: "op", Value: "n"}, {Key: "ns", Value: ""}}); err != nil {
			t.Fatal(err)
		}
	}
	d.a.cfg.Source = src
	d.a.warn(ctx, "a DDL warning", "a DDL warning")

	windowWarnings := func(where string, got []string) []string {
		var out []string
		for _, w := range got {
			if strings.Contains(w, "falling off the source's oplog") {
				out = append(out, w)
			}
		}
		if len(got) != len(out)+1 {
			t.Errorf("%s: warnings %q; want the DDL warning kept", where, got)
		}
		return out
	}
	for i := range windowChecks {
		// The resume point falls further behind at every check: each warning's numbers differ.
		d.a.checkWindow(ctx, primitive.Timestamp{T: oldest + 90 - uint32(10*i), I: 1})
	}
	if w := windowWarnings("in memory", d.a.warningMessages()); len(w) != 1 || !strings.Contains(w[0], "is 40s from falling off") {
		t.Fatalf("after %d checks, window warnings in memory: %q; want exactly the latest", windowChecks, w)
	}
	if w := windowWarnings("in the checkpoint", d.warnings(t)); len(w) != 1 || !strings.Contains(w[0], "is 40s from falling off") {
		t.Fatalf("after %d checks, window warnings in the checkpoint: %q; want exactly the latest", windowChecks, w)
	}
	// Caught up: the warning is gone.
	d.a.checkWindow(ctx, primitive.Timestamp{T: newest, I: 1})
	if w := windowWarnings("in the checkpoint", d.warnings(t)); len(w) != 0 {
		t.Fatalf("after catching up, window warnings in the checkpoint: %q; want none", w)
	}
}

// A checkpoint written before warnings had kinds (a list of strings, the window warning appended
// every 10 s) reads as one warning per kind: the latest window warning, and the others as they were.
func TestWarningsWrittenAsStringsReadByKind(t *testing.T) {
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: "t"}, {Key: "warnings", Value: bson.A{
		"the applier's resume point is 90s from falling off the source's oplog (window 1000s)",
		"the destination does not support collMod, so collMod on shop.orders was not applied",
		"the applier's resume point is 80s from falling off the source's oplog (window 1000s)",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var ck Checkpoint
	if err := bson.Unmarshal(raw, &ck); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"the applier's resume point is 80s from falling off the source's oplog (window 1000s)",
		"the destination does not support collMod, so collMod on shop.orders was not applied",
	}
	if got := ck.Warnings.Messages(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings read: %q, want %q", got, want)
	}
}
