// Package spool keeps the source's change events that the fleet captured before the applier could
// apply them: during the catalog, the copy and the index builds, one node (the capturer) reads the
// source's change events from the sync's start time and appends them here, in the metadata database on
// the destination, so that the source's oplog only has to hold the capture's lag rather than the whole
// copy. The applier applies from the spool, then switches to the live source (see docs/lifecycle.md).
//
// An entry is one source record as the source gave it (an oplog entry, or a change event), keyed by
// its source position: a late or repeated append of the same record (a deposed capturer, a capturer
// that resumes from its checkpoint) is a harmless duplicate, never a second copy.
package spool

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/metadata"
)

// Kinds of records, named like the applier's event sources.
const (
	KindOplog        = "oplog"
	KindChangeStream = "changeStream"
)

// Position is a place in the source's history: every event at or before it is covered. For the
// oplog, the ts of an entry; for a change stream, an event's cluster time and resume token.
type Position struct {
	// TS is the source cluster time: the last oplog entry read, or the cluster time of the change
	// stream's resume token.
	TS primitive.Timestamp `bson:"ts"`
	// Token is the change stream resume token to resume after (change streams only).
	Token bson.Raw `bson:"token,omitempty"`
}

// Key is the spool key of position p: its ts in fixed-width hex, then, for a change stream event, its
// resume token's _data. Keys sort as the source's history does: by time, then (for events sharing a
// cluster time, such as a transaction's) by resume token, whose _data is the server's own sort key
// (a hex KeyString, which is how mongos merges the shards' streams).
func Key(p Position) string {
	k := fmt.Sprintf("%08x%08x", p.TS.T, p.TS.I)
	if p.Token == nil {
		return k
	}
	if data, ok := p.Token.Lookup("_data").StringValueOK(); ok {
		return k + data
	}
	// A token without a string _data (servers before 4.2): its bytes still name it uniquely.
	return k + "~" + hex.EncodeToString(p.Token)
}

// Entry is one spooled record.
type Entry struct {
	ID   string              `bson:"_id"` // "<sync>/<direction>/<key>"
	TS   primitive.Timestamp `bson:"ts"`
	Kind string              `bson:"k"` // KindOplog or KindChangeStream
	// Raw is the record as the source gave it. A record too large to share a document with the
	// entry's fields (see maxInline) is stored in Chunks pieces in the spool's chunk collection
	// instead, and put together again by Read.
	Raw    bson.Raw `bson:"e,omitempty"`
	Chunks int      `bson:"chunks,omitempty"`
}

// maxInline is the largest record stored in its entry's document. A source record can be as large
// as a document (16 MiB) and then some (an oplog entry of a large transaction, a change event of a
// large update), and the entry's own fields would take it past what the destination accepts: a
// capture that could not spool it would stop there for good. Larger records go in chunks of this
// size. A variable for tests.
var maxInline = 15 << 20

// chunk is one piece of a large record: _id "<entry _id>/<n, 4 digits>".
type chunk struct {
	ID   string `bson:"_id"`
	Data []byte `bson:"d"`
}

// Spool is one sync's spool in one direction of the sync (a reverse starts a new direction, which a
// late append of the old one can never reach).
type Spool struct {
	coll      *mongo.Collection
	chunks    *mongo.Collection
	syncID    string
	direction int64
}

// Open returns the spool of meta's sync in direction (the applier checkpoint's Direction).
func Open(meta *metadata.DB, direction int64) *Spool {
	return &Spool{coll: meta.Collection(metadata.CollSpool), chunks: meta.Collection(metadata.CollSpoolChunks), syncID: meta.SyncID, direction: direction}
}

// prefix starts every _id of this spool; upper is just past them all.
func (s *Spool) prefix() string { return fmt.Sprintf("%s/%04d/", s.syncID, s.direction) }
func (s *Spool) upper() string  { return fmt.Sprintf("%s/%04d0", s.syncID, s.direction) } // '0' follows '/'

// NewEntry returns the entry of raw, a record of kind read at position p.
func (s *Spool) NewEntry(kind string, p Position, raw bson.Raw) Entry {
	return Entry{ID: s.prefix() + Key(p), TS: p.TS, Kind: kind, Raw: raw}
}

// duplicateKey is the server's code for a duplicate key.
const duplicateKey = 11000

// Append writes entries in one unordered insert, a large record's chunks first. An entry already
// there (the same source position, appended by a capturer that died before its checkpoint) is
// refused as a duplicate and skipped.
func (s *Spool) Append(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	docs := make([]any, len(entries))
	var pieces []any
	for i, e := range entries {
		if len(e.Raw) > maxInline {
			for n := 0; n*maxInline < len(e.Raw); n++ {
				pieces = append(pieces, chunk{ID: fmt.Sprintf("%s/%04d", e.ID, n), Data: e.Raw[n*maxInline : min((n+1)*maxInline, len(e.Raw))]})
			}
			e.Chunks, e.Raw = (len(e.Raw)+maxInline-1)/maxInline, nil
		}
		docs[i] = e
	}
	if err := insertIgnoringDuplicates(ctx, s.chunks, pieces); err != nil {
		return fmt.Errorf("appending %d chunks of large change events to the spool: %w", len(pieces), err)
	}
	if err := insertIgnoringDuplicates(ctx, s.coll, docs); err != nil {
		return fmt.Errorf("appending %d change events to the spool: %w", len(entries), err)
	}
	return nil
}

// insertIgnoringDuplicates inserts docs in one unordered insert, skipping those already there.
func insertIgnoringDuplicates(ctx context.Context, coll *mongo.Collection, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return err
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != duplicateKey {
			return err
		}
	}
	return nil
}

// Read returns up to max entries after p (at or after p when inclusive), in source order.
func (s *Spool) Read(ctx context.Context, p Position, inclusive bool, max int) ([]Entry, error) {
	op := "$gt"
	if inclusive {
		op = "$gte"
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: op, Value: s.prefix() + Key(p)}, {Key: "$lt", Value: s.upper()}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(max)))
	if err != nil {
		return nil, fmt.Errorf("reading the spool: %w", err)
	}
	var out []Entry
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading the spool: %w", err)
	}
	for i := range out {
		if out[i].Chunks > 0 {
			if out[i].Raw, err = s.readChunks(ctx, out[i]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// readChunks puts a large record together again from its chunks.
func (s *Spool) readChunks(ctx context.Context, e Entry) (bson.Raw, error) {
	cur, err := s.chunks.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: e.ID + "/"}, {Key: "$lt", Value: e.ID + "/~"}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading the chunks of spool entry %s: %w", e.ID, err)
	}
	var pieces []chunk
	if err := cur.All(ctx, &pieces); err != nil {
		return nil, fmt.Errorf("reading the chunks of spool entry %s: %w", e.ID, err)
	}
	if len(pieces) != e.Chunks {
		return nil, fmt.Errorf("spool entry %s has %d of its %d chunks", e.ID, len(pieces), e.Chunks)
	}
	var raw bson.Raw
	for _, p := range pieces {
		raw = append(raw, p.Data...)
	}
	return raw, nil
}

// TrimThrough deletes the entries at or before p: they are applied, and the applier's checkpoint is
// past them.
func (s *Spool) TrimThrough(ctx context.Context, p Position) (int64, error) {
	through := s.prefix() + Key(p)
	res, err := s.coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: s.prefix()}, {Key: "$lte", Value: through}}}})
	if err != nil {
		return 0, fmt.Errorf("trimming the spool: %w", err)
	}
	// A chunk's _id is its entry's and "/n": keys hold no "/", so "<through>/~" bounds them all.
	if _, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: s.prefix()}, {Key: "$lte", Value: through + "/~"}}}}); err != nil {
		return 0, fmt.Errorf("trimming the spool: %w", err)
	}
	return res.DeletedCount, nil
}

// Clear deletes the sync's whole spool, in every direction: the applier reads the live source now.
func Clear(ctx context.Context, meta *metadata.DB) error {
	lo, hi := meta.SyncID+"/", meta.SyncID+"0"
	for _, coll := range []string{metadata.CollSpool, metadata.CollSpoolChunks} {
		if _, err := meta.Collection(coll).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: lo}, {Key: "$lt", Value: hi}}}}); err != nil {
			return fmt.Errorf("clearing the spool: %w", err)
		}
	}
	return nil
}

// Capture is the capture's document in the capture collection, _id the sync's id: the capture lease
// (lease.Field*), and how far the capture got.
type Capture struct {
	ID    string `bson:"_id"`
	Owner string `bson:"owner,omitempty"`
	Epoch int64  `bson:"epoch,omitempty"`
	// Direction is the applier checkpoint's direction this capture writes for (see
	// applier.Checkpoint.Direction); a reverse moves it on, deposing the capturer.
	Direction int64 `bson:"direction,omitempty"`

	Source   string    `bson:"source,omitempty"`   // KindOplog or KindChangeStream
	Position *Position `bson:"position,omitempty"` // every source event through it is in the spool
	// Captured counts the records the capture's checkpoints covered, each once whoever appended
	// it (a capturer that died before its checkpoint leaves its last batch to be counted by its
	// successor), and CapturedBytes their size.
	Captured      int64 `bson:"captured"`
	CapturedBytes int64 `bson:"capturedBytes"`
	// AtEnd says the capture's last read reached the end of the source's history: its lag was
	// nil at UpdatedAt.
	AtEnd     bool      `bson:"atEnd,omitempty"`
	UpdatedAt time.Time `bson:"updatedAt,omitempty"` // the destination's time of the last checkpoint

	// The source's oplog window as the capture last read it (zero where it has none to read: a
	// change stream through mongos), every oplogCheckInterval.
	OplogOldest primitive.Timestamp `bson:"oplogOldest,omitempty"`
	OplogNewest primitive.Timestamp `bson:"oplogNewest,omitempty"`

	// Done says the applier reads the live source: the capture is over, for this direction.
	Done  bool   `bson:"done,omitempty"`
	Error string `bson:"error,omitempty"` // the capture's last failure, cleared by its next checkpoint
	// Terminal is the failure that stopped the capture for good (its position gone from the
	// source's oplog): the sync must be started again.
	Terminal string `bson:"terminal,omitempty"`
}

// LagSeconds is how far behind the source the capture was at its last checkpoint: 0 when it had
// reached the end, else the time between its position and that checkpoint.
func (c Capture) LagSeconds() float64 {
	if c.AtEnd || c.Position == nil || c.UpdatedAt.IsZero() {
		return 0
	}
	return max(0, c.UpdatedAt.Sub(time.Unix(int64(c.Position.TS.T), 0)).Seconds())
}

// ReadCapture reads the sync's capture document; ok is false when no capture ever ran.
func ReadCapture(ctx context.Context, meta *metadata.DB) (Capture, bool, error) {
	var c Capture
	err := meta.Collection(metadata.CollCapture).FindOne(ctx, bson.D{{Key: "_id", Value: meta.SyncID}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Capture{}, false, nil
	}
	if err != nil {
		return Capture{}, false, fmt.Errorf("reading the capture of sync %q: %w", meta.SyncID, err)
	}
	return c, true, nil
}
