package applier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/lease"
)

// Position is how far the applier has got: every source event at or before it is applied.
type Position = spool.Position

// Checkpoint is the sync's document in the checkpoints collection: the applier lease and the
// resume point it protects. _id is the sync's --id.
type Checkpoint struct {
	ID string `bson:"_id"`

	// The applier lease (lease.Field*).
	Owner string `bson:"owner,omitempty"`
	Epoch int64  `bson:"epoch,omitempty"`

	// Direction counts the reverses this position has seen: 0 (absent) in the sync's first
	// direction, +1 at each reverse (ResetForReverse). An applier fences its checkpoints with the
	// direction it read at its start, so one still running the old direction after a reverse can
	// never move the reverse's start point, even under a lease it acquired again.
	Direction int64 `bson:"direction,omitempty"`

	// Source is the event source in use: SourceChangeStream or SourceOplog.
	Source string `bson:"source,omitempty"`
	// Live says the applier reads the source itself: it has applied the spool (package spool)
	// through its position and switched. Until then it reads the spool.
	Live bool `bson:"live,omitempty"`
	// FromSpool counts the spool entries applied (each once, as a checkpoint covers them).
	FromSpool int64 `bson:"fromSpool,omitempty"`
	// LiveFrom is where the applier switched from the spool to the live source: the last spooled
	// record it read.
	LiveFrom *Position `bson:"liveFrom,omitempty"`

	Position *Position `bson:"position,omitempty"`
	// UpdatedAt is the destination's time of the last checkpoint.
	UpdatedAt time.Time `bson:"updatedAt,omitempty"`

	EventsApplied int64 `bson:"eventsApplied"` // CRUD + DDL events applied (filtered-out ones are not counted)
	CRUDApplied   int64 `bson:"crudApplied"`
	DDLApplied    int64 `bson:"ddlApplied"`
	Refreshed     int64 `bson:"refreshed"` // updates applied by re-reading the document from the source

	// CatchupRate is how many seconds of source time the applier applied per second of wall time,
	// measured over its recent batches while it had a backlog; 0 until measured.
	CatchupRate float64 `bson:"catchupRate,omitempty"`

	// LastEventTS is the source time of the last event applied that concerned the sync's
	// namespaces: a commit fails loudly when one is later than its commit point.
	LastEventTS primitive.Timestamp `bson:"lastEventTS,omitempty"`

	Warnings Warnings `bson:"warnings,omitempty"` // about the event source (the oplog window, events it cannot apply)
	Error    string   `bson:"error,omitempty"`    // the applier's last failure, cleared by its next success
	// Terminal is the failure that stopped the applier for good (see terminal): set, no applier
	// reads events any more, and the sync must be started again. Error says the same.
	Terminal string `bson:"terminal,omitempty"`
}

// Warning is one thing about the event source a user should know, under a kind that names it.
type Warning struct {
	Kind    string `bson:"kind"`
	Message string `bson:"message"`
}

// Warnings hold at most one warning per kind, in the order their kinds first appeared, and at most
// maxWarnings in all: a condition that is checked again and again (the oplog window, every 10 s)
// replaces its warning rather than adding one each time, in memory, in the checkpoint and in
// /progress.
type Warnings []Warning

// maxWarnings bounds the applier's warnings whatever the source does (a DDL warning is kept per
// message, and a source may issue any number of DDL events fleetsync cannot apply); the oldest
// goes first.
const maxWarnings = 20

// Messages are the warnings' messages, for /progress.
func (ws Warnings) Messages() []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Message
	}
	return out
}

// with returns ws with kind's warning set to msg, and whether that changed anything.
func (ws Warnings) with(kind, msg string) (Warnings, bool) {
	for i, w := range ws {
		if w.Kind == kind {
			if w.Message == msg {
				return ws, false
			}
			out := append(Warnings(nil), ws...)
			out[i].Message = msg
			return out, true
		}
	}
	out := append(append(Warnings(nil), ws...), Warning{Kind: kind, Message: msg})
	if len(out) > maxWarnings {
		out = out[len(out)-maxWarnings:]
	}
	return out, true
}

// without returns ws without kind's warning, and whether there was one.
func (ws Warnings) without(kind string) (Warnings, bool) {
	for i, w := range ws {
		if w.Kind == kind {
			return append(append(Warnings(nil), ws[:i]...), ws[i+1:]...), true
		}
	}
	return ws, false
}

// UnmarshalBSONValue reads warnings as stored, and the plain strings earlier versions appended (a
// checkpoint written by a fleet being upgraded): each string is a kind of its own, except the
// oplog-window warnings, which become the one warning of that kind (the last).
func (ws *Warnings) UnmarshalBSONValue(t bsontype.Type, data []byte) error {
	*ws = nil
	if t == bsontype.Null || t == bsontype.Undefined {
		return nil
	}
	if t != bsontype.Array {
		return fmt.Errorf("applier warnings stored as BSON %s, not an array", t)
	}
	values, err := bson.Raw(data).Values()
	if err != nil {
		return err
	}
	for _, v := range values {
		if msg, ok := v.StringValueOK(); ok {
			kind := ddlWarningKind(msg)
			if strings.HasPrefix(msg, windowWarningPrefix) {
				kind = warnOplogWindow
			}
			*ws, _ = ws.with(kind, msg)
			continue
		}
		var w Warning
		if err := v.Unmarshal(&w); err != nil {
			return fmt.Errorf("reading an applier warning: %w", err)
		}
		*ws, _ = ws.with(w.Kind, w.Message)
	}
	return nil
}

// Event sources.
const (
	SourceChangeStream = "changeStream"
	SourceOplog        = "oplog"
)

// ErrDeposed says the applier lease was lost before a checkpoint could be written: the batch it
// covers may be applied again by the next applier, which is harmless.
var ErrDeposed = errors.New("this node no longer holds the applier lease")

// ErrDirectionChanged says the sync's direction is not the one this applier's clients were chosen
// for (a reverse happened, or is under way): the node must read the sync again and start an applier
// for the new direction.
var ErrDirectionChanged = errors.New("the sync's direction changed: this applier's source and destination are the old direction's")

// ReadCheckpoint reads the sync's checkpoint; a sync whose applier has never run has none
// (ok false).
func ReadCheckpoint(ctx context.Context, meta *metadata.DB) (Checkpoint, bool, error) {
	var c Checkpoint
	err := meta.Collection(metadata.CollCheckpoints).FindOne(ctx, bson.D{{Key: "_id", Value: meta.SyncID}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("reading the applier checkpoint of sync %q: %w", meta.SyncID, err)
	}
	return c, true, nil
}

// checkpointer writes checkpoints under one holding of the applier lease.
type checkpointer struct {
	coll      *mongo.Collection
	syncID    string
	lease     lease.Lease
	direction int64 // Checkpoint.Direction when this applier started
}

// fence is the filter "this checkpoint, held by this lease, in this applier's direction".
func (c *checkpointer) fence() bson.D {
	f := append(bson.D{{Key: "_id", Value: c.syncID}}, c.lease.Fence()...)
	if c.direction == 0 {
		// Never reversed: the field is only ever written by ResetForReverse.
		return append(f, bson.E{Key: "direction", Value: bson.D{{Key: "$exists", Value: false}}})
	}
	return append(f, bson.E{Key: "direction", Value: c.direction})
}

// batchCounts is what one applied batch adds to the checkpoint's counters.
type batchCounts struct {
	crud, ddl, refreshed int64
	spooled              int64               // spool entries applied
	last                 primitive.Timestamp // the latest wanted event's time; zero when none
}

// save records pos (and counts) only while the lease is held in the direction the applier started
// in, and only if pos is not behind the stored position: a deposed applier that wakes up late can
// neither move the resume point nor reset it to an older one, and one of the old direction cannot
// overwrite a reverse's start point.
func (c *checkpointer) save(ctx context.Context, source string, pos Position, n batchCounts, rate float64) error {
	filter := append(c.fence(), bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "position.ts", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "position.ts", Value: bson.D{{Key: "$lte", Value: pos.TS}}}},
	}})
	set := bson.D{{Key: "source", Value: source}, {Key: "position", Value: pos}}
	if rate > 0 {
		set = append(set, bson.E{Key: "catchupRate", Value: rate})
	}
	if !n.last.IsZero() {
		// Batches are saved in source order, so the latest batch's last event is the latest.
		set = append(set, bson.E{Key: "lastEventTS", Value: n.last})
	}
	update := bson.D{
		{Key: "$set", Value: set},
		{Key: "$unset", Value: bson.D{{Key: "error", Value: ""}}},
		{Key: "$inc", Value: bson.D{
			{Key: "eventsApplied", Value: n.crud + n.ddl},
			{Key: "crudApplied", Value: n.crud},
			{Key: "ddlApplied", Value: n.ddl},
			{Key: "refreshed", Value: n.refreshed},
			{Key: "fromSpool", Value: n.spooled},
		}},
		{Key: "$currentDate", Value: bson.D{{Key: "updatedAt", Value: true}}},
	}
	res, err := c.coll.UpdateOne(ctx, filter, update)
	if err != nil {
		return fmt.Errorf("saving the applier checkpoint: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrDeposed
	}
	return nil
}

// goLive records that the applier reads the live source from now on (see applier.goLive).
func (c *checkpointer) goLive(ctx context.Context, from Position) error {
	res, err := c.coll.UpdateOne(ctx, c.fence(), bson.D{{Key: "$set", Value: bson.D{{Key: "live", Value: true}, {Key: "liveFrom", Value: from}}}})
	if err != nil {
		return fmt.Errorf("recording the switch from the spool to the live source: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrDeposed
	}
	return nil
}

// note records the applier's warnings and last error, fenced like a checkpoint. A terminal failure
// is recorded as such: no applier reads events after it.
func (c *checkpointer) note(ctx context.Context, warnings Warnings, failure error, terminal bool) error {
	if warnings == nil {
		warnings = Warnings{} // an empty array, not null: the list is the whole truth
	}
	set := bson.D{{Key: "warnings", Value: warnings}}
	if failure != nil {
		set = append(set, bson.E{Key: "error", Value: failure.Error()})
		if terminal {
			set = append(set, bson.E{Key: "terminal", Value: failure.Error()})
		}
	}
	res, err := c.coll.UpdateOne(ctx, c.fence(), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return ErrDeposed
	}
	return nil
}

// ResetForReverse points the sync's checkpoint at from on the new source (the old destination) and
// resets its counters, for a reversed sync's first applier. It also deposes the applier lease's
// holder (the owner is cleared, so the next holder takes it at a new epoch) and moves the checkpoint
// to the next direction: an applier of the old direction that missed the reverse between two polls
// of its node, or that a node with a stale view of the sync starts, can write no checkpoint over
// from (see checkpointer.fence), and stops at its next one, or when its Keeper finds the lease gone.
func ResetForReverse(ctx context.Context, meta *metadata.DB, from primitive.Timestamp) error {
	var after Checkpoint
	err := meta.Collection(metadata.CollCheckpoints).FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: meta.SyncID}}, bson.D{
		{Key: "$inc", Value: bson.D{{Key: "direction", Value: int64(1)}}},
		{Key: "$set", Value: bson.D{
			{Key: lease.FieldOwner, Value: ""},
			{Key: "position", Value: Position{TS: from}},
			// A reverse has no copy: its applier reads the new source from the start.
			{Key: "live", Value: true},
			{Key: "eventsApplied", Value: int64(0)}, {Key: "crudApplied", Value: int64(0)},
			{Key: "ddlApplied", Value: int64(0)}, {Key: "refreshed", Value: int64(0)}, {Key: "fromSpool", Value: int64(0)},
		}},
		{Key: "$unset", Value: bson.D{{Key: "source", Value: ""}, {Key: "lastEventTS", Value: ""}, {Key: "catchupRate", Value: ""},
			{Key: "error", Value: ""}, {Key: "terminal", Value: ""}, {Key: "warnings", Value: ""}}},
	}, options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&after)
	if err != nil {
		return fmt.Errorf("pointing the applier at the old destination for the reverse: %w", err)
	}
	// The capture is over in the new direction, and a capturer of the old one, if any is left, is
	// deposed: its checkpoints are fenced by the direction it started in.
	_, err = meta.Collection(metadata.CollCapture).UpdateOne(ctx, bson.D{{Key: "_id", Value: meta.SyncID}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: "direction", Value: after.Direction}, {Key: lease.FieldOwner, Value: ""}, {Key: "done", Value: true}}},
	}, options.Update().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("ending the capture for the reverse: %w", err)
	}
	return nil
}
