package applier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/lease"
)

// captureRun is one capturer holding the capture lease, in the background.
type captureRun struct {
	kept *lease.Kept
	done chan error
	stop context.CancelFunc
}

func (r *rig) startCapture(t *testing.T, owner string, filter namespace.Filter) *captureRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store := lease.NewStore(r.meta.Collection(metadata.CollCapture))
	l := acquire(t, store, owner)
	s, err := r.meta.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, l)
	run := &captureRun{kept: kept, done: make(chan error, 1), stop: cancel}
	go func() {
		run.done <- Capture(kept.Context(), CaptureConfig{Source: r.src, Meta: r.meta, Filter: filter, Mode: ModeAuto,
			StartAt: s.StartAtOperationTime, Batch: 50, Log: zaptest.NewLogger(t).Named(owner)}, kept)
	}()
	t.Cleanup(func() { cancel(); kept.Stop(); <-run.done })
	return run
}

func (r *rig) captureDoc(t *testing.T) spool.Capture {
	t.Helper()
	c, _, err := spool.ReadCapture(context.Background(), r.meta)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The capture spools the records of the sync's namespaces only; a capturer that takes over from a
// dead one appends what the dead one had appended past its checkpoint again, and the spool keeps
// one entry per source record; and a reverse deposes the capturer.
func TestCaptureSpoolsTheSyncsRecordsOnceAndStopsAtAReverse(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	filter := namespace.Filter{Include: []namespace.Rule{{Database: "in"}}}
	for i := range 300 {
		for _, db := range []string{"in", "out"} {
			if _, err := r.src.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := r.startCapture(t, "first", filter)
	waitUntil(t, "the first capturer to spool 100 records", func() bool { return r.captureDoc(t).Captured >= 100 })
	first.die()
	before := r.captureDoc(t)
	second := r.startCapture(t, "second", filter)
	waitUntil(t, "the second capturer to spool everything", func() bool {
		c := r.captureDoc(t)
		return c.Epoch > before.Epoch && c.AtEnd && c.Captured >= 301
	})
	after := r.captureDoc(t)
	spooled, err := r.meta.Collection(metadata.CollSpool).CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	// in.c's implicit create, then its 300 inserts.
	if after.Captured != 301 || spooled != 301 {
		t.Fatalf("%d records counted, %d in the spool; want in.c's create and 300 inserts, once each (out.c is not the sync's)", after.Captured, spooled)
	}
	cur, err := r.meta.Collection(metadata.CollSpool).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for cur.Next(ctx) {
		if ns := cur.Current.Lookup("e", "ns").StringValue(); ns != "in.c" && ns != "in.$cmd" {
			t.Fatalf("the spool holds a record of %s", ns)
		}
	}

	if err := ResetForReverse(ctx, r.meta, after.Position.TS); err != nil {
		t.Fatal(err)
	}
	if _, err := r.src.Database("in").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "after reverse"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second.done:
		second.done <- err // for the cleanup
		if !errors.Is(err, ErrDeposed) {
			t.Fatalf("the capturer of the old direction ended with %v, want ErrDeposed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the capturer of the old direction kept running after the reverse")
	}
	c := r.captureDoc(t)
	ck := r.caughtUpCheckpoint(t)
	if !c.Done || c.Direction != ck.Direction || c.Direction != 1 || !ck.Live {
		t.Fatalf("after the reverse: capture done %v in direction %d, applier live %v in direction %d; want done, live, both 1",
			c.Done, c.Direction, ck.Live, ck.Direction)
	}
}

func (a *captureRun) die() {
	a.stop()
	a.kept.Stop()
	<-a.done
	a.done <- nil // for the cleanup
}

func (r *rig) caughtUpCheckpoint(t *testing.T) Checkpoint {
	t.Helper()
	ck, _, err := ReadCheckpoint(context.Background(), r.meta)
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// A capture whose start is gone from the source's oplog (rolled over before it could read it)
// stops for good at once, says so in its document for /progress, spools nothing, and holds its
// lease rather than failing again every second.
func TestCaptureStopsForGoodWhenItsStartIsGoneFromTheOplog(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	for i := range 20 {
		if _, err := r.src.Database("in").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := r.src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err != nil {
		t.Fatal(err)
	}
	lt, li := last.Lookup("ts").Timestamp()
	// The sync started at the first insert; the oplog then rolled over to the last one.
	first, err := r.src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "ns", Value: "in.c"}, {Key: "op", Value: "i"}},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Raw()
	if err != nil {
		t.Fatal(err)
	}
	ft, fi := first.Lookup("ts").Timestamp()
	if _, err := r.meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "startAtOperationTime", Value: primitive.Timestamp{T: ft, I: fi}}}}}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.TruncateOplog(t, r.src, primitive.Timestamp{T: lt, I: li})

	run := r.startCapture(t, "doomed", namespace.Filter{})
	waitUntil(t, "the capture to record its terminal failure", func() bool { return r.captureDoc(t).Terminal != "" })
	c := r.captureDoc(t)
	if !strings.Contains(c.Terminal, "no longer holds") || c.Captured != 0 {
		t.Fatalf("capture: terminal %q, %d captured; want the rolled-over oplog named and nothing spooled", c.Terminal, c.Captured)
	}
	select {
	case err := <-run.done:
		run.done <- err
		t.Fatalf("the capture returned (%v) instead of holding its lease", err)
	case <-time.After(time.Second):
	}
}
