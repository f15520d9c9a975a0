package applier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/concern"
)

// Oplog tailing.
const (
	// oplogAwait is how long a tailable cursor waits on the server for new entries.
	oplogAwait = time.Second
	// oplogReopenWait is the pause before re-opening a cursor that died at the end of the oplog
	// (a tailable cursor that found nothing is dead, and so is any cursor on a server that does not
	// keep tailable cursors open): short, since it bounds the lag of a quiet source.
	oplogReopenWait = 100 * time.Millisecond
	// oplogBatch is the cursor's batch size in entries.
	oplogBatch = 1000
)

// ErrOplogRolledOver says events the applier still needed are gone from the source's oplog.
var ErrOplogRolledOver = errors.New("the source's oplog no longer holds the applier's resume point")

// oplogReader tails local.oplog.rs from a position, the way every oplog follower does: a tailable
// cursor on {ts: {$gt: position}}, re-opened after the position when it dies. The oplog's natural
// order is ts order, and a reader never sees a later entry before an earlier one (the server's
// oplog visibility rule), so the position only moves forward over entries that were all read.
type oplogReader struct {
	oplog *mongo.Collection
	pos   Position
	// inclusive: the first open reads {ts: {$gte: pos}}, for a start time that is itself an event
	// (applying it twice is harmless; missing it is not).
	inclusive bool
	cur       *mongo.Cursor
	checked   bool // the resume point was found in the oplog window
}

// newOplogReader tails source's oplog with majority read concern: it returns only entries that a
// majority holds, so an entry that a failover rolls back is never applied (nothing would undo it
// on the destination). Tailable awaitData cursors honour it since MongoDB 3.6.
func newOplogReader(source *mongo.Client, from Position, inclusive bool) reader {
	return parsing{recordReader: newOplogRecords(source, from, inclusive), kind: SourceOplog}
}

// newOplogRecords is the oplog reader before parsing: what the capture spools.
//
// A position with a resume token is a change stream's (a capturer or applier of the other kind
// came before): it may stand inside a transaction, whose events share one ts, with the rest of
// them not read yet. The oplog then starts at that ts, not after it: the events read already are
// applied again, which is harmless, and none is skipped.
func newOplogRecords(source *mongo.Client, from Position, inclusive bool) *oplogReader {
	return &oplogReader{oplog: concern.SourceCollection(source, "local", "oplog.rs"), pos: from, inclusive: inclusive || from.Token != nil}
}

func (r *oplogReader) open(ctx context.Context) error {
	if !r.checked {
		if err := r.checkWindow(ctx); err != nil {
			return err
		}
		r.checked = true
	}
	op := "$gt"
	if r.inclusive {
		op = "$gte"
	}
	cur, err := r.oplog.Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: op, Value: r.pos.TS}}}},
		options.Find().SetCursorType(options.TailableAwait).SetMaxAwaitTime(oplogAwait).SetBatchSize(oplogBatch))
	if err != nil {
		return fmt.Errorf("reading the source's oplog: %w", err)
	}
	r.cur = cur
	return nil
}

// checkWindow fails when the oplog's oldest entry is newer than the resume point: the entries in
// between were truncated, and applying what follows would silently lose them. A zero position
// (T 0) is the start of a sync whose source oplog was empty: everything in it is new.
func (r *oplogReader) checkWindow(ctx context.Context) error {
	if r.pos.TS.T == 0 {
		return nil
	}
	oldest, _, err := oplogBounds(ctx, r.oplog)
	if err != nil || oldest.IsZero() {
		return err
	}
	if oldest.After(r.pos.TS) {
		return fmt.Errorf("%w: it resumes at %s, but the oldest entry is %s; the events in between are lost, so the sync must be started again with a larger oplog",
			ErrOplogRolledOver, fmtTS(r.pos.TS), fmtTS(oldest))
	}
	return nil
}

func (r *oplogReader) nextRecords(ctx context.Context, max int) ([]record, Position, error) {
	if r.cur == nil {
		if err := r.open(ctx); err != nil {
			return nil, r.pos, err
		}
	}
	var recs []record
	for len(recs) < max {
		if !r.cur.TryNext(ctx) {
			err := r.cur.Err()
			if err != nil || r.cur.ID() == 0 {
				r.cur.Close(ctx)
				r.cur = nil
			}
			if err != nil && len(recs) == 0 {
				return nil, r.pos, fmt.Errorf("reading the source's oplog: %w", err)
			}
			if r.cur == nil && len(recs) == 0 {
				sleepCtx(ctx, oplogReopenWait)
			}
			break
		}
		entry := bson.Raw(append([]byte(nil), r.cur.Current...)) // Current is reused by the cursor
		t, i, ok := entry.Lookup("ts").TimestampOK()
		if !ok {
			return nil, r.pos, fmt.Errorf("an oplog entry without a ts: %s", truncate(entry.String(), 300))
		}
		r.pos = Position{TS: primitive.Timestamp{T: t, I: i}}
		r.inclusive = false
		recs = append(recs, record{raw: entry, pos: r.pos})
	}
	return recs, r.pos, nil
}

func (r *oplogReader) close(ctx context.Context) {
	if r.cur != nil {
		r.cur.Close(ctx)
		r.cur = nil
	}
}

// oplogBounds returns the ts of the oldest and newest oplog entries (zero when it is empty), in
// natural order, which is cheap on a real oplog.
func oplogBounds(ctx context.Context, oplog *mongo.Collection) (oldest, newest primitive.Timestamp, err error) {
	for i, dir := range []int{1, -1} {
		var e struct {
			TS primitive.Timestamp `bson:"ts"`
		}
		err := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: dir}}).
			SetProjection(bson.D{{Key: "ts", Value: 1}})).Decode(&e)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return primitive.Timestamp{}, primitive.Timestamp{}, nil
		}
		if err != nil {
			return primitive.Timestamp{}, primitive.Timestamp{}, fmt.Errorf("reading the source's oplog window: %w", err)
		}
		if i == 0 {
			oldest = e.TS
		} else {
			newest = e.TS
		}
	}
	return oldest, newest, nil
}

func fmtTS(ts primitive.Timestamp) string {
	return fmt.Sprintf("Timestamp(%d, %d) (%s)", ts.T, ts.I, time.Unix(int64(ts.T), 0).UTC().Format(time.RFC3339))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
