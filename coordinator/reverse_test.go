package coordinator_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// A reverse turns a committed sync around: the writes made on the destination after the commit are
// applied to the old source, and a second commit cuts back over. Both sandbox servers get an oplog
// here, so the old destination can be a source. Write blocking, which the sandbox lacks, is off: the
// node's preflight requires it for reversible syncs on real clusters, and the e2e suite covers it.
func TestReverseAppliesTheDestinationsWritesToTheOldSource(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	dst := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	// What a finished sync leaves: the same documents on both sides.
	for _, client := range []*mongo.Client{src, dst} {
		var docs []any
		for i := range 20 {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: "synced"}})
		}
		if _, err := client.Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	cutover, err := clusterclock.Now(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	set := func(update bson.D) {
		t.Helper()
		if _, err := meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}}, update); err != nil {
			t.Fatal(err)
		}
	}
	set(bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: metadata.StateCommitted}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "options", Value: metadata.Options{Reversible: true, WriteBlocking: metadata.WriteBlockingNone, Verification: true,
			BuildIndexes: metadata.BuildIndexesAfterCopy}},
		{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepFinished, DestinationPoint: cutover, CommittedAt: time.Now()}},
	}}})

	// The application moved to the destination: it writes there after the cut-over.
	orders := dst.Database("shop").Collection("orders")
	for i := 100; i < 105; i++ {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: "after cut-over"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: "changed"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.DeleteOne(ctx, bson.D{{Key: "_id", Value: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := meta.RequestReverse(ctx); err != nil {
		t.Fatal(err)
	}

	coord, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopCoordinator := context.WithCancel(ctx)
	defer stopCoordinator()
	go func() {
		_ = coordinator.Run(cctx, coordinator.Config{Source: src, Destination: dst, Meta: meta,
			Partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), "default"), Lease: coord,
			PollInterval: 20 * time.Millisecond, Log: zap.NewNop()})
	}()
	s := waitSync(t, ctx, meta, func(s metadata.Sync) bool { return s.State == metadata.StateRunning })
	if !s.Reversed || s.Phase != metadata.PhaseApply || s.Options.Verification || s.Commit != nil || s.StartAtOperationTime != cutover {
		t.Fatalf("after the reverse: %+v", s)
	}
	ck, _, err := applier.ReadCheckpoint(ctx, meta)
	if err != nil || ck.Position == nil || ck.Position.TS != cutover {
		t.Fatalf("the checkpoint after the reverse is %+v (%v), want the cut-over time %v", ck.Position, err, cutover)
	}

	// The applier, as a node runs it for a reversed sync: from cluster1 to cluster0.
	store := lease.NewStore(meta.Collection(metadata.CollCheckpoints))
	al, err := store.Acquire(ctx, "default", "app", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, al)
	defer kept.Stop()
	go func() {
		_ = applier.Run(ctx, applier.Config{Source: dst, Destination: src, Meta: meta, Filter: s.Options.Filter(namespace.DefaultMetadataDB),
			Mode: applier.ModeOplog, Reversed: true, Log: zap.NewNop()}, kept)
	}()
	latest, err := clusterclock.Now(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the destination's writes applied to the old source", func() bool {
		ck, _, err := applier.ReadCheckpoint(ctx, meta)
		return err == nil && ck.Position != nil && !ck.Position.TS.Before(latest)
	})
	report, err := verify.Run(ctx, dst, src, verify.Options{})
	if err != nil || !report.Equal() {
		t.Fatalf("after the reverse, the old source differs from the destination: %v %+v", err, report)
	}

	// And a commit of the reversed sync cuts back over.
	if err := meta.RequestCommit(ctx); err != nil {
		t.Fatal(err)
	}
	s = waitSync(t, ctx, meta, func(s metadata.Sync) bool { return s.State == metadata.StateCommitted })
	if s.Commit == nil || s.Commit.Point.Before(latest) {
		t.Fatalf("the reversed sync's commit: %+v; its point must be the new source's (cluster1's) time, at or after %v", s.Commit, latest)
	}
}

func waitSync(t *testing.T, ctx context.Context, meta *metadata.DB, cond func(metadata.Sync) bool) metadata.Sync {
	t.Helper()
	for {
		s, err := meta.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cond(s) {
			return s
		}
		if ctx.Err() != nil {
			t.Fatalf("gave up waiting; the sync is %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
