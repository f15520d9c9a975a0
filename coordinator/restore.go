package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/failpoint"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Server error codes that mean collMod cannot make an index change on this server, so the index is
// rebuilt instead: no collMod at all, or a collMod without that option (unique before 6.0).
var collModUnsupported = map[int32]bool{
	2:  true, // BadValue
	9:  true, // FailedToParse
	59: true, // CommandNotFound
	72: true, // InvalidOptions
}

// Server error codes a drop of an index that is already gone answers.
const (
	codeNamespaceNotFound = 26
	codeIndexNotFound     = 27
)

// ErrUniquenessViolated says the destination's documents break a uniqueness the source's index
// has. It is not transient: the commit fails at once.
var ErrUniquenessViolated = errors.New("the documents violate the index's uniqueness")

// RestoreDeferred puts back every index setting the sync left out on the destination (uniqueness,
// TTL expiry), as recorded in the catalog, and moves the records to the entries' Restored lists. It
// is idempotent: an index that already has its setting is skipped, and one that no longer exists
// (dropped on the source) is forgotten. It returns one line per change made.
//
// collMod changes an index in place where the server can (TTL everywhere, uniqueness on 6.0+, after
// prepareUnique); elsewhere the index is dropped and built again from the source's own spec, so it
// comes back exactly as the source has it (field order and number types). The rebuild is recorded
// in the catalog before the drop: a coordinator that dies between drop and build leaves its
// successor the record, and the successor builds the index whatever the destination shows. A
// uniqueness the data violates fails with ErrUniquenessViolated, the index built again in its
// sync-time form.
func RestoreDeferred(ctx context.Context, meta *metadata.DB, source, destination *mongo.Client, log *zap.Logger) ([]string, error) {
	return restorer{meta: meta, source: source, destination: destination, log: log}.restore(ctx)
}

// restorer changes index settings on the destination, recording each change in the catalog.
type restorer struct {
	meta                *metadata.DB
	source, destination *mongo.Client
	log                 *zap.Logger
	// afterDrop runs between an index's drop and its build (tests only: an error stands for a
	// coordinator that dies there).
	afterDrop func(ns string, rb metadata.IndexRebuild) error
	// guard runs each index change (a drop and build, a collMod) only while the coordinator still
	// holds its lease (coordinator.sideEffect); nil runs them unguarded.
	guard func(ctx context.Context, what string, fn func(context.Context) error) error
}

// record writes a catalog record of an index change (restored, deferred, rebuilt, forgotten)
// through r.guard: a coordinator deposed since its last index change must not record it, or it
// could undo its successor's record. A failed commit's undo, say, moves a restored setting back to
// deferred; a late "restored" from the old coordinator over it would have the next commit skip an
// index the destination holds without its uniqueness.
func (r restorer) record(ctx context.Context, what string, fn func(context.Context) error) error {
	return r.guarded(ctx, "recording "+what, fn)
}

// guarded runs fn through r.guard.
func (r restorer) guarded(ctx context.Context, what string, fn func(context.Context) error) error {
	if r.guard == nil {
		return fn(ctx)
	}
	return r.guard(ctx, what, fn)
}

func (r restorer) restore(ctx context.Context) ([]string, error) {
	entries, err := r.meta.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, e := range entries {
		if len(e.Deferred) == 0 && len(e.Rebuilding) == 0 {
			continue
		}
		lines, err := r.restoreEntry(ctx, e)
		done = append(done, lines...)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (r restorer) restoreEntry(ctx context.Context, e metadata.CatalogEntry) ([]string, error) {
	ns := namespace.Namespace{DB: e.DB, Coll: e.Coll}
	db := r.destination.Database(e.DB)
	changes := map[string]metadata.DeferredIndexChange{}
	for _, change := range e.Deferred {
		changes[change.Index] = change
	}
	var done []string
	// First the rebuilds a previous coordinator began: the catalog says what to build; the
	// destination may show the index gone, or still there as it was.
	finished := map[string]bool{}
	for _, rb := range e.Rebuilding {
		change, deferred := changes[rb.Index]
		if err := r.guarded(ctx, "rebuilding index "+rb.Index+" of "+ns.String(), func(ctx context.Context) error {
			return r.rebuild(ctx, ns, db, e.ID, rb)
		}); err != nil {
			return done, fmt.Errorf("rebuilding index %s of %s: %w", rb.Index, ns, err)
		}
		if rb.Deferring || !deferred {
			if err := r.record(ctx, "the rebuild of "+rb.Index, func(ctx context.Context) error { return r.meta.FinishRebuild(ctx, e.ID, rb.Index) }); err != nil {
				return done, err
			}
			continue
		}
		if err := r.markRestored(ctx, e.ID, change); err != nil {
			return done, err
		}
		finished[rb.Index] = true
		done = append(done, r.logRestored(ns, change, "rebuilt"))
	}

	dstSpecs, err := r.specs(ctx, r.destination, ns)
	if err != nil {
		return done, err
	}
	var srcSpecs map[string]bson.Raw
	for _, change := range e.Deferred {
		if finished[change.Index] {
			continue
		}
		spec, ok := dstSpecs[change.Index]
		if !ok {
			if srcSpecs == nil {
				if srcSpecs, err = r.specs(ctx, r.source, ns); err != nil {
					return done, err
				}
			}
			if src, onSource := srcSpecs[change.Index]; onSource && restored(src, change) {
				// Gone from the destination though the source has it: not dropped by the applier,
				// but lost to a rebuild whose record did not survive. Built as the source has it.
				want, err := buildableSpec(src)
				if err != nil {
					return done, err
				}
				if err := r.guarded(ctx, "rebuilding index "+change.Index+" of "+ns.String(), func(ctx context.Context) error {
					return r.rebuild(ctx, ns, db, e.ID, metadata.IndexRebuild{Index: change.Index, Spec: want})
				}); err != nil {
					return done, fmt.Errorf("rebuilding index %s of %s, missing on the destination: %w", change.Index, ns, err)
				}
				if err := r.markRestored(ctx, e.ID, change); err != nil {
					return done, err
				}
				done = append(done, r.logRestored(ns, change, "rebuilt, it was missing"))
				continue
			}
			// Dropped on the source during the sync, and so on the destination by the applier:
			// nothing to restore. (An index dropped by a rebuild has a rebuild record, above.)
			if err := r.record(ctx, "the drop of "+change.Index, func(ctx context.Context) error { return r.meta.ForgetDeferred(ctx, ns.String(), change.Index) }); err != nil {
				return done, err
			}
			continue
		}
		if restored(spec, change) {
			if err := r.markRestored(ctx, e.ID, change); err != nil {
				return done, err
			}
			continue
		}
		if srcSpecs == nil {
			if srcSpecs, err = r.specs(ctx, r.source, ns); err != nil {
				return done, err
			}
		}
		want, err := targetSpec(change, srcSpecs[change.Index], e.Indexes, spec)
		if err != nil {
			return done, err
		}
		var how string
		err = r.guarded(ctx, "restoring index "+change.Index+" of "+ns.String(), func(ctx context.Context) (err error) {
			how, err = r.restoreIndex(ctx, ns, db, e.ID, want, change)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("restoring %s on index %s of %s: %w", describeChange(change), change.Index, ns, err)
		}
		if err := r.markRestored(ctx, e.ID, change); err != nil {
			return done, err
		}
		done = append(done, r.logRestored(ns, change, how))
	}
	return done, nil
}

// markRestored records change as restored, while the coordinator holds its lease (see record).
func (r restorer) markRestored(ctx context.Context, id string, change metadata.DeferredIndexChange) error {
	return r.record(ctx, change.Index+" as restored", func(ctx context.Context) error { return r.meta.MarkRestored(ctx, id, change) })
}

func (r restorer) logRestored(ns namespace.Namespace, change metadata.DeferredIndexChange, how string) string {
	line := fmt.Sprintf("%s %s: %s (%s)", ns, change.Index, describeChange(change), how)
	r.log.Info("commit: restored an index setting", zap.String("change", line))
	return line
}

// specs lists ns's index specs on client by name.
func (r restorer) specs(ctx context.Context, client *mongo.Client, ns namespace.Namespace) (map[string]bson.Raw, error) {
	list, err := catalog.ListIndexes(ctx, client, ns)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bson.Raw, len(list))
	for _, spec := range list {
		out[spec.Lookup("name").StringValue()] = spec
	}
	return out, nil
}

// targetSpec is the spec commit builds for change: the source's index as the source lists it now
// (writes are stopped, so it is final), else as the catalog recorded it, provided it carries the
// setting; only for an index that neither has in that form (created and changed during the sync
// and since gone from the source) is the destination's spec given the setting.
func targetSpec(change metadata.DeferredIndexChange, source bson.Raw, cataloged []bson.Raw, destination bson.Raw) (bson.Raw, error) {
	for _, spec := range append([]bson.Raw{source}, cataloged...) {
		if spec != nil && spec.Lookup("name").StringValue() == change.Index && restored(spec, change) {
			return buildableSpec(spec)
		}
	}
	return metadata.RestoreIndexSpec(destination, change)
}

// buildableSpec is spec without the fields the server generates (the index version, which follows
// the server, and the namespace, gone since 4.4), everything else in its order and with its types.
func buildableSpec(spec bson.Raw) (bson.Raw, error) {
	elems, err := spec.Elements()
	if err != nil {
		return nil, err
	}
	var d bson.D
	for _, e := range elems {
		if e.Key() == "v" || e.Key() == "ns" {
			continue
		}
		d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return bson.Marshal(d)
}

// sameSpec reports whether two index specs are the same once the server's own fields are left out.
func sameSpec(a, b bson.Raw) bool {
	x, errA := buildableSpec(a)
	y, errB := buildableSpec(b)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// syncTimeSpec is spec in the form the sync builds during the sync: unique left out, TTL at its
// maximum (metadata.DestinationIndexSpec).
func syncTimeSpec(spec bson.Raw) (bson.Raw, error) {
	d, _, err := metadata.DestinationIndexSpec(spec)
	if err != nil {
		return nil, err
	}
	return bson.Marshal(d)
}

// restored reports whether the index spec already has the change's setting.
func restored(spec bson.Raw, change metadata.DeferredIndexChange) bool {
	if change.Unique && !metadata.Truthy(spec.Lookup("unique")) {
		return false
	}
	if change.ExpireAfterSeconds != nil {
		secs, ok := spec.Lookup("expireAfterSeconds").AsInt64OK()
		if !ok {
			f, isDouble := spec.Lookup("expireAfterSeconds").DoubleOK()
			secs, ok = int64(f), isDouble
		}
		if !ok || secs != *change.ExpireAfterSeconds {
			return false
		}
	}
	return true
}

func describeChange(change metadata.DeferredIndexChange) string {
	switch {
	case change.Unique && change.ExpireAfterSeconds != nil:
		return fmt.Sprintf("unique, expireAfterSeconds %d", *change.ExpireAfterSeconds)
	case change.Unique:
		return "unique"
	case change.ExpireAfterSeconds != nil:
		return fmt.Sprintf("expireAfterSeconds %d", *change.ExpireAfterSeconds)
	}
	return "nothing"
}

// restoreIndex gives the index of ns the spec want, with collMod or by rebuilding, and says which.
func (r restorer) restoreIndex(ctx context.Context, ns namespace.Namespace, db *mongo.Database, id string, want bson.Raw, change metadata.DeferredIndexChange) (string, error) {
	err := collModIndex(ctx, db, ns.Coll, want, change)
	var ce mongo.CommandError
	if err == nil {
		return "collMod", nil
	}
	if isUniquenessViolation(err) {
		return "", fmt.Errorf("%w: %v", ErrUniquenessViolated, err)
	}
	if !errors.As(err, &ce) || !collModUnsupported[ce.Code] {
		return "", err
	}
	return "rebuilt", r.rebuild(ctx, ns, db, id, metadata.IndexRebuild{Index: change.Index, Spec: want})
}

// collModIndex changes the index in place, with the setting's value as the source has it.
func collModIndex(ctx context.Context, db *mongo.Database, coll string, want bson.Raw, change metadata.DeferredIndexChange) error {
	run := func(opt bson.E) error {
		return db.RunCommand(ctx, bson.D{{Key: "collMod", Value: coll},
			{Key: "index", Value: bson.D{{Key: "name", Value: change.Index}, opt}}}).Err()
	}
	if change.ExpireAfterSeconds != nil {
		var secs any = *change.ExpireAfterSeconds
		if v, err := want.LookupErr("expireAfterSeconds"); err == nil {
			secs = v
		}
		if err := run(bson.E{Key: "expireAfterSeconds", Value: secs}); err != nil {
			return err
		}
	}
	if change.Unique {
		// MongoDB 6.0+: prepareUnique makes new duplicates fail, then the conversion checks the
		// existing documents.
		if err := run(bson.E{Key: "prepareUnique", Value: true}); err != nil {
			return err
		}
		if err := run(bson.E{Key: "unique", Value: true}); err != nil {
			return err
		}
	}
	return nil
}

// rebuild gives the index rb.Index of ns exactly the spec rb.Spec: it records the rebuild, drops the
// index (already gone is fine: a previous coordinator dropped it) and builds it. An index that has the
// spec already is left alone. If the build fails, the index is built again in its sync-time form, so
// that a failed commit leaves it usable by the applier, and the record goes.
func (r restorer) rebuild(ctx context.Context, ns namespace.Namespace, db *mongo.Database, id string, rb metadata.IndexRebuild) error {
	current, err := r.specs(ctx, r.destination, ns)
	if err != nil {
		return err
	}
	if spec, ok := current[rb.Index]; ok && sameSpec(spec, rb.Spec) {
		return nil
	}
	if err := r.meta.StartRebuild(ctx, id, rb); err != nil {
		return err
	}
	err = db.RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: ns.Coll}, {Key: "index", Value: rb.Index}}).Err()
	var ce mongo.CommandError
	if err != nil && !(errors.As(err, &ce) && (ce.Code == codeIndexNotFound || ce.Code == codeNamespaceNotFound)) {
		return fmt.Errorf("dropping it to rebuild: %w", err)
	}
	failpoint.Kill(failpoint.RestoreAfterDrop)
	if r.afterDrop != nil {
		if err := r.afterDrop(ns.String(), rb); err != nil {
			return err
		}
	}
	if err := createIndex(ctx, db, ns.Coll, rb.Spec); err != nil {
		if isUniquenessViolation(err) {
			err = fmt.Errorf("%w: %v", ErrUniquenessViolated, err)
		}
		if rb.Deferring {
			return err
		}
		fallback, ferr := syncTimeSpec(rb.Spec)
		if ferr == nil {
			ferr = createIndex(ctx, db, ns.Coll, fallback)
		}
		if ferr != nil {
			// The record stays: the next attempt builds the index again.
			return fmt.Errorf("%w; and building it again as the sync had it failed too: %v", err, ferr)
		}
		if ferr := r.meta.FinishRebuild(ctx, id, rb.Index); ferr != nil {
			return fmt.Errorf("%w; and %v", err, ferr)
		}
		return err
	}
	return nil
}

// isUniquenessViolation reports a build or conversion that failed because documents share a key:
// duplicate key (11000) on a build, CannotConvertIndexToUnique on a collMod conversion.
func isUniquenessViolation(err error) bool {
	if mongo.IsDuplicateKeyError(err) {
		return true
	}
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Name == "CannotConvertIndexToUnique"
}

func createIndex(ctx context.Context, db *mongo.Database, coll string, spec bson.Raw) error {
	want, err := buildableSpec(spec)
	if err != nil {
		return err
	}
	return db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{want}}}).Err()
}

// deferRestored undoes the restore of a commit that failed: every setting the commit put back (the
// entries' Restored lists) is taken out of the destination's index again, by the means the sync
// used (unique left out, TTL at its maximum), and recorded as deferred; a rebuild cut short is
// finished in the sync-time form. It returns one line per index changed.
func (r restorer) deferRestored(ctx context.Context) ([]string, error) {
	entries, err := r.meta.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, e := range entries {
		if len(e.Restored) == 0 && len(e.Rebuilding) == 0 {
			continue
		}
		ns := namespace.Namespace{DB: e.DB, Coll: e.Coll}
		db := r.destination.Database(e.DB)
		// A rebuild the failure cut short ends in the sync-time form; the setting stays deferred.
		for _, rb := range e.Rebuilding {
			if !rb.Deferring {
				spec, err := syncTimeSpec(rb.Spec)
				if err != nil {
					return done, err
				}
				rb = metadata.IndexRebuild{Index: rb.Index, Spec: spec, Deferring: true}
			}
			if err := r.guarded(ctx, "rebuilding index "+rb.Index+" of "+ns.String(), func(ctx context.Context) error {
				return r.rebuild(ctx, ns, db, e.ID, rb)
			}); err != nil {
				return done, fmt.Errorf("building index %s of %s as the sync had it: %w", rb.Index, ns, err)
			}
			if err := r.record(ctx, "the rebuild of "+rb.Index, func(ctx context.Context) error { return r.meta.FinishRebuild(ctx, e.ID, rb.Index) }); err != nil {
				return done, err
			}
		}
		current, err := r.specs(ctx, r.destination, ns)
		if err != nil {
			return done, err
		}
		for _, change := range e.Restored {
			if spec, ok := current[change.Index]; ok {
				var how string
				err := r.guarded(ctx, "deferring index "+change.Index+" of "+ns.String(), func(ctx context.Context) (err error) {
					how, err = r.deferIndex(ctx, ns, db, e.ID, spec, change)
					return err
				})
				if err != nil {
					return done, fmt.Errorf("taking %s out of index %s of %s again: %w", describeChange(change), change.Index, ns, err)
				}
				line := fmt.Sprintf("%s %s: %s deferred again (%s)", ns, change.Index, describeChange(change), how)
				r.log.Info("commit failed: deferred an index setting again", zap.String("change", line))
				done = append(done, line)
			}
			if err := r.record(ctx, change.Index+" as deferred", func(ctx context.Context) error { return r.meta.MarkDeferred(ctx, e.ID, change) }); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// deferIndex gives a restored index its sync-time form again: TTL by collMod where the server has
// it, uniqueness (which collMod cannot take away before MongoDB 7.1) by a rebuild.
func (r restorer) deferIndex(ctx context.Context, ns namespace.Namespace, db *mongo.Database, id string, spec bson.Raw, change metadata.DeferredIndexChange) (string, error) {
	if !change.Unique && change.ExpireAfterSeconds != nil {
		err := db.RunCommand(ctx, bson.D{{Key: "collMod", Value: ns.Coll}, {Key: "index", Value: bson.D{
			{Key: "name", Value: change.Index}, {Key: "expireAfterSeconds", Value: int64(metadata.TTLDisabledSeconds)}}}}).Err()
		var ce mongo.CommandError
		if err == nil {
			return "collMod", nil
		}
		if !errors.As(err, &ce) || !collModUnsupported[ce.Code] {
			return "", err
		}
	}
	want, err := syncTimeSpec(spec)
	if err != nil {
		return "", err
	}
	return "rebuilt", r.rebuild(ctx, ns, db, id, metadata.IndexRebuild{Index: change.Index, Spec: want, Deferring: true})
}
