package main

import (
	"context"
	"strings"
	"syscall"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/spool"
)

// captureRig reads what a process test needs of the capture from the destination's metadata.
type captureRig struct {
	src, dst *mongo.Client
	meta     *metadata.DB
}

func newCaptureRig(t *testing.T, c sandboxtest.Clusters) captureRig {
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	return captureRig{src: src, dst: dst, meta: metadata.Open(dst, namespace.DefaultMetadataDB, "default")}
}

func (r captureRig) sync(t *testing.T) metadata.Sync {
	t.Helper()
	s, err := r.meta.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r captureRig) capture(t *testing.T) spool.Capture {
	t.Helper()
	c, _, err := spool.ReadCapture(context.Background(), r.meta)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitCaptured waits until the capture has spooled at least n records, and returns its document.
func (r captureRig) waitCaptured(t *testing.T, n int64) spool.Capture {
	t.Helper()
	var c spool.Capture
	waitFor(t, "the capture to spool change events", func() bool {
		c = r.capture(t)
		return c.Position != nil && c.Captured >= n
	})
	return c
}

// sourceEntries are the ts of the source's oplog entries in [from, through] that a sync of every
// user namespace captures: no no-ops, nothing of admin, config or local.
func (r captureRig) sourceEntries(t *testing.T, from, through primitive.Timestamp) []primitive.Timestamp {
	t.Helper()
	ctx := context.Background()
	cur, err := r.src.Database("local").Collection("oplog.rs").Find(ctx, bson.D{
		{Key: "ts", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lte", Value: through}}},
		{Key: "op", Value: bson.D{{Key: "$ne", Value: "n"}}},
	}, options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []primitive.Timestamp
	for cur.Next(ctx) {
		ns := cur.Current.Lookup("ns").StringValue()
		db, _, _ := strings.Cut(ns, ".")
		if db == "admin" || db == "config" || db == "local" {
			continue
		}
		t0, i, _ := cur.Current.Lookup("ts").TimestampOK()
		out = append(out, primitive.Timestamp{T: t0, I: i})
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// spooled are the ts of the spool's entries, in key order.
func (r captureRig) spooled(t *testing.T) []primitive.Timestamp {
	t.Helper()
	ctx := context.Background()
	cur, err := r.meta.Collection(metadata.CollSpool).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []primitive.Timestamp
	for cur.Next(ctx) {
		var e spool.Entry
		if err := cur.Decode(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e.TS)
	}
	return out
}

// A sync whose copy outlives the source's oplog window commits equal: the oplog is truncated in
// the middle of the copy, under writes, behind the capture. Without the capture the applier would
// find its start time gone from the oplog and stop for good.
func TestCaptureOutlivesTheOplogWindow(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, 60_000)
	load := startLoad(t, c)
	n := startNode(t, c, "window", "--workers", "1")
	r := newCaptureRig(t, c)
	startSync(t, n)

	// The copy is held (paused) while the capture spools a thousand events and the oplog rolls over:
	// that is the copy outliving the window, whatever this machine's speed.
	r.waitCaptured(t, 1)
	lifecycleCall(t, n, "pause")
	cp := r.waitCaptured(t, 1000)
	s := r.sync(t)
	if s.Phase != metadata.PhaseCopy && s.Phase != metadata.PhaseCatalog {
		t.Fatalf("the sync reached phase %s before the oplog was truncated; the test needs the copy unfinished", s.Phase)
	}
	removed := sandboxtest.TruncateOplog(t, r.src, cp.Position.TS)
	var oldest struct {
		TS primitive.Timestamp `bson:"ts"`
	}
	if err := r.src.Database("local").Collection("oplog.rs").FindOne(context.Background(), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Decode(&oldest); err != nil {
		t.Fatal(err)
	}
	if !oldest.TS.After(s.StartAtOperationTime) || removed < 1000 {
		t.Fatalf("the truncation removed %d entries and left the oldest at %v, start time %v: the start time must be gone",
			removed, oldest.TS, s.StartAtOperationTime)
	}
	t.Logf("oplog truncated mid-copy: %d entries removed; %d events were spooled, the start time %v is gone from the source",
		removed, cp.Captured, s.StartAtOperationTime)
	lifecycleCall(t, n, "resume")

	waitCopied(t, n)
	waitNodeCanCommit(t, n)
	stopLoadCommitAndVerify(t, load, n, c)
	ck := checkpoint(t, c)
	if !ck.Live || ck.FromSpool < cp.Captured || ck.Terminal != "" {
		t.Errorf("applier checkpoint: live %v, %d applied from the spool (%d spooled before the truncation), terminal %q",
			ck.Live, ck.FromSpool, cp.Captured, ck.Terminal)
	}
	if left := r.spooled(t); len(left) != 0 {
		t.Errorf("%d entries left in the spool after the applier switched to the live source", len(left))
	}
}

// The capturing node and then the applying node are SIGKILLed mid-work: every source record from
// the start time through the capture's position is in the spool exactly once, the applier applies
// each spooled record once, and the sync ends equal.
func TestCaptureAndApplierKilledMidWork(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, 20_000)
	load := startLoad(t, c)
	nodes := map[string]*fleetNode{}
	for _, name := range []string{"k1", "k2", "k3"} {
		nodes[name] = startNode(t, c, name)
	}
	r := newCaptureRig(t, c)
	startSync(t, nodes["k1"])

	// Paused, the copy waits while the capture runs on: the backlog grows, and the spool is
	// not trimmed before the apply phase, so it can be compared with the source's oplog.
	first := r.waitCaptured(t, 1)
	lifecycleCall(t, nodes["k1"], "pause")
	r.waitCaptured(t, 500)
	victim := displayOwner(first.Owner)
	before := r.capture(t)
	t.Logf("killing the capturer %s at epoch %d, %d events spooled", victim, before.Epoch, before.Captured)
	nodes[victim].kill(t)
	delete(nodes, victim)
	var after spool.Capture
	waitFor(t, "another node to capture past the killed one", func() bool {
		after = r.capture(t)
		return after.Epoch > before.Epoch && after.Captured > before.Captured+500
	})
	start := r.sync(t).StartAtOperationTime
	want := r.sourceEntries(t, start, after.Position.TS)
	got := r.spooled(t)
	var gotThrough []primitive.Timestamp
	for _, ts := range got {
		if !ts.After(after.Position.TS) {
			gotThrough = append(gotThrough, ts)
		}
	}
	if !sameTimestamps(want, gotThrough) {
		t.Fatalf("the spool through the capture's position %v holds %d entries, the source's oplog %d (from %v): each must be there once",
			after.Position.TS, len(gotThrough), len(want), start)
	}
	t.Logf("capture taken over by %s at epoch %d: %d source entries from the start time, each spooled once", displayOwner(after.Owner), after.Epoch, len(want))

	// A burst of writes makes the spool several of the applier's batches long (2,000 events each),
	// so that it is still applying from the spool when the test looks.
	burst := r.src.Database("burst").Collection("events")
	for i := range 5 * applier.DefaultBatchEvents / 1000 {
		docs := make([]any, 1000)
		for j := range docs {
			docs[j] = bson.D{{Key: "_id", Value: i*1000 + j}}
		}
		if _, err := burst.InsertMany(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
	}
	r.waitCaptured(t, after.Captured+5*int64(applier.DefaultBatchEvents))

	// Kill the applier while it is still applying from the spool: frozen first (SIGSTOP), its
	// checkpoint read again, and killed only if it still has not switched to the live source.
	var observer *fleetNode
	for _, n := range nodes {
		observer = n
	}
	lifecycleCall(t, observer, "resume")
	applierVictim := ""
	waitFor(t, "the applier to apply from the spool", func() bool {
		ck := checkpoint(t, c)
		if ck.Owner == "" || ck.FromSpool == 0 {
			return false
		}
		if ck.Live {
			t.Fatalf("the applier switched to the live source before the test could kill it (%d applied from the spool)", ck.FromSpool)
		}
		applierVictim = displayOwner(ck.Owner)
		if err := nodes[applierVictim].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if ck = checkpoint(t, c); ck.Live {
			t.Fatalf("the applier switched to the live source before the test could kill it (%d applied from the spool)", ck.FromSpool)
		}
		return true
	})
	t.Logf("killing the applier %s while it applies from the spool", applierVictim)
	nodes[applierVictim].kill(t)
	delete(nodes, applierVictim)
	for _, n := range nodes {
		observer = n
	}
	waitNodeCanCommit(t, observer)
	stopLoadCommitAndVerify(t, load, observer, c)

	ck := checkpoint(t, c)
	if !ck.Live || ck.LiveFrom == nil {
		t.Fatalf("the applier never switched to the live source: %+v", ck)
	}
	applied := r.sourceEntries(t, start, ck.LiveFrom.TS)
	if ck.FromSpool != int64(len(applied)) {
		t.Errorf("the applier applied %d spooled records; the source has %d from the start time through the switch at %v",
			ck.FromSpool, len(applied), ck.LiveFrom.TS)
	}
	final := r.capture(t)
	if captured := r.sourceEntries(t, start, final.Position.TS); final.Captured != int64(len(captured)) {
		t.Errorf("the capture counted %d records; the source has %d from the start time through its last position %v",
			final.Captured, len(captured), final.Position.TS)
	}
	if !final.Done {
		t.Error("the capture is not marked done after the applier switched to the live source")
	}
}

func sameTimestamps(a, b []primitive.Timestamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
