package applier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/concern"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// maxWriteRetries bounds how often one namespace's writes of a batch are retried after a write
// error turned an update into a refresh; each retry starts after the writes that succeeded.
const maxWriteRetries = 100

// nsWriter applies one namespace's CRUD events of a batch, in order, as ordered bulk writes.
type nsWriter struct {
	source *mongo.Client
	// destination takes the writes; see Config.Writes for why it should bound them on the server.
	destination *mongo.Client
	ns          namespace.Namespace
}

// op is one event to write, and the source document for a refresh.
type op struct {
	ev      changeevent.Event
	refresh bool     // re-read from the source: an update without a description, or one that failed
	doc     bson.Raw // the refreshed document; nil when it is gone from the source
}

// apply writes events (all of w.ns, in source order) and returns how many were refreshes.
//
// Idempotence, which makes re-applying any suffix of the event stream safe: insert and replace
// are replace-upserts by document key, delete deletes by key, an update either sets/unsets paths
// to values (its description) or replaces the document with the source's current version (a
// refresh). A refreshed document may be newer than the events after it in this batch; they are
// applied on top of it all the same, and the stream's later events bring it to the source's state.
func (w *nsWriter) apply(ctx context.Context, events []changeevent.Event) (int64, error) {
	ops := make([]op, len(events))
	for i, ev := range events {
		ops[i] = op{ev: ev, refresh: ev.Op == changeevent.Update && ev.Update == nil}
	}
	if err := w.fetch(ctx, ops); err != nil {
		return 0, err
	}
	coll := concern.DestinationCollection(w.destination, w.ns.DB, w.ns.Coll)
	from := 0
	for attempt := 0; from < len(ops); attempt++ {
		models, owner := w.models(ops[from:])
		if len(models) == 0 {
			break
		}
		// Bypassing validation, as the copy does: the source's documents are applied as they are,
		// whatever the destination's copy of the source's validator says of them.
		_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true).SetBypassDocumentValidation(true))
		if err == nil {
			break
		}
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || len(bwe.WriteErrors) == 0 || attempt >= maxWriteRetries {
			return 0, fmt.Errorf("applying %d change event(s) to %s: %w", len(ops)-from, w.ns, err)
		}
		failed := from + owner[bwe.WriteErrors[0].Index]
		if ops[failed].refresh {
			// Even the source's own version of the document cannot be written.
			return 0, fmt.Errorf("writing the source's version of a document of %s (key %s) failed: %w",
				w.ns, ops[failed].ev.DocumentKey, err)
		}
		// An update whose description does not fit the destination's version of the document
		// (a path through a value that is no longer a document, say): refresh it instead. The
		// writes before it are done; the ordered bulk stopped at it.
		ops[failed].refresh = true
		if err := w.fetch(ctx, ops[failed:failed+1]); err != nil {
			return 0, err
		}
		from = failed
	}
	var refreshed int64
	for _, o := range ops {
		if o.refresh {
			refreshed++
		}
	}
	return refreshed, nil
}

// fetch reads the current source version of every op marked refresh, by _id in one query: a
// majority read from a snapshot that includes the latest of those events (see package concern),
// since a snapshot from before an update would write the document's old version back with no
// later event to correct it.
//
// The query names the collection by the events' UUID where they carry one, and follows it: an
// event replayed after its collection was renamed on the source (during the copy, or while the
// applier lags) finds the documents under the new name, where they are, instead of finding none
// and deleting them from the destination collection that the replayed rename then moves. When no
// collection has the UUID any more, the documents are gone with it, and a drop follows.
func (w *nsWriter) fetch(ctx context.Context, ops []op) error {
	var ids bson.A
	var after primitive.Timestamp
	uuid, oneUUID := primitive.Binary{}, true
	for _, o := range ops {
		if o.refresh {
			ids = append(ids, o.ev.DocumentKey.Lookup("_id"))
			if o.ev.ClusterTime.After(after) {
				after = o.ev.ClusterTime
			}
			if len(ids) == 1 {
				uuid = o.ev.UUID
			} else if !bytes.Equal(uuid.Data, o.ev.UUID.Data) {
				oneUUID = false
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if !oneUUID {
		uuid = primitive.Binary{} // events of two collections of one name (never within one batch's run between DDL): by name
	}
	ctx, end, err := concern.ReadAfter(ctx, w.source, after)
	if err != nil {
		return fmt.Errorf("re-reading %d updated document(s) of %s from the source: %w", len(ids), w.ns, err)
	}
	defer end()
	docs, err := w.readByID(ctx, ids, uuid, after)
	if err != nil {
		return fmt.Errorf("re-reading %d updated document(s) of %s from the source: %w", len(ids), w.ns, err)
	}
	for i := range ops {
		if ops[i].refresh {
			ops[i].doc = docs[bsonorder.Key(ops[i].ev.DocumentKey.Lookup("_id"))]
		}
	}
	return nil
}

// codeCollectionUUIDMismatch: MongoDB 6.0+ refuses a command whose collectionUUID is not its named
// collection's, naming in actualCollection the collection of the database that has it, or null.
const codeCollectionUUIDMismatch = 361

// readByID finds the documents with ids on the source, by key, in w.ns or, when uuid is set,
// wherever the collection with that UUID is in w.ns's database: by collectionUUID where the source
// takes it (MongoDB 6.0+), else by name between two looks at the database's collections' UUIDs.
func (w *nsWriter) readByID(ctx context.Context, ids bson.A, uuid primitive.Binary, after primitive.Timestamp) (map[string]bson.Raw, error) {
	coll := w.ns.Coll
	for attempt := 0; ; attempt++ {
		if len(uuid.Data) > 0 && refusesUUID(w.source) {
			return w.readByIDByName(ctx, ids, uuid, after)
		}
		docs, err := w.find(ctx, coll, ids, uuid, after)
		if refusedUUID(err) {
			uuidRefused.Store(w.source, true)
			continue
		}
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != codeCollectionUUIDMismatch || attempt >= maxRenameFollows {
			return docs, err
		}
		actual, ok := ce.Raw.Lookup("actualCollection").StringValueOK()
		if !ok {
			return map[string]bson.Raw{}, nil // no collection has the UUID: dropped, documents and all
		}
		coll = actual
	}
}

// readByIDByName is readByID on a source without collectionUUID: the collection is looked up by
// UUID in its database's listCollections, read by that name, and looked up again; a read whose
// collection moved in between is made again where it went.
func (w *nsWriter) readByIDByName(ctx context.Context, ids bson.A, uuid primitive.Binary, after primitive.Timestamp) (map[string]bson.Raw, error) {
	db := w.source.Database(w.ns.DB)
	for attempt := 0; ; attempt++ {
		coll, found, err := catalog.NameOfUUID(ctx, db, uuid)
		if err != nil || !found {
			return map[string]bson.Raw{}, err
		}
		docs, err := w.find(ctx, coll, ids, primitive.Binary{}, after)
		if err != nil {
			return nil, err
		}
		again, found, err := catalog.NameOfUUID(ctx, db, uuid)
		if err != nil {
			return nil, err
		}
		if (found && again == coll) || attempt >= maxRenameFollows {
			return docs, nil
		}
		if !found {
			return map[string]bson.Raw{}, nil
		}
	}
}

// uuidRefused remembers the source clients whose server refused collectionUUID (MongoDB before
// 6.0), so that each refresh does not ask again: a server does not learn it while running.
var uuidRefused sync.Map // *mongo.Client → true

func refusesUUID(source *mongo.Client) bool {
	_, ok := uuidRefused.Load(source)
	return ok
}

// maxRenameFollows bounds how often one refresh follows its collection to a new name (each
// follow is a rename that happened between two queries).
const maxRenameFollows = 10

// codeUnknownField: a strictly parsed command (IDL, 4.4+) has a field the server does not know.
const codeUnknownField = 40415

// refusedUUID reports whether err is a server refusing the collectionUUID field itself (4.4 and
// 5.0: 40415 "BSON field 'find.collectionUUID' is an unknown field"; older: a message naming it).
func refusedUUID(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code == codeCollectionUUIDMismatch {
		return false
	}
	return ce.Code == codeUnknownField || strings.Contains(ce.Message, "collectionUUID")
}

// find runs one find by _id $in ids, with majority read concern after the events' time.
func (w *nsWriter) find(ctx context.Context, coll string, ids bson.A, uuid primitive.Binary, after primitive.Timestamp) (map[string]bson.Raw, error) {
	rc := bson.D{{Key: "level", Value: "majority"}}
	if !after.IsZero() {
		rc = append(rc, bson.E{Key: "afterClusterTime", Value: after})
	}
	cmd := bson.D{
		{Key: "find", Value: coll},
		{Key: "filter", Value: bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}},
		{Key: "collation", Value: bsonorder.SimpleCollation},
	}
	if len(uuid.Data) > 0 {
		cmd = append(cmd, bson.E{Key: "collectionUUID", Value: uuid})
	}
	cmd = append(cmd, bson.E{Key: "readConcern", Value: rc})
	// RunCommandCursor: the driver's Find has no collectionUUID. The cursor's getMores run in the
	// session ctx carries (concern.ReadAfter).
	cur, err := w.source.Database(w.ns.DB).RunCommandCursor(ctx, cmd)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	docs := map[string]bson.Raw{}
	for cur.Next(ctx) {
		doc := bson.Raw(append([]byte(nil), cur.Current...))
		docs[bsonorder.Key(doc.Lookup("_id"))] = doc
	}
	return docs, cur.Err()
}

// models turns ops into write models; owner[i] is the index in ops of models[i].
func (w *nsWriter) models(ops []op) ([]mongo.WriteModel, []int) {
	var models []mongo.WriteModel
	var owner []int
	add := func(i int, m mongo.WriteModel) {
		models = append(models, m)
		owner = append(owner, i)
	}
	for i, o := range ops {
		key := o.ev.DocumentKey
		switch {
		case o.refresh && o.doc != nil:
			add(i, mongo.NewReplaceOneModel().SetFilter(key).SetReplacement(o.doc).SetUpsert(true))
		case o.refresh:
			add(i, mongo.NewDeleteOneModel().SetFilter(key))
		case o.ev.Op == changeevent.Insert || o.ev.Op == changeevent.Replace:
			add(i, mongo.NewReplaceOneModel().SetFilter(key).SetReplacement(o.ev.FullDocument).SetUpsert(true))
		case o.ev.Op == changeevent.Delete:
			add(i, mongo.NewDeleteOneModel().SetFilter(key))
		case o.ev.Op == changeevent.Update:
			for _, m := range updateModels(key, o.ev.Update) {
				add(i, m)
			}
		}
	}
	return models, owner
}

// updateModels applies an update description (see UpdateDescription.Updates). Neither update
// upserts: an update of a document the destination does not have is of a document a later event
// deletes or re-inserts.
func updateModels(key bson.Raw, u *changeevent.UpdateDescription) []mongo.WriteModel {
	var out []mongo.WriteModel
	for _, update := range u.Updates() {
		out = append(out, mongo.NewUpdateOneModel().SetFilter(key).SetUpdate(update))
	}
	return out
}
