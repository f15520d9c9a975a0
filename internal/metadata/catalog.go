package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// ttlDisabledSeconds is the expireAfterSeconds a TTL index gets on the destination during the sync:
// the largest value MongoDB accepts (about 68 years), so the destination never expires a document by
// itself. Expiry on the source reaches the destination as delete events; commit restores the value.
const ttlDisabledSeconds = 2147483647

// CatalogEntry is one source collection as the coordinator recorded it, with what the sync changed on
// the destination and commit must restore. _id is "<sync>/<db>.<coll>".
type CatalogEntry struct {
	ID      string   `bson:"_id"`
	Sync    string   `bson:"sync"`
	DB      string   `bson:"db"`
	Coll    string   `bson:"coll"`
	Type    string   `bson:"type"`
	Options bson.Raw `bson:"options,omitempty"`
	// UUID is the source collection's UUID when cataloged (listCollections' info.uuid; empty where
	// the server reports none). Workers read the collection's partitions by it, and the applier tells
	// by it which collection an event of the copy window concerns (docs/lifecycle.md, "DDL during
	// the copy").
	UUID primitive.Binary `bson:"uuid,omitempty"`
	// Indexes are the source's index specs, _id index included, as listIndexes returned them.
	Indexes []bson.Raw `bson:"indexes"`
	// Deferred lists the index settings left out on the destination until commit.
	Deferred []DeferredIndexChange `bson:"deferred,omitempty"`
	// Restored lists the deferred settings a commit has put back. A commit that fails afterwards
	// takes them out again (and moves them back to Deferred), so that the applier, which runs on,
	// never stalls on a uniqueness or has documents expired under it.
	Restored []DeferredIndexChange `bson:"restored,omitempty"`
	// Rebuilding lists the indexes being dropped and built again, each with the exact spec to build.
	// A record is written before the drop and removed after the build, so a coordinator that dies in
	// between leaves its successor what to build: the destination alone would show nothing.
	Rebuilding []IndexRebuild `bson:"rebuilding,omitempty"`

	EstimatedDocs  int64 `bson:"estimatedDocs"`
	EstimatedBytes int64 `bson:"estimatedBytes"`
	Partitions     int   `bson:"partitions"`
	// Partitioned is set once all of this collection's partitions are written; a new coordinator
	// re-splits collections without it.
	Partitioned bool `bson:"partitioned"`
}

// DeferredIndexChange is an index setting the sync leaves out on the destination, for commit to
// restore: uniqueness (events applied out of order across documents could collide transiently) and
// a TTL's expireAfterSeconds (the destination must not expire documents the source still has).
type DeferredIndexChange struct {
	Index              string `bson:"index" json:"index"`
	Unique             bool   `bson:"unique,omitempty" json:"unique,omitempty"`
	ExpireAfterSeconds *int64 `bson:"expireAfterSeconds,omitempty" json:"expireAfterSeconds,omitempty"`
}

// IndexRebuild is an index dropped to be built again with Spec (listIndexes' shape, version and
// namespace fields left out). Deferring marks a rebuild into the sync-time form (unique left out, TTL
// at its maximum) for a commit that failed; otherwise Spec is the source's index, restored by commit.
type IndexRebuild struct {
	Index     string   `bson:"index"`
	Spec      bson.Raw `bson:"spec"`
	Deferring bool     `bson:"deferring,omitempty"`
}

// CatalogID is the _id of ns's catalog entry in sync syncID.
func CatalogID(syncID, ns string) string { return syncID + "/" + ns }

// DestinationIndexSpec returns the spec to build on the destination during the sync for the source
// index spec src, and the change to restore at commit (nil when there is none). The version and
// namespace fields are dropped so the destination server picks its own.
func DestinationIndexSpec(src bson.Raw) (bson.D, *DeferredIndexChange, error) {
	elems, err := src.Elements()
	if err != nil {
		return nil, nil, fmt.Errorf("reading an index spec: %w", err)
	}
	var spec bson.D
	change := &DeferredIndexChange{}
	for _, e := range elems {
		switch e.Key() {
		case "v", "ns", "background":
			continue
		case "name":
			change.Index = e.Value().StringValue()
		case "unique":
			if Truthy(e.Value()) {
				change.Unique = true
				continue
			}
		case "expireAfterSeconds":
			secs, ok := e.Value().AsInt64OK()
			if !ok {
				if f, isDouble := e.Value().DoubleOK(); isDouble {
					secs, ok = int64(f), true
				}
			}
			if ok {
				change.ExpireAfterSeconds = &secs
				spec = append(spec, bson.E{Key: "expireAfterSeconds", Value: int64(ttlDisabledSeconds)})
				continue
			}
		}
		spec = append(spec, bson.E{Key: e.Key(), Value: e.Value()})
	}
	if !change.Unique && change.ExpireAfterSeconds == nil {
		return spec, nil, nil
	}
	return spec, change, nil
}

// RestoreIndexSpec applies change to a destination index spec, giving what it will be after commit;
// the verifier uses it to accept the sync's deliberate differences before commit.
func RestoreIndexSpec(dst bson.Raw, change DeferredIndexChange) (bson.Raw, error) {
	elems, err := dst.Elements()
	if err != nil {
		return nil, err
	}
	var out bson.D
	for _, e := range elems {
		switch {
		case e.Key() == "unique" && change.Unique:
			continue
		case e.Key() == "expireAfterSeconds" && change.ExpireAfterSeconds != nil:
			continue
		}
		out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
	}
	if change.Unique {
		out = append(out, bson.E{Key: "unique", Value: true})
	}
	if change.ExpireAfterSeconds != nil {
		out = append(out, bson.E{Key: "expireAfterSeconds", Value: *change.ExpireAfterSeconds})
	}
	return bson.Marshal(out)
}

// Catalog reads every catalog entry of the sync, in namespace order.
func (m *DB) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	cur, err := m.Collection(CollCatalog).Find(ctx, bson.D{{Key: "sync", Value: m.SyncID}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading the catalog of sync %q: %w", m.SyncID, err)
	}
	var out []CatalogEntry
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading the catalog of sync %q: %w", m.SyncID, err)
	}
	return out, nil
}

// PutCatalogEntry writes e (replacing a previous entry of the same namespace).
func (m *DB) PutCatalogEntry(ctx context.Context, e CatalogEntry) error {
	_, err := m.Collection(CollCatalog).ReplaceOne(ctx, bson.D{{Key: "_id", Value: e.ID}}, e, options.Replace().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("recording %s.%s in the catalog: %w", e.DB, e.Coll, err)
	}
	return nil
}

// MarkPartitioned records that all of the entry's partitions are written.
func (m *DB) MarkPartitioned(ctx context.Context, id string, partitions int) error {
	_, err := m.Collection(CollCatalog).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "partitioned", Value: true}, {Key: "partitions", Value: partitions}}}})
	return err
}

// AddDeferred records an index setting the applier left out on the destination (an index created or
// modified on the source during the sync), for commit to restore. The namespace's catalog entry is
// created when the collection appeared during the sync.
func (m *DB) AddDeferred(ctx context.Context, db, coll string, change DeferredIndexChange) error {
	id := CatalogID(m.SyncID, db+"."+coll)
	// Replace an earlier record of the same index: the latest change wins.
	_, err := m.Collection(CollCatalog).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "deferred", Value: bson.D{{Key: "index", Value: change.Index}}}}}})
	if err != nil {
		return fmt.Errorf("recording a deferred index change of %s.%s: %w", db, coll, err)
	}
	_, err = m.Collection(CollCatalog).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
		{Key: "$setOnInsert", Value: bson.D{{Key: "sync", Value: m.SyncID}, {Key: "db", Value: db}, {Key: "coll", Value: coll}, {Key: "type", Value: "collection"}}},
		{Key: "$push", Value: bson.D{{Key: "deferred", Value: change}}},
	}, options.Update().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("recording a deferred index change of %s.%s: %w", db, coll, err)
	}
	return nil
}

// MoveCatalogEntry follows a rename on the source: the entry of from (if any) becomes to's, so that
// what commit must restore follows the collection.
func (m *DB) MoveCatalogEntry(ctx context.Context, from, to string) error {
	var e CatalogEntry
	err := m.Collection(CollCatalog).FindOne(ctx, bson.D{{Key: "_id", Value: CatalogID(m.SyncID, from)}}).Decode(&e)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the catalog entry of %s: %w", from, err)
	}
	db, coll, _ := strings.Cut(to, ".")
	if db != e.DB {
		// A rename across databases copies the collection into a new one, with a new UUID.
		e.UUID = primitive.Binary{}
	}
	e.ID, e.DB, e.Coll = CatalogID(m.SyncID, to), db, coll
	if err := m.PutCatalogEntry(ctx, e); err != nil {
		return err
	}
	_, err = m.Collection(CollCatalog).DeleteOne(ctx, bson.D{{Key: "_id", Value: CatalogID(m.SyncID, from)}})
	return err
}

// ForgetCatalogEntry follows a drop on the source: what commit would have restored on ns no longer
// applies (a collection created again under the name gets its own record).
func (m *DB) ForgetCatalogEntry(ctx context.Context, ns string) error {
	if _, err := m.Collection(CollCatalog).DeleteOne(ctx, bson.D{{Key: "_id", Value: CatalogID(m.SyncID, ns)}}); err != nil {
		return fmt.Errorf("forgetting the catalog entry of %s: %w", ns, err)
	}
	return nil
}

// ForgetCatalogDatabase follows a dropDatabase on the source.
func (m *DB) ForgetCatalogDatabase(ctx context.Context, db string) error {
	if _, err := m.Collection(CollCatalog).DeleteMany(ctx, bson.D{{Key: "sync", Value: m.SyncID}, {Key: "db", Value: db}}); err != nil {
		return fmt.Errorf("forgetting the catalog entries of database %s: %w", db, err)
	}
	return nil
}

// ForgetDeferred follows a dropIndexes on the source: the dropped index's pending settings go too.
func (m *DB) ForgetDeferred(ctx context.Context, ns, index string) error {
	_, err := m.Collection(CollCatalog).UpdateOne(ctx, bson.D{{Key: "_id", Value: CatalogID(m.SyncID, ns)}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "deferred", Value: bson.D{{Key: "index", Value: index}}}}}})
	if err != nil {
		return fmt.Errorf("forgetting the deferred settings of index %s of %s: %w", index, ns, err)
	}
	return nil
}

// StartRebuild records, before an index of the entry id is dropped, the spec it is to be built with.
func (m *DB) StartRebuild(ctx context.Context, id string, r IndexRebuild) error {
	// One write: a record pulled by one update and pushed by another would be lost to a failure
	// between the two, and with it the index (dropped, and no record left to build it from). The
	// coordinator is the only writer of its sync's catalog, so reading the list first is safe.
	var e CatalogEntry
	if err := m.Collection(CollCatalog).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&e); err != nil {
		return fmt.Errorf("recording the rebuild of index %s of %s: %w", r.Index, id, err)
	}
	rebuilding := []IndexRebuild{}
	for _, other := range e.Rebuilding {
		if other.Index != r.Index {
			rebuilding = append(rebuilding, other)
		}
	}
	rebuilding = append(rebuilding, r)
	if _, err := m.Collection(CollCatalog).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "rebuilding", Value: rebuilding}}}}); err != nil {
		return fmt.Errorf("recording the rebuild of index %s of %s: %w", r.Index, id, err)
	}
	return nil
}

// FinishRebuild removes the rebuild record of an index once it is built.
func (m *DB) FinishRebuild(ctx context.Context, id, index string) error {
	if _, err := m.Collection(CollCatalog).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "rebuilding", Value: bson.D{{Key: "index", Value: index}}}}}}); err != nil {
		return fmt.Errorf("clearing the rebuild record of index %s of %s: %w", index, id, err)
	}
	return nil
}

// MarkRestored moves a deferred setting to Restored once commit has put it back (and drops the
// index's rebuild record), in one update.
func (m *DB) MarkRestored(ctx context.Context, id string, change DeferredIndexChange) error {
	coll := m.Collection(CollCatalog)
	// A record left by an earlier commit of the same index goes first: one record per index.
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "restored", Value: bson.D{{Key: "index", Value: change.Index}}}}}}); err != nil {
		return fmt.Errorf("recording the restored settings of index %s of %s: %w", change.Index, id, err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
		{Key: "$pull", Value: bson.D{{Key: "deferred", Value: bson.D{{Key: "index", Value: change.Index}}},
			{Key: "rebuilding", Value: bson.D{{Key: "index", Value: change.Index}}}}},
		{Key: "$push", Value: bson.D{{Key: "restored", Value: change}}},
	}); err != nil {
		return fmt.Errorf("recording the restored settings of index %s of %s: %w", change.Index, id, err)
	}
	return nil
}

// ClearRestored forgets every restored setting of the sync once its commit completed: a finished
// commit has nothing to undo, and a later commit (a reversed sync's, whose destination is the old
// source and has its indexes as they were) must not take them out again if it fails.
func (m *DB) ClearRestored(ctx context.Context) error {
	if _, err := m.Collection(CollCatalog).UpdateMany(ctx, bson.D{{Key: "sync", Value: m.SyncID}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "restored", Value: ""}}}}); err != nil {
		return fmt.Errorf("forgetting the settings the commit restored: %w", err)
	}
	return nil
}

// MarkDeferred moves a restored setting back to Deferred once a failed commit has taken it out of
// the destination's index again.
func (m *DB) MarkDeferred(ctx context.Context, id string, change DeferredIndexChange) error {
	coll := m.Collection(CollCatalog)
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "deferred", Value: bson.D{{Key: "index", Value: change.Index}}}}}}); err != nil {
		return fmt.Errorf("recording the deferred settings of index %s of %s: %w", change.Index, id, err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{
		{Key: "$pull", Value: bson.D{{Key: "restored", Value: bson.D{{Key: "index", Value: change.Index}}},
			{Key: "rebuilding", Value: bson.D{{Key: "index", Value: change.Index}}}}},
		{Key: "$push", Value: bson.D{{Key: "deferred", Value: change}}},
	}); err != nil {
		return fmt.Errorf("recording the deferred settings of index %s of %s: %w", change.Index, id, err)
	}
	return nil
}

// TTLDisabledSeconds is the expireAfterSeconds a TTL index has on the destination while the sync runs.
const TTLDisabledSeconds = ttlDisabledSeconds

// Truthy reads an index option the way the server does: true, or a non-zero number (specs written by
// old drivers and shells carry "unique: 1"). Anything else, absent included, is false, never a panic.
func Truthy(v bson.RawValue) bool {
	if b, ok := v.BooleanOK(); ok {
		return b
	}
	if f, ok := v.DoubleOK(); ok { // before AsInt64OK, which would truncate 0.5 to 0
		return f != 0
	}
	if n, ok := v.AsInt64OK(); ok {
		return n != 0
	}
	return false
}
