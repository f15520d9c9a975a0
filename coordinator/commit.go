package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// maxCommitStepAttempts bounds the retries of the commit's steps before the destination is
// writable (block, catchUp, restore, verify): a step that fails this many times in a row (an error
// from a cluster, or the applier failing before the commit point) fails the commit, which unblocks
// the source and returns to RUNNING, instead of holding the source blocked for ever. Attempts are
// errorBackoff (2 s) apart and each may wait out the driver's server selection, so a step fails the
// commit after at least 18 s of failing without a break, long enough for a replica set election. A
// uniqueness the data violates is not retried at all.
const maxCommitStepAttempts = 10

// errApplierStopped says change event application stopped for good (a terminal applier error, such
// as an oplog that rolled over) before it reached the commit point: the commit fails at once.
var errApplierStopped = errors.New("change event application stopped for good before the commit point")

// boundedCommitSteps are the steps whose failures count towards maxCommitStepAttempts.
var boundedCommitSteps = map[string]bool{
	metadata.CommitStepBlock: true, metadata.CommitStepCatchUp: true,
	metadata.CommitStepRestore: true, metadata.CommitStepVerify: true,
}

// commit carries out one step of the cut-over and bounds its retries: a step that keeps failing, or
// a uniqueness the destination's documents violate, fails the commit (failCommit).
func (c *coordinator) commit(ctx context.Context, s metadata.Sync) (bool, error) {
	advanced, err := c.commitStep(ctx, s)
	if s.Commit == nil || !boundedCommitSteps[s.Commit.Step] || ctx.Err() != nil || errors.Is(err, metadata.ErrDeposed) {
		return advanced, err
	}
	if err == nil {
		if !advanced && s.Commit.FailedAttempts > 0 {
			// The step got past its failure and waits again (catchUp): a later failure counts from one.
			return false, c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "commit.failedAttempts", Value: 0}}}})
		}
		return advanced, nil
	}
	if errors.Is(err, errApplierStopped) {
		return true, c.failCommit(ctx, s, fmt.Sprintf("commit failed: %v; the sync is RUNNING again, but cannot be committed: "+
			"start a new sync", err))
	}
	if errors.Is(err, ErrUniquenessViolated) {
		return true, c.failCommit(ctx, s, fmt.Sprintf("commit failed: %v; the sync is RUNNING again, the index non-unique as during the sync; "+
			"resolve the duplicate keys on the destination, then call /commit again", err))
	}
	attempts := s.Commit.FailedAttempts + 1
	if attempts < maxCommitStepAttempts {
		if uerr := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "commit.failedAttempts", Value: attempts}}}}); uerr != nil {
			return false, fmt.Errorf("%w; and counting the attempt failed: %v", err, uerr)
		}
		return false, fmt.Errorf("the commit's %s step failed (attempt %d of %d): %w", s.Commit.Step, attempts, maxCommitStepAttempts, err)
	}
	return true, c.failCommit(ctx, s, fmt.Sprintf("commit failed: its %s step failed %d times in a row, the last time: %v; "+
		"the sync is RUNNING again; fix the cause, then call /commit again", s.Commit.Step, attempts, err))
}

// commitStep carries out one step of the cut-over (metadata.CommitStep*) and records the next. Each step
// can be redone by a new coordinator: blocking writes and taking the commit point again only moves the
// point later, restoring skips what is restored, and verifying again compares again.
func (c *coordinator) commitStep(ctx context.Context, s metadata.Sync) (bool, error) {
	source, destination := c.clusters(s)
	cm := s.Commit
	if cm == nil {
		return false, errors.New("the sync is COMMITTING without a commit record; call /commit again after a restart of the fleet")
	}
	switch cm.Step {
	case metadata.CommitStepFailing:
		return true, c.undoCommit(ctx, s)

	case metadata.CommitStepBlock:
		if s.Options.BlocksSource() {
			if err := c.sideEffect(ctx, "blocking user writes on the source", true, func(ctx context.Context) error {
				return SetUserWriteBlocking(ctx, source, true)
			}); err != nil {
				return false, fmt.Errorf("blocking user writes on the source: %w", err)
			}
		}
		// Taken after the block: every user write the source accepted is at or before it.
		point, err := clusterclock.Now(ctx, source)
		if err != nil {
			return false, err
		}
		c.Log.Info("commit: took the commit point", zap.String("point", fmtTS(point)), zap.Bool("sourceBlocked", s.Options.BlocksSource()))
		// A no-op oplog entry after the point moves a change stream's resume token past it at once;
		// on a quiet replica set it would otherwise wait for the server's periodic no-op (10 s).
		// Best effort: servers without the command, or users without the privilege, just wait.
		if err := source.Database("admin").RunCommand(ctx, bson.D{{Key: "appendOplogNote", Value: 1},
			{Key: "data", Value: bson.D{{Key: "msg", Value: "fleetsync commit point"}}}}).Err(); err != nil {
			c.Log.Debug("commit: no oplog note after the commit point", zap.Error(err))
		}
		return true, c.setCommit(ctx, metadata.CommitStepCatchUp, bson.E{Key: "commit.point", Value: point},
			bson.E{Key: "commit.sourceBlocked", Value: s.Options.BlocksSource()})

	case metadata.CommitStepCatchUp:
		ck, ok, err := applier.ReadCheckpoint(ctx, c.Meta)
		if err != nil {
			return false, err
		}
		if !ok || ck.Position == nil || ck.Position.TS.Before(cm.Point) {
			if ck.Terminal != "" {
				// No applier will read another event: waiting, or retrying, cannot help.
				return false, fmt.Errorf("%w: %s", errApplierStopped, ck.Terminal)
			}
			if ck.Error != "" {
				// Said in /progress (fleet.error) rather than waited on silently.
				return false, fmt.Errorf("the commit waits for the applier to reach the commit point, and the applier fails: %s", ck.Error)
			}
			return false, nil // the applier is still on its way to the commit point
		}
		if failed, err := c.writesAfterPoint(ctx, s, ck); failed || err != nil {
			return failed, err
		}
		c.Log.Info("commit: every event up to the commit point is applied")
		return true, c.setCommit(ctx, metadata.CommitStepRestore)

	case metadata.CommitStepRestore:
		restored, err := c.restorer(source, destination).restore(ctx)
		if err != nil {
			if len(restored) > 0 {
				// What this attempt did restore stays listed; the next attempt skips it.
				if uerr := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{
					{Key: "commit.restored", Value: append(cm.Restored, restored...)}}}}); uerr != nil {
					return false, fmt.Errorf("%w; and recording what was restored failed: %v", err, uerr)
				}
			}
			return false, err
		}
		next := metadata.CommitStepUnblock
		if s.Options.Verification {
			next = metadata.CommitStepVerify
		}
		return true, c.setCommit(ctx, next, bson.E{Key: "commit.restored", Value: append(cm.Restored, restored...)})

	case metadata.CommitStepVerify:
		return c.verify(ctx, s, source, destination)

	case metadata.CommitStepUnblock:
		if cm.DestinationPoint.IsZero() {
			// Last look for writes that reached the source after the commit point.
			ck, _, err := applier.ReadCheckpoint(ctx, c.Meta)
			if err != nil {
				return false, err
			}
			if failed, err := c.writesAfterPoint(ctx, s, ck); failed || err != nil {
				return failed, err
			}
			// The reverse's start point, taken and recorded while the destination's user writes
			// are still blocked: a user write the moment the block is lifted is after it, so a
			// reverse applies it. Recorded before the lift, so that a redone step reuses it
			// rather than taking a later one past writes already made (and skips the look above:
			// once the destination may be writable, the commit can no longer be failed).
			point, err := clusterclock.Now(ctx, destination)
			if err != nil {
				c.Log.Info("commit: the destination has no clock to reverse from; /reverse will refuse", zap.Error(err))
			} else if err := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "commit.destinationPoint", Value: point}}}}); err != nil {
				return false, err
			}
		}
		if s.Options.WriteBlocking == metadata.WriteBlockingDestinationOnly || s.Options.BlocksSource() {
			if err := c.sideEffect(ctx, "lifting the destination's write block", true, func(ctx context.Context) error {
				return SetUserWriteBlocking(ctx, destination, false)
			}); err != nil {
				return false, fmt.Errorf("lifting the destination's write block: %w", err)
			}
		}
		if c.AtCanWrite != nil {
			c.AtCanWrite(ctx)
		}
		c.Log.Info("commit: done; the destination accepts writes")
		if err := c.Meta.UpdateSync(ctx, c.Lease, bson.D{
			{Key: "$set", Value: bson.D{{Key: "state", Value: metadata.StateCommitted}, {Key: "commit.step", Value: metadata.CommitStepFinished}}},
			{Key: "$currentDate", Value: bson.D{{Key: "commit.committedAt", Value: true}}},
		}); err != nil {
			return false, err
		}
		// After COMMITTED, never before: until then a failing commit needs the records to undo
		// what it restored. Best effort: records left behind cost a later failed commit some work.
		if err := c.sideEffect(ctx, "forgetting the restored index settings", true, c.Meta.ClearRestored); err != nil {
			c.Log.Warn("commit: the restored index settings stay recorded", zap.Error(err))
		}
		// The spool, where an applier that caught up to the commit point through it stopped before
		// its switch to the live source (which clears it): nothing reads it after the commit.
		if err := c.sideEffect(ctx, "clearing the spool", true, func(ctx context.Context) error { return spool.Clear(ctx, c.Meta) }); err != nil {
			c.Log.Warn("commit: the spool stays in the metadata database", zap.Error(err))
		}
		return true, nil
	}
	return false, nil
}

// setCommit moves the commit to step, with more fields to set, under the coordinator lease. The new
// step starts with no failed attempts.
func (c *coordinator) setCommit(ctx context.Context, step string, set ...bson.E) error {
	return c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: append(bson.D{{Key: "commit.step", Value: step},
		{Key: "commit.failedAttempts", Value: 0}}, set...)}})
}

// writesAfterPoint fails the commit when the applier has applied a write to the sync's namespaces
// that the source accepted after the commit point: with write blocking on, something bypassed the
// block; without it, the application was not stopped. Either way the destination would miss what
// follows, so the sync goes back to RUNNING (the applier keeps applying) and the user is told.
func (c *coordinator) writesAfterPoint(ctx context.Context, s metadata.Sync, ck applier.Checkpoint) (bool, error) {
	if !ck.LastEventTS.After(s.Commit.Point) {
		return false, nil
	}
	why := "stop all writes to the synced namespaces on the source, wait for canCommit, then call /commit again"
	if s.Commit.SourceBlocked {
		why = "user write blocking was on, so a user with the bypassWriteBlockingMode privilege wrote to the source; " +
			"stop that writer, then call /commit again"
	}
	msg := fmt.Sprintf("commit failed: the source accepted writes after the commit point %s (the latest at %s); the sync is RUNNING again and applies them; %s",
		fmtTS(s.Commit.Point), fmtTS(ck.LastEventTS), why)
	return true, c.failCommit(ctx, s, msg)
}

// restorer changes the destination's index settings for the commit, each change only while this
// coordinator still holds its lease. Index builds are not bounded by the lease: they may take longer.
func (c *coordinator) restorer(source, destination *mongo.Client) restorer {
	return restorer{meta: c.Meta, source: source, destination: destination, log: c.Log, afterDrop: c.afterIndexDrop,
		guard: func(ctx context.Context, what string, fn func(context.Context) error) error {
			return c.sideEffect(ctx, what, false, fn)
		}}
}

// failCommit ends a commit that must not complete. It only records the decision (step failing,
// with msg): the undo runs as the failing step (see undoCommit), which every coordinator redoes
// until it is done. Running the undo here, before recording anything, would leave a half-done undo
// (the source already unblocked, indexes already deferred again) at the failed step, whose next
// attempt could then complete the commit with the source taking writes or the settings left out.
func (c *coordinator) failCommit(ctx context.Context, s metadata.Sync, msg string) error {
	c.Log.Error(msg)
	return c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{
		{Key: "commit.step", Value: metadata.CommitStepFailing},
		{Key: "commit.failure", Value: msg},
		{Key: "commit.failedAttempts", Value: 0},
	}}})
}

// undoCommit is the failing step: the source's write block is lifted wherever the sync blocks the
// source (whether or not the block step got as far as recording it: a block that took effect but
// answered with an error must not be left in place; lifting is idempotent), the index settings the
// commit restored are deferred again (the applier goes on applying events, which a unique index
// could stall on and a TTL index would race with), and the sync goes back to RUNNING with the
// reason in commit.failure. Each part is idempotent; an error leaves the step to be redone.
func (c *coordinator) undoCommit(ctx context.Context, s metadata.Sync) error {
	source, destination := c.clusters(s)
	if s.Options.BlocksSource() {
		if err := c.sideEffect(ctx, "lifting the source's write block", true, func(ctx context.Context) error {
			return SetUserWriteBlocking(ctx, source, false)
		}); err != nil {
			return fmt.Errorf("the commit failed, and lifting the source's write block failed (retried): %w", err)
		}
	}
	if _, err := c.restorer(source, destination).deferRestored(ctx); err != nil {
		return fmt.Errorf("the commit failed, and deferring the restored index settings again failed (retried): %w", err)
	}
	return c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: metadata.StateRunning},
		{Key: "commit.step", Value: metadata.CommitStepFailed},
		{Key: "commit.sourceBlocked", Value: false},
	}}})
}

// verify compares the sync's namespaces on both sides: the embedded verifier, run once the source is
// quiet and everything up to the commit point is applied, before the destination is writable.
func (c *coordinator) verify(ctx context.Context, s metadata.Sync, source, destination *mongo.Client) (bool, error) {
	// Verification times are this node's clock: they are shown, never compared across nodes.
	started := time.Now().UTC()
	if err := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "verification",
		Value: metadata.Verification{Phase: metadata.VerificationInProgress, StartedAt: started}}}}}); err != nil {
		return false, err
	}
	c.Log.Info("commit: verifying the destination against the source")
	report, err := verify.Run(ctx, source, destination, verify.Options{
		MetadataDB: c.Filter.MetadataDatabase(), IncludeRules: s.Options.Include, ExcludeRules: s.Options.Exclude,
	})
	if err != nil {
		return false, fmt.Errorf("verifying the destination: %w", err)
	}
	v := verificationOf(report)
	v.StartedAt, v.FinishedAt = started, time.Now().UTC()
	if err := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "verification", Value: v}}}}); err != nil {
		return false, err
	}
	if v.Phase == metadata.VerificationFailed {
		return true, c.failCommit(ctx, s, fmt.Sprintf("commit failed: verification found %d namespace(s) different (%s); "+
			"the sync is RUNNING again; see verification in /progress", v.DifferentNamespaces, strings.Join(v.Differences, "; ")))
	}
	c.Log.Info("commit: verification passed", zap.Int64("documents", v.DocumentsCompared))
	return true, c.setCommit(ctx, metadata.CommitStepUnblock)
}

// maxVerificationLines bounds the differences kept in the sync document.
const maxVerificationLines = 10

// verificationOf summarises a verifier report for the sync document.
func verificationOf(r *verify.Report) metadata.Verification {
	v := metadata.Verification{Phase: metadata.VerificationPassed, Namespaces: len(r.Namespaces), DocumentsCompared: r.DocumentsCompared()}
	for _, ns := range r.Namespaces {
		v.SourceDocuments += ns.SourceDocs
		v.DestinationDocuments += ns.DestinationDocs
		if ns.Equal() {
			continue
		}
		v.Phase = metadata.VerificationFailed
		v.DifferentNamespaces++
		if len(v.Differences) < maxVerificationLines {
			v.Differences = append(v.Differences, describeDifference(ns))
		}
	}
	return v
}

// describeDifference is one line about one namespace that differs.
func describeDifference(ns verify.NamespaceReport) string {
	var parts []string
	if ns.Collection != "" {
		parts = append(parts, "collection "+ns.Collection)
	}
	if ns.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d missing", ns.Missing))
	}
	if ns.Extra > 0 {
		parts = append(parts, fmt.Sprintf("%d extra", ns.Extra))
	}
	if ns.Different > 0 {
		parts = append(parts, fmt.Sprintf("%d different", ns.Different))
	}
	parts = append(parts, ns.OptionDiffs...)
	parts = append(parts, ns.IndexDiffs...)
	return ns.NS.String() + ": " + strings.Join(parts, ", ")
}

// reverse turns a COMMITTED sync around: the old destination becomes the source and the applier
// applies, to the old source, what was written to it since the commit. Nothing is copied again;
// the state returns to RUNNING in the apply phase, and a later /commit cuts over back.
func (c *coordinator) reverse(ctx context.Context, s metadata.Sync) error {
	if s.Commit == nil || s.Commit.DestinationPoint.IsZero() {
		return errors.New("cannot reverse: the commit did not record the destination's time at cut-over")
	}
	// Events from the new source are applied from the moment it became writable. The reset
	// deposes the applier of the old direction; a deposed coordinator must not make it, since it
	// would move the new direction's checkpoint back to this point.
	// What the forward commit restored is the old source's own index settings now: a failing
	// commit of the reversed sync must not take them out (the commit clears them too, best effort).
	if err := c.sideEffect(ctx, "forgetting the restored index settings", true, c.Meta.ClearRestored); err != nil {
		return err
	}
	if err := c.sideEffect(ctx, "pointing the applier at the old destination", true, func(ctx context.Context) error {
		return applier.ResetForReverse(ctx, c.Meta, s.Commit.DestinationPoint)
	}); err != nil {
		return err
	}
	c.Log.Info("reversing: the destination is now the source", zap.String("from", fmtTS(s.Commit.DestinationPoint)))
	return c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: metadata.StateRunning},
		{Key: "phase", Value: metadata.PhaseApply},
		{Key: "reversed", Value: !s.Reversed},
		{Key: "startAtOperationTime", Value: s.Commit.DestinationPoint},
		{Key: "options.verification", Value: false}, // as mongosync: reverse turns the embedded verifier off
	}}, {Key: "$unset", Value: bson.D{{Key: "commit", Value: ""}, {Key: "verification", Value: ""}}}})
}

// SetUserWriteBlocking turns user write blocking (setUserWriteBlockMode, MongoDB 6.0+) on or off.
func SetUserWriteBlocking(ctx context.Context, client *mongo.Client, on bool) error {
	return client.Database("admin").RunCommand(ctx, bson.D{{Key: "setUserWriteBlockMode", Value: 1}, {Key: "global", Value: on}}).Err()
}

func fmtTS(ts primitive.Timestamp) string { return fmt.Sprintf("%d.%d", ts.T, ts.I) }
