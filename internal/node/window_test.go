package node

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/web"
)

// mongosync's values (its progress reference, estimatedOplogTimeRemaining): durations such as
// "4 hours" or "45 minutes", and "less than 15 minutes" and "more than 72 hours" at the ends.
func TestOplogTimeRemaining(t *testing.T) {
	oldest := primitive.Timestamp{T: 1_700_000_000, I: 7}
	for d, want := range map[time.Duration]string{
		-time.Hour:                      "less than 15 minutes", // already lost: the capture or applier says so
		0:                               "less than 15 minutes",
		15*time.Minute - time.Second:    "less than 15 minutes",
		15 * time.Minute:                "15 minutes",
		59*time.Minute + 59*time.Second: "59 minutes",
		time.Hour:                       "1 hour",
		2*time.Hour - time.Second:       "1 hour", // rounded down: never more than there is
		4*time.Hour + 50*time.Minute:    "4 hours",
		72 * time.Hour:                  "72 hours",
		72*time.Hour + time.Second:      "more than 72 hours",
	} {
		needed := primitive.Timestamp{T: uint32(int64(oldest.T) + int64(d/time.Second)), I: 1}
		if got := oplogTimeRemaining(needed, oldest); got != want {
			t.Errorf("%s after the oldest entry: %q, want %q", d, got, want)
		}
	}
}

// What the sync needs from the source's oplog: the capture's position while the applier reads the
// spool, the applier's once it is live, the start before either checkpointed.
func TestNeededFromOplog(t *testing.T) {
	start, capture, applied := primitive.Timestamp{T: 100}, primitive.Timestamp{T: 300}, primitive.Timestamp{T: 200}
	s := &metadata.Sync{StartAtOperationTime: start}
	captured := spool.Capture{Position: &spool.Position{TS: capture}}
	spooling := applier.Checkpoint{Position: &applier.Position{TS: applied}}
	live := applier.Checkpoint{Live: true, Position: &applier.Position{TS: applied}}
	for _, c := range []struct {
		name  string
		c     spool.Capture
		capOK bool
		ck    applier.Checkpoint
		ckOK  bool
		want  primitive.Timestamp
	}{
		{"nothing checkpointed: the start", spool.Capture{}, true, applier.Checkpoint{}, false, start},
		{"the capture runs, the applier reads the spool", captured, true, spooling, true, capture},
		{"the applier is live", spool.Capture{Position: &spool.Position{TS: capture}, Done: true}, true, live, true, applied},
		{"no capture ever ran: the applier reads the source", spool.Capture{}, false, spooling, true, applied},
	} {
		got, ok := neededFromOplog(s, c.c, c.capOK, c.ck, c.ckOK)
		if !ok || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, ok, c.want)
		}
	}
	if _, ok := neededFromOplog(&metadata.Sync{}, spool.Capture{}, false, applier.Checkpoint{}, false); ok {
		t.Error("a sync without a start time needs a known position")
	}
}

// A sync on sandbox servers whose capture and applier state is written as they would write it:
// /progress reports the spool, the oplog time left from the position the sync needs (the
// capture's, then the live applier's against the source's own oldest entry), and the capture's lag
// as a warning; estimatedOplogTimeRemaining only while RUNNING, as mongosync.
func TestProgressReportsTheSpoolAndTheOplogWindowLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newAPIRig(t, true)
	if _, err := r.n.source.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	first, err := r.n.source.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Raw()
	if err != nil {
		t.Fatal(err)
	}
	ot, oi := first.Lookup("ts").Timestamp()
	oldest := primitive.Timestamp{T: ot, I: oi}
	progress := func() (web.Progress, string) {
		t.Helper()
		code, p, raw := r.call(t, http.MethodGet, "/api/v1/progress", "")
		if code != http.StatusOK {
			t.Fatalf("progress: %d %s", code, raw)
		}
		return p.Progress, raw
	}
	upsert := func(coll string, set bson.D) {
		t.Helper()
		if _, err := r.n.meta.Collection(coll).UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}}, bson.D{{Key: "$set", Value: set}},
			options.Update().SetUpsert(true)); err != nil {
			t.Fatal(err)
		}
	}

	// Copying, nothing captured yet: the sync needs its start, 30 minutes after the source's
	// oldest entry, which the node reads from the source itself.
	r.put(t, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseCopy},
		{Key: "startAtOperationTime", Value: primitive.Timestamp{T: oldest.T + 30*60, I: 1}}})
	p, _ := progress()
	if p.EstimatedOplogTimeRemaining != "30 minutes" || p.Fleet.Spool != nil {
		t.Fatalf("before the capture: estimatedOplogTimeRemaining %q, spool %+v", p.EstimatedOplogTimeRemaining, p.Fleet.Spool)
	}

	// The capture runs on node-b, 900 s behind at its last checkpoint, with the oplog's oldest
	// entry 2 h 5 min before its position; the applier has applied 400 of its 1000 entries.
	now := time.Now().Truncate(time.Second)
	pos := primitive.Timestamp{T: uint32(now.Unix()) - 900, I: 4}
	upsert(metadata.CollCapture, bson.D{{Key: "owner", Value: "node-b/5f1c"}, {Key: "epoch", Value: int64(3)}, {Key: "source", Value: spool.KindOplog},
		{Key: "position", Value: spool.Position{TS: pos}}, {Key: "captured", Value: int64(1000)}, {Key: "capturedBytes", Value: int64(250_000)},
		{Key: "updatedAt", Value: now}, {Key: "oplogOldest", Value: primitive.Timestamp{T: pos.T - 2*3600 - 5*60, I: 1}},
		{Key: "oplogNewest", Value: primitive.Timestamp{T: uint32(now.Unix()), I: 1}}})
	upsert(metadata.CollCheckpoints, bson.D{{Key: "fromSpool", Value: int64(400)}})
	p, _ = progress()
	want := web.Spool{Capturer: &web.LeaseHolder{Node: "node-b", Epoch: 3}, Captured: 1000, Applied: 400, Waiting: 600, Bytes: 250_000, LagSeconds: 900}
	if sp := p.Fleet.Spool; sp == nil || sp.Capturer == nil || *sp.Capturer != *want.Capturer || sp.Captured != want.Captured || sp.Applied != want.Applied ||
		sp.Waiting != want.Waiting || sp.Bytes != want.Bytes || sp.LagSeconds != want.LagSeconds || sp.Done {
		t.Fatalf("fleet.spool %+v, want %+v", sp, want)
	}
	if p.EstimatedOplogTimeRemaining != "2 hours" {
		t.Fatalf("estimatedOplogTimeRemaining %q while capturing, want \"2 hours\" from the capture's position", p.EstimatedOplogTimeRemaining)
	}
	if !hasWarning(p.Warnings, "the capture of change events is 900 s behind the source", "the capturing node is node-b") {
		t.Fatalf("no capture lag warning in %q", p.Warnings)
	}

	// The applier has switched to the source, 20 minutes after its oldest entry; the capture is over.
	upsert(metadata.CollCapture, bson.D{{Key: "done", Value: true}})
	upsert(metadata.CollCheckpoints, bson.D{{Key: "live", Value: true}, {Key: "position", Value: applier.Position{TS: primitive.Timestamp{T: oldest.T + 20*60, I: 1}}}})
	r.put(t, bson.D{{Key: "phase", Value: metadata.PhaseApply}})
	p, _ = progress()
	if p.EstimatedOplogTimeRemaining != "20 minutes" || p.Fleet.Spool == nil || !p.Fleet.Spool.Done || p.Fleet.Spool.Waiting != 0 {
		t.Fatalf("applier live: estimatedOplogTimeRemaining %q, spool %+v", p.EstimatedOplogTimeRemaining, p.Fleet.Spool)
	}
	if hasWarning(p.Warnings, "the capture of change events") {
		t.Fatalf("a capture that is over still warned: %q", p.Warnings)
	}

	// mongosync reports it only while RUNNING.
	r.put(t, bson.D{{Key: "state", Value: metadata.StatePaused}})
	if p, raw := progress(); p.EstimatedOplogTimeRemaining != "" || strings.Contains(raw, "estimatedOplogTimeRemaining") {
		t.Fatalf("PAUSED: estimatedOplogTimeRemaining in %s", raw)
	}
}

func hasWarning(warnings []string, parts ...string) bool {
	for _, w := range warnings {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(w, part)
		}
		if all {
			return true
		}
	}
	return false
}

// /progress must stay fast: the destination's dbStats is asked at most once a minute per node,
// whoever calls. The sandbox's dbStats has no file-system figures, which must give no warning and
// no error (the warning itself is tested on real replies in internal/spool).
func TestProgressAsksDBStatsOncePerMinute(t *testing.T) {
	t.Parallel()
	r := newAPIRig(t, true)
	cmds := sandboxtest.NewCommands()
	monitored := sandboxtest.ConnectWith(t, r.clusters.Destination, mongoconn.Options{Monitor: cmds.Monitor()})
	r.n.meta = metadata.Open(monitored, namespace.DefaultMetadataDB, "default")
	r.put(t, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseCopy}})
	for i := 0; i < 2; i++ {
		code, p, raw := r.call(t, http.MethodGet, "/api/v1/progress", "")
		if code != http.StatusOK {
			t.Fatalf("progress %d: %d %s", i, code, raw)
		}
		if hasWarning(p.Progress.Warnings, "disk") {
			t.Fatalf("a warning about the disk from a dbStats without file-system figures: %q", p.Progress.Warnings)
		}
	}
	sent := cmds.Sent("dbStats", namespace.DefaultMetadataDB, "")
	if len(sent) != 1 {
		t.Fatalf("%d dbStats sent for two /progress calls within a minute, want 1", len(sent))
	}
	if sent[0].Outcome != "ok" {
		t.Fatalf("dbStats: %s", sent[0].Outcome)
	}
}

// A probe is read again after probeTTL, or at once when it is asked of another client (a reverse
// swapped the source).
func TestCachedProbe(t *testing.T) {
	var c cached[int]
	reads := 0
	read := func() (int, bool) { reads++; return reads, true }
	t0 := time.Now()
	for _, step := range []struct {
		at    time.Duration
		key   string
		reads int
	}{
		{0, "cluster0", 1},
		{probeTTL - time.Second, "cluster0", 1},
		{probeTTL - time.Second, "cluster1", 2},
		{2*probeTTL - time.Second, "cluster1", 3},
	} {
		if v, ok := c.get(t0.Add(step.at), step.key, read); !ok || v != step.reads || reads != step.reads {
			t.Fatalf("at %s from %s: value %d after %d reads, want %d", step.at, step.key, v, reads, step.reads)
		}
	}
}

// What the free-space warning weighs: the spool's waiting entries while the capture runs, the
// copy's remaining bytes while copying.
func TestStillToWrite(t *testing.T) {
	c := spool.Capture{Captured: 1000, CapturedBytes: 500_000}
	cc := web.CollectionCopy{EstimatedTotalBytes: 10_000_000, EstimatedCopiedBytes: 4_000_000}
	for _, x := range []struct {
		name            string
		phase           string
		c               spool.Capture
		capOK           bool
		cc              web.CollectionCopy
		waiting, toCopy int64
	}{
		{"copying, 400 of 1000 entries applied", metadata.PhaseCopy, c, true, cc, 300_000, 6_000_000},
		{"copied past the estimate", metadata.PhaseCopy, c, true, web.CollectionCopy{EstimatedTotalBytes: 1, EstimatedCopiedBytes: 2}, 300_000, 0},
		{"applying: nothing left to copy", metadata.PhaseApply, c, true, cc, 300_000, 0},
		{"the capture is over", metadata.PhaseApply, spool.Capture{Captured: 1000, CapturedBytes: 500_000, Done: true}, true, cc, 0, 0},
		{"no capture", metadata.PhaseCopy, spool.Capture{}, false, cc, 0, 6_000_000},
	} {
		w, tc := stillToWrite(&metadata.Sync{Phase: x.phase}, x.cc, x.c, x.capOK, 400)
		if w != x.waiting || tc != x.toCopy {
			t.Errorf("%s: waiting %d, to copy %d; want %d, %d", x.name, w, tc, x.waiting, x.toCopy)
		}
	}
}

// A capture that stopped for good is said in /progress's warnings at once (the applier would only
// find out after the copy); one that keeps failing is said as retrying; a done capture's last
// error is history.
func TestCaptureFailureWarning(t *testing.T) {
	for _, c := range []struct {
		capture spool.Capture
		want    string
	}{
		{spool.Capture{Terminal: "the source's oplog no longer holds X", Error: "the source's oplog no longer holds X"},
			"the capture of change events stopped for good: the source's oplog no longer holds X; the sync cannot finish: start a new sync (with a larger oplog)"},
		{spool.Capture{Error: "connection refused"}, "the capture of change events is failing (retrying): connection refused"},
		{spool.Capture{Error: "connection refused", Done: true}, ""},
		{spool.Capture{}, ""},
	} {
		if got := captureFailure(c.capture); got != c.want {
			t.Errorf("capture %+v: warning %q, want %q", c.capture, got, c.want)
		}
	}
}
