package applier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/lease"
)

// Capture intervals.
const (
	// DefaultCaptureBatch is how many source records a capture reads and appends at once.
	DefaultCaptureBatch = 1000
	// captureIdleSave: a capture that reads nothing still checkpoints this often, so that its
	// lag (atEnd, updatedAt) stays current in /progress.
	captureIdleSave = time.Second
	// liveCheckInterval is how often the capture looks whether the applier has switched to the live
	// source, after which it has nothing left to do.
	liveCheckInterval = time.Second
)

// CaptureConfig is one capturer's settings.
type CaptureConfig struct {
	Source *mongo.Client
	Meta   *metadata.DB
	Filter namespace.Filter
	// Mode picks the event source, as Config.Mode does for the applier.
	Mode string
	// StartAt is the sync's startAtOperationTime: a new capture starts there.
	StartAt primitive.Timestamp
	Batch   int
	// Stop, when closed, ends the capture after the batch in flight is appended and checkpointed.
	Stop <-chan struct{}
	Log  *zap.Logger
}

// Capture appends the source's change events to the spool while kept (the capture lease, from a
// lease.Store on the capture collection, named after the sync) is held: from its checkpoint, or
// from the sync's start time for a new sync. It returns nil once the applier reads the live source
// (the capture is then marked done and the spool cleared), when Stop is closed or ctx ends, and an
// error that ends this holding otherwise.
//
// The capture applies nothing: it only keeps the source's history from falling off the oplog while
// the copy runs, however long that takes. It keeps the records of the sync's namespaces only, as the
// source gave them, so that the applier reads the spool exactly as it reads the source.
func Capture(ctx context.Context, cfg CaptureConfig, kept *lease.Kept) error {
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultCaptureBatch
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	ctx = kept.Context()
	log := cfg.Log
	ck, _, err := ReadCheckpoint(ctx, cfg.Meta)
	if err != nil {
		return err
	}
	c, _, err := spool.ReadCapture(ctx, cfg.Meta)
	if err != nil {
		return err
	}
	if c.Direction != ck.Direction {
		// Only a reverse moves the direction, and it ends the capture for good (ResetForReverse).
		return fmt.Errorf("the capture is for direction %d, the applier for %d: %w", c.Direction, ck.Direction, ErrDirectionChanged)
	}
	fence := &checkpointer{coll: cfg.Meta.Collection(metadata.CollCapture), syncID: cfg.Meta.SyncID, lease: kept.Lease(), direction: c.Direction}
	if ck.Live || c.Done {
		return finishCapture(ctx, cfg.Meta, fence, log)
	}
	if c.Terminal != "" {
		log.Warn("the capture stopped for good earlier; not reading events", zap.String("error", c.Terminal))
		return holdUntilStopped(ctx, cfg.Stop)
	}
	topo, err := probeTopology(ctx, cfg.Source)
	if err != nil {
		return err
	}
	kind, err := chooseSource(topo, cfg.Mode)
	if err != nil {
		return noteCapture(ctx, fence, err)
	}
	from, inclusive := Position{TS: cfg.StartAt}, true
	if c.Position != nil {
		from, inclusive = *c.Position, false
		if c.Source != kind {
			from.Token = nil // resume by time: a token of the other kind means nothing here
			inclusive = true // at its time, not after it: a transaction's events there may not all be read (see newOplogRecords)
		}
	}
	var rr recordReader
	if kind == SourceChangeStream {
		rr = newChangeStreamRecords(cfg.Source, topo, from, inclusive)
	} else {
		rr = newOplogRecords(cfg.Source, from, inclusive)
	}
	defer rr.close(context.Background())
	sp := spool.Open(cfg.Meta, c.Direction)
	log.Info("capturing change events into the spool", zap.String("source", kind), zap.Int64("epoch", kept.Lease().Epoch),
		zap.String("from", fmtTS(from.TS)), zap.Bool("resuming", !inclusive))

	var lastSave, lastLive, lastWindow time.Time
	pos := from
	for {
		select {
		case <-cfg.Stop:
			// The sync may have moved on because the applier switched a moment ago (a commit
			// right after it): then the capture is over, and says so.
			if now, _, err := ReadCheckpoint(ctx, cfg.Meta); err == nil && now.Live {
				return finishCapture(ctx, cfg.Meta, fence, log)
			}
			log.Info("stopped capturing at a batch boundary", zap.String("through", fmtTS(pos.TS)))
			return nil
		default:
		}
		recs, next, err := rr.nextRecords(ctx, cfg.Batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if terminal(err) {
				// The events the capture still needs are gone from the source (its oplog rolled
				// over the capture's position): no retry brings them back, and the sync must start
				// again. Said at once, not after the copy, when the applier would find the same.
				log.Error("capturing change events stopped for good; the sync must be started again", zap.Error(err))
				return haltCapture(ctx, fence, cfg.Stop, err)
			}
			log.Error("capturing change events failed; retrying", zap.Error(err))
			return noteCapture(ctx, fence, err)
		}
		entries, bytes := spoolEntries(sp, kind, recs, cfg.Filter)
		// Duplicates (appended by a predecessor that died before its checkpoint) are refused;
		// the count below is of the records this checkpoint covers, so each is counted once.
		err = sp.Append(ctx, entries)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return noteCapture(ctx, fence, err)
		}
		moved := next.TS != pos.TS || spool.Key(next) != spool.Key(pos)
		if moved || len(recs) > 0 || time.Since(lastSave) >= captureIdleSave {
			var window *[2]primitive.Timestamp
			if kind == SourceOplog && time.Since(lastWindow) >= windowCheckInterval {
				lastWindow = time.Now()
				if oldest, newest, err := oplogBounds(ctx, cfg.Source.Database("local").Collection("oplog.rs")); err == nil {
					window = &[2]primitive.Timestamp{oldest, newest}
				}
			}
			if err := saveCapture(ctx, fence, kind, next, int64(len(entries)), bytes, len(recs) < cfg.Batch, window); err != nil {
				if errors.Is(err, ErrDeposed) || ctx.Err() != nil {
					log.Warn("the capture lease was taken over; this node stops capturing", zap.Error(err))
					return err
				}
				return noteCapture(ctx, fence, err)
			}
			pos, lastSave = next, time.Now()
		}
		if time.Since(lastLive) >= liveCheckInterval {
			lastLive = time.Now()
			now, _, err := ReadCheckpoint(ctx, cfg.Meta)
			if err == nil && now.Live {
				return finishCapture(ctx, cfg.Meta, fence, log)
			}
		}
	}
}

// spoolEntries are the records of recs that concern the sync's namespaces, as spool entries, and
// their size. A record fleetsync cannot parse is kept: the applier then fails on it, loudly, as it
// would reading the source.
func spoolEntries(sp *spool.Spool, kind string, recs []record, filter namespace.Filter) ([]spool.Entry, int64) {
	var out []spool.Entry
	var bytes int64
	for _, r := range recs {
		evs, err := parseRecord(kind, r.raw)
		if err == nil && !anyWanted(filter, evs) {
			continue
		}
		out = append(out, sp.NewEntry(kind, r.pos, r.raw))
		bytes += int64(len(r.raw))
	}
	return out, bytes
}

// anyWanted reports whether any of evs concerns the sync's namespaces.
func anyWanted(filter namespace.Filter, evs []changeevent.Event) bool {
	for _, ev := range evs {
		if wanted(filter, ev) {
			return true
		}
	}
	return false
}

// saveCapture checkpoints the capture at pos, fenced by its lease and direction; window, when read,
// is the source's oplog window.
func saveCapture(ctx context.Context, fence *checkpointer, kind string, pos Position, added, bytes int64, atEnd bool, window *[2]primitive.Timestamp) error {
	set := bson.D{{Key: "source", Value: kind}, {Key: "position", Value: pos}, {Key: "atEnd", Value: atEnd}}
	if window != nil {
		set = append(set, bson.E{Key: "oplogOldest", Value: window[0]}, bson.E{Key: "oplogNewest", Value: window[1]})
	}
	res, err := fence.coll.UpdateOne(ctx, fence.fence(), bson.D{
		{Key: "$set", Value: set},
		{Key: "$unset", Value: bson.D{{Key: "error", Value: ""}}},
		{Key: "$inc", Value: bson.D{{Key: "captured", Value: added}, {Key: "capturedBytes", Value: bytes}}},
		{Key: "$currentDate", Value: bson.D{{Key: "updatedAt", Value: true}}},
	})
	if err != nil {
		return fmt.Errorf("saving the capture's checkpoint: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrDeposed
	}
	return nil
}

// noteCapture records the capture's failure for /progress and returns it after a moment (the node
// then runs the capture again).
func noteCapture(ctx context.Context, fence *checkpointer, failure error) error {
	_, _ = fence.coll.UpdateOne(ctx, fence.fence(), bson.D{{Key: "$set", Value: bson.D{{Key: "error", Value: failure.Error()}}}})
	sleepCtx(ctx, errorBackoff)
	return failure
}

// haltCapture records a failure no retry can fix as the capture's terminal error, for /progress,
// and holds the capture (holdUntilStopped). Not recorded (the destination is away), it is returned:
// the next capturer meets it again and records it.
func haltCapture(ctx context.Context, fence *checkpointer, stop <-chan struct{}, failure error) error {
	res, err := fence.coll.UpdateOne(ctx, fence.fence(), bson.D{{Key: "$set", Value: bson.D{
		{Key: "error", Value: failure.Error()}, {Key: "terminal", Value: failure.Error()}}}})
	if err != nil || res.MatchedCount == 0 {
		sleepCtx(ctx, errorBackoff)
		return failure
	}
	return holdUntilStopped(ctx, stop)
}

// finishCapture marks the capture done and clears the spool: the applier reads the live source.
func finishCapture(ctx context.Context, meta *metadata.DB, fence *checkpointer, log *zap.Logger) error {
	res, err := fence.coll.UpdateOne(ctx, fence.fence(), bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}, {Key: "atEnd", Value: true}}}})
	if err != nil {
		return fmt.Errorf("marking the capture done: %w", err)
	}
	if res.MatchedCount == 0 {
		return ErrDeposed
	}
	log.Info("the applier reads the live source: the capture is over")
	return spool.Clear(ctx, meta)
}
