package coordinator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// Issue 12, requirement 3b. A user write that reaches the destination the moment its write block is
// lifted (canWrite) is after the reverse's start point, so a reverse applies it to the old source.
// The sandbox has no write blocking: the coordinator's AtCanWrite hook makes the write at that
// moment.
func TestWriteAtCanWriteIsReversed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	dst := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	for _, client := range []*mongo.Client{src, dst} {
		if _, err := client.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	point, err := clusterclock.Now(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	// A commit that got as far as its last step: everything up to the commit point is applied.
	setSync(t, ctx, meta, bson.D{
		{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "options", Value: metadata.Options{Reversible: true, WriteBlocking: metadata.WriteBlockingNone,
			BuildIndexes: metadata.BuildIndexesAfterCopy}},
		{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepUnblock, Point: point}},
	})

	var once sync.Once
	atCanWrite := func(ctx context.Context) {
		once.Do(func() {
			if _, err := dst.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: "at canWrite"}}); err != nil {
				t.Error(err)
			}
		})
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
			PollInterval: 20 * time.Millisecond, Log: zaptest.NewLogger(t), AtCanWrite: atCanWrite})
	}()
	s := waitSync(t, ctx, meta, func(s metadata.Sync) bool { return s.State == metadata.StateCommitted })

	var entry struct {
		TS primitive.Timestamp `bson:"ts"`
	}
	if err := dst.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "o._id", Value: "at canWrite"}}).Decode(&entry); err != nil {
		t.Fatalf("the write at canWrite is not in the destination's oplog: %v", err)
	}
	if !entry.TS.After(s.Commit.DestinationPoint) {
		t.Fatalf("the write at canWrite (ts %v) is not after the reverse's start point %v: a reverse would never apply it",
			entry.TS, s.Commit.DestinationPoint)
	}

	// And the reverse applies it to the old source.
	if err := meta.RequestReverse(ctx); err != nil {
		t.Fatal(err)
	}
	s = waitSync(t, ctx, meta, func(s metadata.Sync) bool { return s.State == metadata.StateRunning })
	store := lease.NewStore(meta.Collection(metadata.CollCheckpoints))
	al, err := store.Acquire(ctx, "default", "app", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, al)
	defer kept.Stop()
	go func() {
		_ = applier.Run(ctx, applier.Config{Source: dst, Destination: src, Meta: meta, Filter: s.Options.Filter(namespace.DefaultMetadataDB),
			Mode: applier.ModeOplog, Reversed: true, Log: zaptest.NewLogger(t)}, kept)
	}()
	waitFor(t, ctx, "the write at canWrite applied to the old source", func() bool {
		n, err := src.Database("shop").Collection("orders").CountDocuments(ctx, bson.D{{Key: "_id", Value: "at canWrite"}})
		return err == nil && n == 1
	})
}

// A coordinator told to stop (its node is stopping) finishes the step it is in before it returns:
// here the commit's last step, held at canWrite while the stop arrives, still ends COMMITTED. Cut
// short, it could leave a command running on a cluster while its successor starts the step again.
func TestStoppedCoordinatorFinishesItsStep(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	dst := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	setSync(t, ctx, meta, bson.D{
		{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "options", Value: metadata.Options{WriteBlocking: metadata.WriteBlockingNone, BuildIndexes: metadata.BuildIndexesAfterCopy}},
		{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepUnblock, Point: primitive.Timestamp{T: 1, I: 1}}},
	})
	l, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stop, reached := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- coordinator.Run(ctx, coordinator.Config{Source: src, Destination: dst, Meta: meta,
			Partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), "default"), Lease: l,
			PollInterval: 20 * time.Millisecond, Log: zaptest.NewLogger(t), Stop: stop,
			AtCanWrite: func(context.Context) {
				close(reached)
				<-stop // the node is told to stop while the step is in progress
				time.Sleep(100 * time.Millisecond)
			}})
	}()
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatal("the commit never reached canWrite")
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("the stopped coordinator's run: %v", err)
	}
	s, err := meta.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != metadata.StateCommitted {
		t.Fatalf("after the stop the sync is %s at step %s; want the step finished: COMMITTED", s.State, s.Commit.Step)
	}
}
