package applier

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

// switchRig: the sync's namespaces (database "in") take a few writes while the rest of the source
// (database "out") is busy, and the capture spools them and keeps up to the source's newest entry.
type switchRig struct {
	*rig
	filter namespace.Filter
	newest primitive.Timestamp // the source's newest entry, where the capture's checkpoint is
}

func newSwitchRig(t *testing.T, inBefore, inAfter []int) switchRig {
	ctx := context.Background()
	r := switchRig{rig: newRig(t), filter: namespace.Filter{Include: []namespace.Rule{{Database: "in"}}}}
	insert := func(db string, ids []int) {
		for _, id := range ids {
			if _, err := r.src.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert("in", inBefore)
	capture := r.startCapture(t, "capturer", r.filter)
	busy := make([]int, 200)
	for i := range busy {
		busy[i] = i
	}
	insert("out", busy)
	insert("in", inAfter)
	r.newest = latestTS(t, r.src)
	waitUntil(t, "the capture to reach the source's newest entry", func() bool {
		c := r.captureDoc(t)
		return c.Position != nil && !c.Position.TS.Before(r.newest)
	})
	capture.die()
	return r
}

// runApplier runs an applier until the test ends, with batches of batchEvents, and returns it.
func (r switchRig) runApplier(t *testing.T, owner string, batchEvents int, beforeBatch func(*lease.Kept)) (*applier, chan error) {
	t.Helper()
	ctx := context.Background()
	l := acquire(t, r.store, owner)
	kept := lease.Keep(ctx, r.store, l)
	t.Cleanup(kept.Stop)
	a := &applier{cfg: Config{Source: r.src, Destination: r.dst, Meta: r.meta, Filter: r.filter, Mode: ModeAuto, Lanes: 2,
		BatchEvents: batchEvents, Log: zaptest.NewLogger(t).Named(owner)}, kept: kept,
		ckpt: &checkpointer{coll: r.meta.Collection(metadata.CollCheckpoints), syncID: "t", lease: l}}
	if beforeBatch != nil {
		a.beforeBatch = func() { beforeBatch(kept) }
	}
	done := make(chan error, 1)
	go func() { done <- a.run(kept.Context()) }()
	return a, done
}

func (r switchRig) waitEqual(t *testing.T, want int64) {
	t.Helper()
	waitUntil(t, "the destination's in.c to hold every document", func() bool {
		if ck := r.caughtUpCheckpoint(t); ck.Terminal != "" {
			t.Fatalf("the applier stopped for good: %s", ck.Terminal)
		}
		n, err := r.dst.Database("in").Collection("c").CountDocuments(context.Background(), bson.D{})
		return err == nil && n == want
	})
}

// The sync's namespaces are quiet while the source is busy: the oplog rolls past their last write,
// but not past the capture's checkpoint. The applier applies the spool and reads the live source
// from the capture's checkpoint, which the oplog still holds, not from the last spooled record.
func TestSwitchToTheLiveSourceAtTheCapturesCheckpoint(t *testing.T) {
	r := newSwitchRig(t, []int{1}, nil)
	sandboxtest.TruncateOplog(t, r.src, r.newest) // the capture's checkpoint stays in the oplog
	r.runApplier(t, "applier", 300, nil)
	r.waitEqual(t, 1)
	waitUntil(t, "the switch", func() bool { return r.caughtUpCheckpoint(t).Live })
	if ck := r.caughtUpCheckpoint(t); ck.LiveFrom.TS != r.newest {
		t.Fatalf("switched at %v, want the capture's checkpoint %v", ck.LiveFrom.TS, r.newest)
	}
	if _, err := r.src.Database("in").Collection("c").InsertOne(context.Background(), bson.D{{Key: "_id", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	r.waitEqual(t, 2)
}

// The switch to the live source is recorded only once everything read from the spool is applied:
// an applier that dies with spooled batches read but not applied (its reader is a batch ahead) leaves
// the spool and its checkpoint in it, and its successor applies them from there.
func TestSwitchIsRecordedOnlyAfterTheSpoolIsApplied(t *testing.T) {
	r := newSwitchRig(t, []int{1, 2}, []int{3, 4})
	var batches atomic.Int32
	_, done := r.runApplier(t, "first", 2, func(kept *lease.Kept) {
		if batches.Add(1) == 2 {
			// Slow on its second batch, while the reader reads on to the switch; then the node
			// dies (SIGKILL): nothing more is written.
			time.Sleep(time.Second)
			kept.Stop()
		}
	})
	<-done
	ck := r.caughtUpCheckpoint(t)
	if ck.Live {
		t.Fatalf("the switch was recorded (from %v) with spooled batches unapplied: checkpoint %v", ck.LiveFrom.TS, ck.Position.TS)
	}
	sandboxtest.TruncateOplog(t, r.src, r.newest) // the source holds what the capture needs, no more
	r.runApplier(t, "second", 2, nil)
	r.waitEqual(t, 4)
}
