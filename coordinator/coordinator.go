// Package coordinator is the work one node does for the whole fleet while it holds the coordinator
// lease: it takes the source's start time, catalogs the source, splits every collection into
// partitions, creates the destination collections, watches the copy, and builds the indexes after
// the data. Every step can be redone from its start by a new coordinator, and every change of phase
// is fenced by the lease, so a coordinator that stalled and was replaced cannot move the sync back.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// Intervals of the coordinator's loop.
const (
	// DefaultPollInterval is how often the coordinator looks at the sync and its partitions (two
	// small reads); a phase ends at most this long after its work, and /start on any node reaches
	// the coordinator within it.
	DefaultPollInterval = 200 * time.Millisecond
	// errorBackoff is the pause after a failed step before it is tried again from its start.
	errorBackoff = 2 * time.Second
	// minSideEffectWindowDivisor: a side effect the sync document's fence cannot cover is started
	// only with at least TTL/5 of lease validity left (2 s of a 10 s lease), as the applier starts
	// a batch: renewals every TTL/3 keep more than that for a healthy holder, and one whose
	// renewals fail, or that wakes from a freeze, stops first.
	minSideEffectWindowDivisor = 5
)

// Config is what the coordinator needs. Lease is the coordinator lease, kept alive by the caller,
// whose context (passed to Run) ends when the lease is lost.
type Config struct {
	Source, Destination  *mongo.Client
	Meta                 *metadata.DB
	Partitions           *partition.Store
	Lease                lease.Lease
	Filter               namespace.Filter
	PartitionTargetBytes int64
	PollInterval         time.Duration
	Log                  *zap.Logger

	// Kept is Lease's Keeper (nil when the caller renews it otherwise, as tests do): side effects
	// outside the sync document start only within its validity and run under it as a deadline
	// (see sideEffect).
	Kept *lease.Kept
	// Stop, when closed, ends Run between two steps (a node stopping): the step in progress runs to
	// its end, so that no command of it is still running on a cluster when the lease is released.
	// Cancelling ctx instead cuts the step short. A nil Stop is never closed.
	Stop <-chan struct{}
	// AtCanWrite, when set, runs in the commit's unblock step the moment the destination's user
	// write block is lifted, before anything else: tests make the first user write at canWrite
	// there, which the sandbox (no write blocking) cannot otherwise place.
	AtCanWrite func(ctx context.Context)
	// afterIndexDrop runs between an index's drop and its build in the commit (tests only; see
	// restorer.afterDrop).
	afterIndexDrop func(ns string, rb metadata.IndexRebuild) error
}

// Run does the coordinator's work until ctx ends (the lease is lost or the node stops). It returns
// nil when ctx ended, and an error only when the lease was found lost by a fenced write.
func Run(ctx context.Context, cfg Config) error {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	c := &coordinator{Config: cfg}
	failing := false // an error is recorded in the sync document
	for {
		select {
		case <-cfg.Stop:
			return nil
		default:
		}
		wait := cfg.PollInterval
		advanced, err := c.step(ctx)
		if advanced {
			wait = 0 // the next phase's work can start now
		}
		if err == nil && failing && ctx.Err() == nil {
			// Got past the failure: /progress stops reporting it.
			if c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "error", Value: ""}}}}) == nil {
				failing = false
			}
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, metadata.ErrDeposed):
			return err
		case err != nil:
			cfg.Log.Warn("coordinator step failed; retrying", zap.Error(err), zap.Duration("in", errorBackoff))
			_ = c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "error", Value: err.Error()}}}})
			failing = true
			wait = errorBackoff
		}
		select {
		case <-ctx.Done():
			return nil
		case <-cfg.Stop:
			return nil // between steps: nothing this coordinator sent is still running
		case <-time.After(wait):
		}
	}
}

type coordinator struct {
	Config
	// reportedFailures is the count of given-up partitions last said in the sync's error.
	reportedFailures int64
}

// step does one round of the current phase's work, and says whether the phase changed.
func (c *coordinator) step(ctx context.Context) (bool, error) {
	s, err := c.Meta.Sync(ctx)
	if err != nil {
		return false, err
	}
	if s.Owner != c.Lease.Owner || s.Epoch != c.Lease.Epoch {
		// Taken over while this node was frozen or cut off: the sync document says so at no cost,
		// before any step (those of the commit included) acts on the clusters.
		return false, fmt.Errorf("the coordinator lease is held by %q at epoch %d: %w", s.Owner, s.Epoch, metadata.ErrDeposed)
	}
	switch s.State {
	case metadata.StateCommitting:
		return c.commit(ctx, s)
	case metadata.StateReversing:
		return true, c.reverse(ctx, s)
	case metadata.StateRunning:
	default:
		return false, nil
	}
	switch s.Phase {
	case metadata.PhaseCatalog:
		return true, c.catalog(ctx, s)
	case metadata.PhaseCopy:
		return c.watchCopy(ctx)
	case metadata.PhaseIndexes:
		return true, c.buildIndexes(ctx, s)
	}
	return false, nil
}

// clusters returns the sync's source and destination: cluster0 and cluster1, swapped once the sync
// was reversed.
func (c *coordinator) clusters(s metadata.Sync) (source, destination *mongo.Client) {
	if s.Reversed {
		return c.Destination, c.Source
	}
	return c.Source, c.Destination
}

// catalog takes the start time, records every source collection with its partitions, creates the
// destination collections, and opens the copy phase.
func (c *coordinator) catalog(ctx context.Context, s metadata.Sync) error {
	if s.StartAtOperationTime.IsZero() {
		// Before any document is read: every write after this point is replayed as a change event.
		ts, err := clusterclock.Now(ctx, c.Source)
		if err != nil {
			return err
		}
		if err := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "startAtOperationTime", Value: ts}}}}); err != nil {
			return err
		}
		c.Log.Info("recorded the source's start time", zap.Uint32("t", ts.T), zap.Uint32("i", ts.I))
	}

	if s.Options.WriteBlocking != metadata.WriteBlockingNone && s.Options.WriteBlocking != "" {
		// mongosync's write blocking: users cannot write to the destination until commit. The
		// fleet's own writes pass, since its user must hold bypassWriteBlockingMode.
		if err := c.sideEffect(ctx, "blocking user writes on the destination", true, func(ctx context.Context) error {
			return SetUserWriteBlocking(ctx, c.Destination, true)
		}); err != nil {
			return fmt.Errorf("blocking user writes on the destination (enableUserWriteBlocking %q): %w", s.Options.WriteBlocking, err)
		}
	}
	filter := s.Options.Filter(c.Filter.MetadataDatabase())
	colls, err := catalog.ListCollections(ctx, c.Source, filter)
	if err != nil {
		return err
	}
	// After the listing: an event up to this time may already be in the catalog (the applier
	// refuses a rename of such a time that it cannot tell by UUID).
	catalogAt, err := clusterclock.Now(ctx, c.Source)
	if err != nil {
		return err
	}
	done := map[string]metadata.CatalogEntry{}
	entries, err := c.Meta.Catalog(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Partitioned {
			done[e.DB+"."+e.Coll] = e
		}
	}

	var warnings []string
	var totalBytes, totalDocs int64
	var recorded []metadata.CatalogEntry
	for _, coll := range colls {
		ns := coll.NS.String()
		if coll.Type == catalog.TypeTimeseries {
			warnings = append(warnings, fmt.Sprintf("time series collection %s is not copied: fleetsync does not support time series collections yet", ns))
			continue
		}
		e, ok := done[ns]
		if !ok {
			if e, err = c.catalogCollection(ctx, coll, s.Options.BuildIndexes); err != nil {
				return err
			}
		}
		totalBytes += e.EstimatedBytes
		totalDocs += e.EstimatedDocs
		recorded = append(recorded, e)
	}
	for _, e := range recorded {
		if err := c.createCollection(ctx, e); err != nil {
			return err
		}
	}
	if s.Options.BuildIndexes == metadata.BuildIndexesBeforeCopy {
		if _, err := c.createIndexes(ctx, recorded); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sum, err := c.Partitions.Summarize(ctx)
	if err != nil {
		return err
	}
	c.Log.Info("catalog done; copy phase begins", zap.Int("collections", len(recorded)),
		zap.Int("partitions", sum.Total), zap.Int64("estimatedBytes", totalBytes))
	return c.Meta.UpdateSync(ctx, c.Lease, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "phase", Value: metadata.PhaseCopy},
			{Key: applier.FieldCatalogAtOperationTime, Value: catalogAt},
			{Key: "collections", Value: len(recorded)},
			{Key: "estimatedTotalBytes", Value: totalBytes},
			{Key: "estimatedTotalDocs", Value: totalDocs},
			{Key: "warnings", Value: warnings},
			{Key: "error", Value: ""},
		}},
		{Key: "$currentDate", Value: bson.D{{Key: "copyStartedAt", Value: true}}},
	})
}

// catalogCollection records one collection, its indexes and its partitions.
func (c *coordinator) catalogCollection(ctx context.Context, coll catalog.Collection, buildIndexes string) (metadata.CatalogEntry, error) {
	ns := coll.NS.String()
	e := metadata.CatalogEntry{
		ID: metadata.CatalogID(c.Meta.SyncID, ns), Sync: c.Meta.SyncID,
		DB: coll.NS.DB, Coll: coll.NS.Coll, Type: coll.Type, Options: coll.Options, UUID: coll.UUID,
	}
	var ranges []partition.Range
	if coll.HasDocuments() {
		indexes, err := catalog.ListIndexes(ctx, c.Source, coll.NS)
		if err != nil {
			return e, err
		}
		e.Indexes = indexes
		for _, spec := range indexes {
			_, change, err := metadata.DestinationIndexSpec(spec)
			if err != nil {
				return e, fmt.Errorf("%s: %w", ns, err)
			}
			if change != nil && buildIndexes != metadata.BuildIndexesNever {
				e.Deferred = append(e.Deferred, *change)
			}
		}
		src := c.Source.Database(coll.NS.DB).Collection(coll.NS.Coll)
		est, err := partition.EstimateSize(ctx, src)
		if err != nil {
			return e, err
		}
		e.EstimatedDocs, e.EstimatedBytes = est.Docs, est.Bytes
		if ranges, err = partition.Split(ctx, src, est, partition.SplitOptions{TargetBytes: c.PartitionTargetBytes}); err != nil {
			return e, fmt.Errorf("splitting %s into partitions: %w", ns, err)
		}
	}
	e.Partitions = len(ranges)
	err := c.sideEffect(ctx, "recording the partitions of "+ns, true, func(ctx context.Context) error {
		if err := c.Meta.PutCatalogEntry(ctx, e); err != nil {
			return err
		}
		if err := c.Partitions.ReplaceCollection(ctx, ns, coll.UUID, ranges); err != nil {
			return err
		}
		if err := c.Meta.MarkPartitioned(ctx, e.ID, len(ranges)); err != nil {
			return fmt.Errorf("recording the partitions of %s: %w", ns, err)
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	e.Partitioned = true
	c.Log.Debug("cataloged", zap.String("ns", ns), zap.Int("partitions", len(ranges)), zap.Int64("estimatedBytes", e.EstimatedBytes))
	return e, nil
}

// namespaceExists is the server's error code for creating a collection that exists.
const namespaceExists = 48

// createCollection creates e's collection (or view) on the destination with the source's options. A
// collection that exists already (a previous coordinator created it) is left as it is.
func (c *coordinator) createCollection(ctx context.Context, e metadata.CatalogEntry) error {
	cmd := bson.D{{Key: "create", Value: e.Coll}}
	if len(e.Options) > 0 {
		elems, err := e.Options.Elements()
		if err != nil {
			return fmt.Errorf("reading the options of %s.%s: %w", e.DB, e.Coll, err)
		}
		for _, el := range elems {
			if el.Key() == "autoIndexId" { // refused by MongoDB 4.0+ outside local
				continue
			}
			cmd = append(cmd, bson.E{Key: el.Key(), Value: el.Value()})
		}
	}
	err := c.sideEffect(ctx, "creating "+e.DB+"."+e.Coll, true, func(ctx context.Context) error {
		return c.Destination.Database(e.DB).RunCommand(ctx, cmd).Err()
	})
	var ce mongo.CommandError
	if errors.As(err, &ce) && ce.Code == namespaceExists {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating %s.%s on the destination: %w", e.DB, e.Coll, err)
	}
	return nil
}

// watchCopy ends the copy phase once every partition is done, and reports partitions that failed too
// often to be retried.
func (c *coordinator) watchCopy(ctx context.Context) (bool, error) {
	left, failed, err := c.Partitions.Unfinished(ctx)
	if err != nil {
		return false, err
	}
	if failed != c.reportedFailures {
		// Said once per change of the count: new failures, or a user's retry (which clears it).
		msg := ""
		if failed > 0 {
			msg = fmt.Sprintf("%d partition(s) failed %d times and are no longer retried; see fleet.failedPartitions in /progress, "+
				"fix the cause, then POST /api/v1/fleet/partitions/retry", failed, partition.MaxAttempts)
			c.Log.Error(msg)
		}
		if err := c.Meta.UpdateSync(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "error", Value: msg}}}}); err != nil {
			return false, err
		}
		c.reportedFailures = failed
		return false, nil
	}
	if left > 0 {
		return false, nil
	}
	// The source's time once every partition is copied: a rename before it of a collection copied
	// by name (no UUID) may have hidden documents from the copy, which the applier then refuses
	// loudly (applier.ErrRenamedWhileCopiedByName).
	copyDone, err := clusterclock.Now(ctx, c.Source)
	if err != nil {
		return false, err
	}
	c.Log.Info("all partitions copied; building indexes")
	return true, c.Meta.UpdateSync(ctx, c.Lease, bson.D{
		{Key: "$set", Value: bson.D{{Key: "phase", Value: metadata.PhaseIndexes}, {Key: applier.FieldCopyDoneAtOperationTime, Value: copyDone}}},
		{Key: "$currentDate", Value: bson.D{{Key: "copyDoneAt", Value: true}}},
	})
}

// buildIndexes builds every source index on the destination, with the deferred settings left out,
// skipping indexes a previous coordinator already built.
func (c *coordinator) buildIndexes(ctx context.Context, s metadata.Sync) error {
	built := 0
	if s.Options.BuildIndexes != metadata.BuildIndexesNever {
		entries, err := c.Meta.Catalog(ctx)
		if err != nil {
			return err
		}
		if built, err = c.createIndexes(ctx, entries); err != nil {
			return err
		}
	}
	c.Log.Info("indexes built; collection copy complete", zap.Int("indexes", built))
	return c.Meta.UpdateSync(ctx, c.Lease, bson.D{
		{Key: "$set", Value: bson.D{{Key: "phase", Value: metadata.PhaseApply}}},
		{Key: "$currentDate", Value: bson.D{{Key: "indexesDoneAt", Value: true}}},
	})
}

// createIndexes builds the entries' source indexes on the destination, with the deferred settings
// left out, skipping indexes that exist already; it returns how many it built.
func (c *coordinator) createIndexes(ctx context.Context, entries []metadata.CatalogEntry) (int, error) {
	built := 0
	for _, e := range entries {
		if e.Type == catalog.TypeView || e.Type == catalog.TypeTimeseries {
			continue
		}
		existing, err := catalog.ListIndexes(ctx, c.Destination, namespace.Namespace{DB: e.DB, Coll: e.Coll})
		if err != nil {
			return built, err
		}
		have := map[string]bool{}
		for _, spec := range existing {
			have[spec.Lookup("name").StringValue()] = true
		}
		var specs bson.A
		for _, src := range e.Indexes {
			name := src.Lookup("name").StringValue()
			if name == "_id_" || have[name] {
				continue
			}
			spec, _, err := metadata.DestinationIndexSpec(src)
			if err != nil {
				return built, err
			}
			specs = append(specs, spec)
		}
		if len(specs) == 0 {
			continue
		}
		// Not bounded by the lease's validity: a build may take longer than the TTL, is cancelled
		// with the lease's context when the lease is lost, and a successor skips what exists.
		err = c.sideEffect(ctx, "building indexes on "+e.DB+"."+e.Coll, false, func(ctx context.Context) error {
			return c.Destination.Database(e.DB).RunCommand(ctx, bson.D{{Key: "createIndexes", Value: e.Coll}, {Key: "indexes", Value: specs}}).Err()
		})
		if err != nil {
			return built, fmt.Errorf("building %d index(es) on %s.%s: %w", len(specs), e.DB, e.Coll, err)
		}
		built += len(specs)
	}
	return built, nil
}

// sideEffect runs fn, a write that the sync document's fence does not cover (catalog and partition
// documents, collections, indexes and write blocking on the clusters, the applier's checkpoint),
// only while this coordinator still holds its lease: a coordinator frozen and replaced must not
// rewrite partitions, the catalog or a commit's write blocks once it wakes up. Such writes cannot
// be made conditional on the lease in the same update (they touch other documents and clusters),
// so instead:
//   - on this node's monotonic clock, the lease must be valid for at least TTL/5 more (a process
//     that wakes from a freeze is already past it, before its Keeper has noticed);
//   - the server must still say the lease is held, live, at this epoch (read right before);
//   - when bounded, fn runs with the lease's validity as its deadline, so it is not sent after it.
//
// What remains is a write already on the wire when the lease lapses, as for the applier's data
// writes; every such write is redone or undone by a successor's same step. A refusal wraps
// metadata.ErrDeposed, which ends Run.
func (c *coordinator) sideEffect(ctx context.Context, what string, bounded bool, fn func(context.Context) error) error {
	if c.Kept != nil {
		until := c.Kept.ValidUntil()
		if left := time.Until(until); left < c.Lease.TTL/minSideEffectWindowDivisor {
			return fmt.Errorf("%s: the coordinator lease is valid for %s more, too little to start: %w", what, left.Round(time.Millisecond), metadata.ErrDeposed)
		}
		if bounded {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, until)
			defer cancel()
		}
	}
	if err := c.Meta.CheckLease(ctx, c.Lease); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fn(ctx)
}
