package coordinator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// The sync's error says when partitions were given up on, and stops saying it once a user retried
// them (POST /api/v1/fleet/partitions/retry); a later failure is said again.
func TestGivenUpPartitionsAreReportedUntilRetried(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, dst := sandboxtest.Connect(t, sandboxtest.Server(t, true)), sandboxtest.Connect(t, sandboxtest.Server(t, false))
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	if _, err := meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseCopy}, {Key: "options", Value: metadata.Options{}}}}}); err != nil {
		t.Fatal(err)
	}
	parts := partition.NewStore(meta.Collection(metadata.CollPartitions), "default")
	if err := parts.Replace(ctx, "shop.orders", []partition.Range{{Whole: true}}); err != nil {
		t.Fatal(err)
	}
	giveUp := func() {
		if _, err := meta.Collection(metadata.CollPartitions).UpdateOne(ctx, bson.D{{Key: "_id", Value: partition.ID("default", "shop.orders", 0)}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "attempts", Value: partition.MaxAttempts}, {Key: "lastError", Value: "refused (injected)"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	giveUp()
	l, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- coordinator.Run(cctx, coordinator.Config{Source: src, Destination: dst, Meta: meta, Partitions: parts, Lease: l,
			PollInterval: 20 * time.Millisecond, Log: zaptest.NewLogger(t)})
	}()
	defer func() { stop(); <-done }()
	syncError := func(want func(string) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			s, err := meta.Sync(ctx)
			if err == nil && want(s.Error) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sync's error is %q (%v); want %s", s.Error, err, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	reported := func(e string) bool {
		return strings.Contains(e, "1 partition(s) failed") && strings.Contains(e, "/api/v1/fleet/partitions/retry")
	}
	syncError(reported, "the given-up partition reported, with the retry endpoint")
	if n, err := parts.RetryFailed(ctx); err != nil || n != 1 {
		t.Fatalf("RetryFailed: %d, %v", n, err)
	}
	syncError(func(e string) bool { return e == "" }, "no error once the partition is retried")
	giveUp()
	syncError(reported, "the partition reported again when it is given up on again")
}
