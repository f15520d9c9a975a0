package coordinator

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/catalog"
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

// RestoreDeferred puts back every index setting the sync left out on the destination (uniqueness,
// TTL expiry), as recorded in the catalog, and clears the records. It is idempotent: an index that
// already has its setting, or no longer exists, is skipped. It returns one line per change made.
//
// collMod changes an index in place where the server can (TTL everywhere, uniqueness on 6.0+, after
// prepareUnique); elsewhere the index is dropped and built again with the setting. A uniqueness the
// data violates fails the commit, loudly, before the destination is writable.
func RestoreDeferred(ctx context.Context, meta *metadata.DB, destination *mongo.Client, log *zap.Logger) ([]string, error) {
	entries, err := meta.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, e := range entries {
		if len(e.Deferred) == 0 {
			continue
		}
		ns := namespace.Namespace{DB: e.DB, Coll: e.Coll}
		specs, err := catalog.ListIndexes(ctx, destination, ns)
		if err != nil {
			return done, err
		}
		byName := map[string]bson.Raw{}
		for _, spec := range specs {
			byName[spec.Lookup("name").StringValue()] = spec
		}
		for _, change := range e.Deferred {
			spec, ok := byName[change.Index]
			if !ok || restored(spec, change) {
				continue
			}
			how, err := restoreIndex(ctx, destination.Database(e.DB), e.Coll, spec, change)
			if err != nil {
				return done, fmt.Errorf("restoring %s on index %s of %s: %w", describeChange(change), change.Index, ns, err)
			}
			line := fmt.Sprintf("%s %s: %s (%s)", ns, change.Index, describeChange(change), how)
			log.Info("commit: restored an index setting", zap.String("change", line))
			done = append(done, line)
		}
		if err := meta.ClearDeferred(ctx, e.ID); err != nil {
			return done, err
		}
	}
	return done, nil
}

// restored reports whether the destination index spec already has the change's setting.
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

// restoreIndex applies change to the index spec of db.coll, with collMod or by rebuilding, and says
// which.
func restoreIndex(ctx context.Context, db *mongo.Database, coll string, spec bson.Raw, change metadata.DeferredIndexChange) (string, error) {
	err := collModIndex(ctx, db, coll, change)
	var ce mongo.CommandError
	if err == nil {
		return "collMod", nil
	}
	if !errors.As(err, &ce) || !collModUnsupported[ce.Code] {
		return "", err
	}
	return "rebuilt", rebuildIndex(ctx, db, coll, spec, change)
}

// collModIndex changes the index in place.
func collModIndex(ctx context.Context, db *mongo.Database, coll string, change metadata.DeferredIndexChange) error {
	run := func(opt bson.E) error {
		return db.RunCommand(ctx, bson.D{{Key: "collMod", Value: coll},
			{Key: "index", Value: bson.D{{Key: "name", Value: change.Index}, opt}}}).Err()
	}
	if change.ExpireAfterSeconds != nil {
		if err := run(bson.E{Key: "expireAfterSeconds", Value: *change.ExpireAfterSeconds}); err != nil {
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

// rebuildIndex drops the index and builds it again with the setting. If the new build fails (a
// uniqueness the documents violate), the index is built again as it was, so that a failed commit
// leaves the destination as the sync had it.
func rebuildIndex(ctx context.Context, db *mongo.Database, coll string, spec bson.Raw, change metadata.DeferredIndexChange) error {
	want, err := metadata.RestoreIndexSpec(spec, change)
	if err != nil {
		return err
	}
	if _, err := db.Collection(coll).Indexes().DropOne(ctx, change.Index); err != nil {
		return fmt.Errorf("dropping it to rebuild: %w", err)
	}
	if err := createIndex(ctx, db, coll, want); err != nil {
		if rerr := createIndex(ctx, db, coll, spec); rerr != nil {
			return fmt.Errorf("%w; and building it again as it was failed too: %v", err, rerr)
		}
		return err
	}
	return nil
}

func createIndex(ctx context.Context, db *mongo.Database, coll string, spec bson.Raw) error {
	elems, err := spec.Elements()
	if err != nil {
		return err
	}
	var d bson.D
	for _, e := range elems {
		if e.Key() == "v" || e.Key() == "ns" {
			continue
		}
		d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: bson.A{d}}}).Err()
}
