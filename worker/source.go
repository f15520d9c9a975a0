package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/partition"
)

// MongoDB's error codes for a read that met DDL (error_codes.yml).
const (
	// codeCollectionUUIDMismatch answers a command whose collectionUUID is not the UUID of the
	// collection it names (6.0+). Its reply carries db, collectionUUID, expectedCollection and
	// actualCollection: the name the UUID has now in that database, null when it has none there.
	codeCollectionUUIDMismatch = 361
	// codeQueryPlanKilled ends a cursor whose collection was renamed or dropped under it.
	codeQueryPlanKilled = 175
	// codeCursorNotFound: the cursor is gone (killed with its collection, or timed out).
	codeCursorNotFound = 43
	// codeUnknownField: a strictly parsed command (IDL, 4.4+) has a field the server does not know.
	codeUnknownField = 40415
)

// maxDDLRestarts bounds how often one claim re-opens its read after DDL on the source (a rename,
// a cursor killed by one); past it, the error goes to the caller as a failed attempt.
const maxDDLRestarts = 10

// uuidMismatch is what a CollectionUUIDMismatch reply says.
type uuidMismatch struct {
	db, expected string
	actual       string // the UUID's collection now, in db; "" when none (dropped, or moved to another database)
}

// mismatchOf reads a CollectionUUIDMismatch out of err; ok is false for any other error.
func mismatchOf(err error) (m uuidMismatch, ok bool) {
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != codeCollectionUUIDMismatch {
		return m, false
	}
	m.db, _ = ce.Raw.Lookup("db").StringValueOK()
	m.expected, _ = ce.Raw.Lookup("expectedCollection").StringValueOK()
	m.actual, _ = ce.Raw.Lookup("actualCollection").StringValueOK() // null or absent: ""
	return m, true
}

// killedByDDL reports whether err ended a cursor because its collection changed (MongoDB kills the
// cursors of a collection it renames or drops): the read is opened again, by UUID, which says what
// became of the collection.
func killedByDDL(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && (se.HasErrorCode(codeQueryPlanKilled) || se.HasErrorCode(codeCursorNotFound))
}

// rangeReader reads one partition's range from the source in _id order and hands it out in batches.
// It reads by the collection's UUID where the catalog has one, and follows the collection through
// DDL on the source (docs/lifecycle.md, "DDL during the copy"):
//   - renamed within its database: the read goes on under the new name, from the last _id read;
//   - dropped (or dropped and created again, which gives the name another UUID): the range ends
//     here; the drop (and the new collection's events) replayed from the start time bring the
//     destination to the source's state;
//   - a cursor killed by such DDL: the read is opened again from the last _id read.
//
// None of these is a failed attempt. A source that refuses collectionUUID (MongoDB before 6.0) is
// read by name, with a look at the database's collections' UUIDs before the find and before each batch, to the
// same effect. Without a UUID (a server that reports none) the collection is read by name, as
// cataloged, and DDL during its copy is not followed (docs/lifecycle.md).
type rangeReader struct {
	w     *Worker
	claim *partition.Claim
	p     partition.Partition
	name  string // "<db>.<coll>" on the source
	after primitive.Timestamp
	out   chan<- batch
	b     batch         // read, not handed out yet
	last  bson.RawValue // the last _id read (handed out or in b); the checkpoint at first
	sent  bson.RawValue // the last _id handed out; the checkpoint at first
}

// run reads the range to its end.
func (r *rangeReader) run(ctx context.Context) error {
	for restarts := 0; ; restarts++ {
		err := r.readOnce(ctx)
		if err == nil || ctx.Err() != nil || len(r.p.UUID.Data) == 0 || restarts >= maxDDLRestarts {
			return err
		}
		if errors.Is(err, errMoved) {
			continue
		}
		if errors.Is(err, errGone) {
			return r.gone(ctx)
		}
		if refusedUUID(err) {
			// MongoDB before 6.0 (or a server like it): read by name from now on, and follow the
			// collection by listing its database instead (readOnce).
			if r.w.noUUID.CompareAndSwap(false, true) {
				r.w.cfg.Log.Info("the source refuses find's collectionUUID (MongoDB before 6.0); reading by name, and checking the collection's UUID around each read",
					zap.Error(err))
			}
			continue
		}
		if m, ok := mismatchOf(err); ok {
			if m.actual == "" {
				return r.gone(ctx)
			}
			db, _, _ := strings.Cut(r.name, ".")
			r.moved(ctx, db+"."+m.actual)
			continue
		}
		if !killedByDDL(err) {
			return err
		}
		r.w.cfg.Log.Info("the source cursor was killed, as DDL does; reading again from the last _id read",
			zap.String("partition", r.p.ID), zap.Error(err))
	}
}

// errMoved says a read by name found its collection under another name afterwards: the read
// starts again there, after the last _id read.
var errMoved = errors.New("the collection moved during the read")

// readOnce reads the rest of the range once: by UUID where the source takes collectionUUID, or by
// name where it does not, with a look at the name's UUID before the find and before each batch is
// handed out (send): the collection must be under that name from before the find until its batch
// is checked, or the batch is dropped and the read goes on where the collection went.
func (r *rangeReader) readOnce(ctx context.Context) error {
	if !r.byNameWithUUID() {
		return r.readFrom(ctx)
	}
	if err := r.stillThere(ctx); err != nil {
		return err
	}
	return r.readFrom(ctx)
}

// errGone says a read by name found its collection's UUID gone from its database.
var errGone = errors.New("the collection is gone from its database")

// stillThere looks that the partition's collection is still under the name read (reads by name
// only): errMoved (after following it) when it has another name now, errGone when it has none.
func (r *rangeReader) stillThere(ctx context.Context) error {
	name, found, err := r.locate(ctx)
	switch {
	case err != nil:
		return err
	case !found:
		return errGone
	case name != r.name:
		r.moved(ctx, name)
		return errMoved
	}
	return nil
}

// byNameWithUUID: the collection's UUID is known, and the source cannot check it in the find.
func (r *rangeReader) byNameWithUUID() bool {
	return len(r.p.UUID.Data) > 0 && r.w.noUUID.Load()
}

// locate returns the source name of the partition's collection, by its UUID.
func (r *rangeReader) locate(ctx context.Context) (string, bool, error) {
	db, _, _ := strings.Cut(r.name, ".")
	coll, found, err := catalog.NameOfUUID(ctx, r.w.cfg.Source.Database(db), r.p.UUID)
	if err != nil {
		return "", false, fmt.Errorf("looking for the collection of %s by its UUID: %w", r.p.NS, err)
	}
	return db + "." + coll, found, nil
}

// moved follows the collection to its new name and records it for the next claims.
func (r *rangeReader) moved(ctx context.Context, renamed string) {
	r.w.cfg.Log.Info("the source collection was renamed; reading on under its new name",
		zap.String("partition", r.p.ID), zap.String("from", r.name), zap.String("to", renamed))
	r.name = renamed
	if err := r.w.cfg.Partitions.Renamed(ctx, r.p.NS, r.p.UUID, renamed); err != nil {
		r.w.cfg.Log.Warn("recording the new name", zap.Error(err))
	}
}

// gone ends the partition with what it read: no collection of the database has its UUID. The
// partition records it (SourceGone): a drop is replayed and makes the destination right, but a
// rename into another database (a copy into a new collection, with a new UUID, on MongoDB) leaves
// the copy partial, which the applier then refuses loudly.
func (r *rangeReader) gone(ctx context.Context) error {
	r.w.cfg.Log.Info("the source collection is gone (dropped, or renamed into another database); its partition ends here",
		zap.String("partition", r.p.ID), zap.String("name", r.name))
	if err := r.w.cfg.Partitions.SourceGone(ctx, r.claim); err != nil {
		return err
	}
	return r.flush(ctx)
}

// refusedUUID reports whether err is a server refusing the collectionUUID field itself: MongoDB
// 4.4 and 5.0 parse find strictly and refuse an unknown field with code 40415 ("BSON field
// 'find.collectionUUID' is an unknown field"); older ones with a message naming it.
func refusedUUID(err error) bool {
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code == codeCollectionUUIDMismatch {
		return false
	}
	return ce.Code == codeUnknownField || strings.Contains(ce.Message, "collectionUUID")
}

// findCommand is the find of the range after r.last: in _id order (simple collation, so the order
// is MongoDB's BSON order whatever the collection's default collation), with majority read concern
// after the sync's start time (see internal/concern), and the collection's UUID when known.
func (r *rangeReader) findCommand() bson.D {
	_, coll, _ := strings.Cut(r.name, ".")
	rc := bson.D{{Key: "level", Value: "majority"}}
	if !r.after.IsZero() {
		rc = append(rc, bson.E{Key: "afterClusterTime", Value: r.after})
	}
	cmd := bson.D{
		{Key: "find", Value: coll},
		{Key: "filter", Value: r.p.Range.Filter(r.last)},
		{Key: "sort", Value: bson.D{{Key: "_id", Value: 1}}},
		{Key: "collation", Value: bsonorder.SimpleCollation},
		{Key: "batchSize", Value: int32(r.w.cfg.BatchDocs)},
	}
	if len(r.p.UUID.Data) > 0 && !r.w.noUUID.Load() {
		cmd = append(cmd, bson.E{Key: "collectionUUID", Value: r.p.UUID})
	}
	return append(cmd, bson.E{Key: "readConcern", Value: rc})
}

// readFrom runs one find after r.last and hands out its documents in batches.
func (r *rangeReader) readFrom(ctx context.Context) error {
	db, _, ok := strings.Cut(r.name, ".")
	if !ok {
		return fmt.Errorf("partition %s has a malformed namespace %q", r.p.ID, r.name)
	}
	// RunCommandCursor: the driver's Find has no collectionUUID. Its cursor runs the getMores, in
	// the session ctx carries (concern.ReadAfter).
	cur, err := r.w.cfg.Source.Database(db).RunCommandCursor(ctx, r.findCommand())
	if err != nil {
		return err
	}
	defer cur.Close(context.Background())
	cur.SetBatchSize(int32(r.w.cfg.BatchDocs))
	for cur.Next(ctx) {
		// The cursor reuses its buffer: keep a copy.
		doc := make(bson.Raw, len(cur.Current))
		copy(doc, cur.Current)
		r.b.docs = append(r.b.docs, doc)
		r.b.bytes += int64(len(doc))
		r.b.last = doc.Lookup("_id")
		r.last = r.b.last
		if len(r.b.docs) >= r.w.cfg.BatchDocs || r.b.bytes >= int64(r.w.cfg.BatchBytes) {
			if err := r.send(ctx); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	return r.flush(ctx)
}

// flush hands out what is read and not handed out yet.
func (r *rangeReader) flush(ctx context.Context) error {
	if len(r.b.docs) == 0 {
		return nil
	}
	return r.send(ctx)
}

func (r *rangeReader) send(ctx context.Context) error {
	if r.byNameWithUUID() {
		// Read by name: the name may have gone to another collection since the last look (a
		// rename, then a new collection under the old name), and this batch with it. Dropped
		// then, and read again, from the last _id handed out, where the collection went.
		if err := r.stillThere(ctx); err != nil {
			r.b, r.last = batch{}, r.sent
			return err
		}
	}
	select {
	case r.out <- r.b:
		r.sent = r.b.last
		r.b = batch{}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
