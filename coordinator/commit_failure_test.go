package coordinator_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// committing puts the sync in COMMITTING at step, with a commit point taken now on the source, and
// runs a coordinator (with hooks set by configure) until the test ends.
func committing(t *testing.T, ctx context.Context, src, dst *mongo.Client, meta *metadata.DB, step string, configure func(*coordinator.Config)) primitive.Timestamp {
	t.Helper()
	register(t, ctx, meta)
	point, err := clusterclock.Now(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	setSync(t, ctx, meta, bson.D{
		{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "options", Value: metadata.Options{WriteBlocking: metadata.WriteBlockingNone, BuildIndexes: metadata.BuildIndexesAfterCopy}},
		{Key: "commit", Value: metadata.Commit{Step: step, Point: point, RequestedAt: time.Now()}},
	})
	coord, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg := coordinator.Config{Source: src, Destination: dst, Meta: meta,
		Partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), "default"), Lease: coord,
		PollInterval: 20 * time.Millisecond, Log: zap.NewNop()}
	if configure != nil {
		configure(&cfg)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	t.Cleanup(func() { stop(); <-done })
	go func() {
		defer close(done)
		_ = coordinator.Run(cctx, cfg)
	}()
	return point
}

// waitCommitFailed waits for the commit to fail and returns the sync as it then is.
func waitCommitFailed(t *testing.T, ctx context.Context, meta *metadata.DB) metadata.Sync {
	t.Helper()
	var s metadata.Sync
	deadline, _ := ctx.Deadline()
	for {
		var err error
		if s, err = meta.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.State == metadata.StateCommitted {
			t.Fatalf("the commit completed: %+v", s.Commit)
		}
		if s.Commit != nil && s.Commit.Step == metadata.CommitStepFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the commit did not fail: the sync is %s at commit step %+v, error %q", s.State, s.Commit, s.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.State != metadata.StateRunning || s.Commit.Failure == "" {
		t.Fatalf("after the failed commit: state %s, commit %+v", s.State, s.Commit)
	}
	t.Logf("commit.failure: %s", s.Commit.Failure)
	return s
}

// A restore that keeps failing with an error that could be transient is retried a bounded number
// of times; then the commit fails like a late write does: RUNNING, the reason in commit.failure,
// and the settings already restored (email_1's uniqueness) taken out again, as the sync builds its
// indexes, with the catalog's deferred records back, so the applier applies events freely. The
// index whose rebuild kept failing (seen_1) is built again in its sync-time form, not left missing.
func TestCommitWhoseRestoreKeepsFailingEndsRunningWithSettingsDeferredAgain(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	unreachable := errors.New("connection reset by peer (injected)")
	attempts := 0
	committing(t, ctx, src, dst, meta, metadata.CommitStepRestore, func(cfg *coordinator.Config) {
		coordinator.SetAfterIndexDrop(cfg, func(ns string, rb metadata.IndexRebuild) error {
			if rb.Index == "seen_1" && !rb.Deferring {
				attempts++
				return unreachable
			}
			return nil
		})
	})
	s := waitCommitFailed(t, ctx, meta)
	if !strings.Contains(s.Commit.Failure, "restore step failed 10 times") || !strings.Contains(s.Commit.Failure, unreachable.Error()) {
		t.Errorf("commit.failure does not say which step failed, how often and why: %q", s.Commit.Failure)
	}
	if strings.Join(s.Commit.Restored, "; ") != "crm.people email_1: unique (rebuilt)" {
		t.Errorf("commit.restored %q; want the setting restored before the failure listed", s.Commit.Restored)
	}
	if attempts != coordinator.MaxCommitStepAttempts {
		t.Errorf("the failing rebuild was attempted %d times, want %d", attempts, coordinator.MaxCommitStepAttempts)
	}

	email, seen := indexSpec(t, dst, "crm.people", "email_1"), indexSpec(t, dst, "crm.people", "seen_1")
	if email == nil || metadata.Truthy(email.Lookup("unique")) {
		t.Errorf("email_1 after the failed commit is %v; want it there and not unique, as during the sync", email)
	}
	if seen == nil || seen.Lookup("expireAfterSeconds").AsInt64() != metadata.TTLDisabledSeconds {
		t.Errorf("seen_1 after the failed commit is %v; want it there with the sync's expireAfterSeconds", seen)
	}
	entries, err := meta.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deferred := map[string]string{}
	for _, d := range entries[0].Deferred {
		deferred[d.Index] = fmtChange(d)
	}
	if len(entries) != 1 || deferred["email_1"] != "unique" || deferred["seen_1"] != "ttl 3600" || len(deferred) != 2 ||
		len(entries[0].Restored) != 0 || len(entries[0].Rebuilding) != 0 {
		t.Fatalf("the catalog after the failed commit: deferred %v, restored %+v, rebuilding %+v", deferred, entries[0].Restored, entries[0].Rebuilding)
	}
}

// A uniqueness the destination's documents violate is not retried: the commit fails at its first
// attempt, with the index as the sync had it.
func TestCommitFailsAtOnceOnAUniquenessTheDataViolates(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	if _, err := dst.Database("crm").Collection("people").InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	committing(t, ctx, src, dst, meta, metadata.CommitStepRestore, nil)
	s := waitCommitFailed(t, ctx, meta)
	if !strings.Contains(s.Commit.Failure, "restoring unique on index email_1 of crm.people") || s.Error != "" {
		t.Errorf("commit.failure %q, error %q", s.Commit.Failure, s.Error)
	}
	if took := time.Since(started); took > 2*time.Second {
		t.Errorf("the commit took %s to fail; a uniqueness violation must not be retried", took)
	}
	if email := indexSpec(t, dst, "crm.people", "email_1"); email == nil || metadata.Truthy(email.Lookup("unique")) {
		t.Errorf("email_1 after the failed commit is %v; want it there and not unique", email)
	}
}

// An applier that keeps failing before the commit point fails the commit after the bound, instead
// of holding it in COMMITTING for ever.
func TestCommitWhoseApplierKeepsFailingEndsRunning(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	// The applier's checkpoint, as a failing applier leaves it: before the commit point, with its error.
	if _, err := meta.Collection(metadata.CollCheckpoints).InsertOne(ctx, bson.D{{Key: "_id", Value: "default"},
		{Key: "position", Value: applier.Position{TS: primitive.Timestamp{T: 1, I: 1}}},
		{Key: "error", Value: "applying a batch to the destination: server selection timeout (injected)"}}); err != nil {
		t.Fatal(err)
	}
	committing(t, ctx, src, dst, meta, metadata.CommitStepCatchUp, nil)
	s := waitCommitFailed(t, ctx, meta)
	if !strings.Contains(s.Commit.Failure, "catchUp step failed 10 times") || !strings.Contains(s.Commit.Failure, "server selection timeout (injected)") {
		t.Errorf("commit.failure %q", s.Commit.Failure)
	}
}

// An applier that stopped for good (its resume point fell off the oplog) while the commit waited
// for it fails the commit at once, rather than after the bound of retries: nothing can get it to the
// commit point.
func TestCommitWhoseApplierStoppedForGoodFailsAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	const terminal = "the source's oplog no longer holds the applier's resume point (injected)"
	if _, err := meta.Collection(metadata.CollCheckpoints).InsertOne(ctx, bson.D{{Key: "_id", Value: "default"},
		{Key: "position", Value: applier.Position{TS: primitive.Timestamp{T: 1, I: 1}}},
		{Key: "error", Value: terminal}, {Key: "terminal", Value: terminal}}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	committing(t, ctx, src, dst, meta, metadata.CommitStepCatchUp, nil)
	s := waitCommitFailed(t, ctx, meta)
	if !strings.Contains(s.Commit.Failure, "stopped for good") || !strings.Contains(s.Commit.Failure, terminal) ||
		strings.Contains(s.Commit.Failure, "10 times") {
		t.Errorf("commit.failure %q; want the terminal error, at the first attempt", s.Commit.Failure)
	}
	if took := time.Since(started); took > 10*time.Second {
		t.Errorf("the commit failed after %s; want it at the first look at the checkpoint", took.Round(time.Second))
	}
}

func fmtChange(d metadata.DeferredIndexChange) string {
	var parts []string
	if d.Unique {
		parts = append(parts, "unique")
	}
	if d.ExpireAfterSeconds != nil {
		parts = append(parts, "ttl "+itoa(*d.ExpireAfterSeconds))
	}
	return strings.Join(parts, " ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A commit that completes forgets what it restored: nothing is left for a later failed commit (a
// reversed sync's, whose destination is the old source) to take out of the indexes again.
func TestCompletedCommitForgetsWhatItRestored(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	// An applier that caught up to the commit point through the spool stops at COMMITTED before
	// its switch to the live source would have cleared it: the commit clears it.
	sp := spool.Open(meta, 0)
	if err := sp.Append(ctx, []spool.Entry{sp.NewEntry(spool.KindOplog, spool.Position{TS: primitive.Timestamp{T: 1, I: 1}}, bson.Raw(mustMarshal(t, bson.D{{Key: "op", Value: "n"}})))}); err != nil {
		t.Fatal(err)
	}
	committing(t, ctx, src, dst, meta, metadata.CommitStepRestore, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := meta.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := meta.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		spooled, err := meta.Collection(metadata.CollSpool).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if s.State == metadata.StateCommitted && len(entries) == 1 && len(entries[0].Restored) == 0 && spooled == 0 {
			if len(s.Commit.Restored) == 0 || len(entries[0].Deferred) != 0 {
				t.Fatalf("committed with restored %q and catalog deferred %v; want settings restored and none deferred", s.Commit.Restored, entries[0].Deferred)
			}
			return
		}
		if s.Commit != nil && s.Commit.Step == metadata.CommitStepFailed {
			t.Fatalf("the commit failed: %s", s.Commit.Failure)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the commit: state %s, catalog %+v, %d spool entries; want COMMITTED with no restored records and no spool left", s.State, entries, spooled)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A failed commit whose undo fails part-way is not run again as the step that failed: once the
// failure is recorded, only the undo is redone, until the sync is RUNNING with the settings deferred
// again. Here the restore keeps failing until the commit fails, the first attempt at the undo fails
// too, and from then on the restore would succeed: the commit must still end failed, not complete.
func TestFailedCommitWhoseUndoFailsOnceStillEndsFailed(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	var mu sync.Mutex
	restoreFailures, undoFailures := 0, 0
	committing(t, ctx, src, dst, meta, metadata.CommitStepRestore, func(cfg *coordinator.Config) {
		coordinator.SetAfterIndexDrop(cfg, func(ns string, rb metadata.IndexRebuild) error {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case rb.Index == "seen_1" && !rb.Deferring && restoreFailures < coordinator.MaxCommitStepAttempts:
				restoreFailures++
				return errors.New("connection reset by peer (injected into the restore)")
			case rb.Deferring && undoFailures == 0:
				undoFailures++
				return errors.New("connection reset by peer (injected into the undo)")
			}
			return nil
		})
	})
	s := waitCommitFailed(t, ctx, meta)
	if !strings.Contains(s.Commit.Failure, "restore step failed 10 times") {
		t.Errorf("commit.failure %q", s.Commit.Failure)
	}
	mu.Lock()
	defer mu.Unlock()
	if undoFailures != 1 {
		t.Errorf("the undo failed %d times, want the injected once", undoFailures)
	}
	email := indexSpec(t, dst, "crm.people", "email_1")
	if email == nil || metadata.Truthy(email.Lookup("unique")) {
		t.Errorf("email_1 after the failed commit is %v; want it non-unique, as during the sync", email)
	}
}

// A redone unblock step keeps the reverse's start point recorded before the destination's block was
// lifted, rather than taking a later one past the writes users made since.
func TestRedoneUnblockKeepsTheRecordedReverseStartPoint(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	recorded := primitive.Timestamp{T: 1700000000, I: 7} // taken by the attempt that died after the lift
	committing(t, ctx, src, dst, meta, metadata.CommitStepUnblock, func(cfg *coordinator.Config) {
		setSync(t, ctx, meta, bson.D{{Key: "commit.destinationPoint", Value: recorded}})
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := meta.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == metadata.StateCommitted {
			if !s.Commit.DestinationPoint.Equal(recorded) {
				t.Fatalf("the redone unblock moved the reverse's start point from %v to %v", recorded, s.Commit.DestinationPoint)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sync is %s at %+v; want COMMITTED", s.State, s.Commit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A failed commit of a sync that blocks the source lifts the source's block even where the block
// step did not get to record it (the block took effect, but its answer was an error): a source left
// blocked while the sync says RUNNING is an application outage. The sandbox has no write blocking,
// so the lift is checked on the wire.
func TestFailedCommitLiftsASourceBlockItDidNotRecord(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sentToSource := sandboxtest.NewCommands()
	src := sandboxtest.ConnectWith(t, sandboxtest.Server(t, true), mongoconn.Options{Monitor: sentToSource.Monitor()})
	dst := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	setSync(t, ctx, meta, bson.D{
		{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "options", Value: metadata.Options{WriteBlocking: metadata.WriteBlockingBoth, BuildIndexes: metadata.BuildIndexesAfterCopy}},
		{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepCatchUp, Point: primitive.Timestamp{T: 10, I: 1}, SourceBlocked: false}},
	})
	// The commit fails at once: change event application stopped for good.
	const terminal = "the source's oplog no longer holds the applier's resume point (injected)"
	if _, err := meta.Collection(metadata.CollCheckpoints).InsertOne(ctx, bson.D{{Key: "_id", Value: "default"},
		{Key: "position", Value: applier.Position{TS: primitive.Timestamp{T: 1, I: 1}}}, {Key: "terminal", Value: terminal}}); err != nil {
		t.Fatal(err)
	}
	l, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = coordinator.Run(runCtx, coordinator.Config{Source: src, Destination: dst, Meta: meta,
			Partitions: partition.NewStore(meta.Collection(metadata.CollPartitions), "default"), Lease: l,
			PollInterval: 20 * time.Millisecond, Log: zap.NewNop()})
	}()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, cmd := range sentToSource.Sent("setUserWriteBlockMode", "admin", "") {
			if on, ok := cmd.Body.Lookup("global").BooleanOK(); ok && !on {
				return
			}
		}
		if time.Now().After(deadline) {
			s, _ := meta.Sync(ctx)
			t.Fatalf("no setUserWriteBlockMode {global: false} sent to the source; the sync is %s at %+v", s.State, s.Commit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
