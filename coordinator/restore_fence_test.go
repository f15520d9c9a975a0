package coordinator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// A coordinator deposed while it rebuilds an index for the commit does not record the setting as
// restored: its successor may have undone the commit meanwhile, and a late "restored" would have
// the next commit skip an index the destination holds without its uniqueness. The record stays as
// it was (deferred, with the rebuild's record), for the successor to redo.
func TestDeposedCoordinatorRecordsNoRestoredSetting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	register(t, ctx, meta)
	point, err := clusterclock.Now(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	setSync(t, ctx, meta, bson.D{
		{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "options", Value: metadata.Options{WriteBlocking: metadata.WriteBlockingNone, BuildIndexes: metadata.BuildIndexesAfterCopy}},
		{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepRestore, Point: point, RequestedAt: time.Now()}},
	})
	coord, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "old", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg := coordinator.Config{Source: src, Destination: dst, Meta: meta,
		Partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), "default"), Lease: coord,
		PollInterval: 20 * time.Millisecond, Log: zap.NewNop()}
	stolen := false
	coordinator.SetAfterIndexDrop(&cfg, func(ns string, rb metadata.IndexRebuild) error {
		if rb.Index != "email_1" || stolen {
			return nil
		}
		// Another node takes the lease over while this one rebuilds (its lease lapsed during a
		// freeze, say); this one's build goes on, as a command already sent would.
		stolen = true
		_, err := meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: lease.FieldOwner, Value: "new"}, {Key: "epoch", Value: coord.Epoch + 1}}}})
		return err
	})
	err = coordinator.Run(ctx, cfg)
	if !errors.Is(err, metadata.ErrDeposed) || !stolen {
		t.Fatalf("the coordinator ended with %v (lease stolen: %v), want it deposed", err, stolen)
	}
	entries, err := meta.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range entries[0].Restored {
		if r.Index == "email_1" {
			t.Fatalf("the deposed coordinator recorded email_1 as restored: restored %+v, deferred %+v", entries[0].Restored, entries[0].Deferred)
		}
	}
	deferred := false
	for _, d := range entries[0].Deferred {
		deferred = deferred || (d.Index == "email_1" && d.Unique)
	}
	if !deferred {
		t.Fatalf("email_1's uniqueness is no longer deferred: deferred %+v, rebuilding %+v", entries[0].Deferred, entries[0].Rebuilding)
	}
}
