package applier

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
)

// Issue 12, requirement 3a. An applier of the forward direction that missed COMMITTED and REVERSING
// between two polls of its node keeps running after the reverse. The reverse deposes it (its next
// checkpoint is refused and it stops), and an applier started in the old direction by a node whose
// view of the sync is stale refuses to run: the reverse's start point survives both.
func TestReverseDeposesTheOldDirectionsApplier(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	orders := r.src.Database("app").Collection("orders")
	for i := range 10 {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	forward := r.startApplier(t, "forward")
	r.caughtUp(t)

	// The reverse, as the coordinator does it: the checkpoint points at the new source's time, then
	// the sync document says the direction changed. Real clusters' clocks agree closely, so the
	// old source's later events are after this point, as the sandbox source's own clock gives here.
	from, err := clusterclock.Now(ctx, r.src)
	if err != nil {
		t.Fatal(err)
	}
	if err := ResetForReverse(ctx, r.meta, from); err != nil {
		t.Fatal(err)
	}
	if _, err := r.meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseApply}, {Key: "reversed", Value: true},
		{Key: "startAtOperationTime", Value: from}}}}); err != nil {
		t.Fatal(err)
	}
	// Writes reach the old source after the cut-over (the old direction's events).
	for i := 100; i < 110; i++ {
		if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}

	stoppedWithin := 3 * testTTL
	select {
	case <-forward.done:
		forward.done <- nil // for the cleanup
	case <-time.After(stoppedWithin):
		t.Errorf("the forward applier still runs %s after the reverse", stoppedWithin)
	}
	ck, _, err := ReadCheckpoint(ctx, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Position == nil || ck.Position.TS != from {
		t.Fatalf("the old direction's applier moved the reverse's start point %v to %+v", from, ck.Position)
	}
	if t.Failed() {
		return
	}

	// A node whose view of the sync is stale starts an applier of the old direction.
	stale := r.startApplier(t, "stale")
	select {
	case err := <-stale.done:
		stale.done <- nil
		if !errors.Is(err, ErrDirectionChanged) {
			t.Errorf("an applier of the old direction started after the reverse ended with %v, want ErrDirectionChanged", err)
		}
	case <-time.After(stoppedWithin):
		t.Errorf("an applier of the old direction started after the reverse still runs after %s", stoppedWithin)
	}
	if ck, _, err := ReadCheckpoint(ctx, r.meta); err != nil || ck.Position == nil || ck.Position.TS != from {
		t.Fatalf("the stale applier moved the reverse's start point %v to %+v (%v)", from, ck.Position, err)
	}
}
