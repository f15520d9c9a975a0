// Package applier keeps the destination current: one node at a time, the holder of the sync's
// applier lease, reads the source's change events (a cluster-wide change stream, or the oplog)
// from the last checkpoint and applies them to the destination.
//
// The flow of one round: read a batch of events; split its CRUD events into lanes by a hash of
// (namespace, _id), so that each document's events stay in order while lanes write in parallel,
// with one ordered bulk write per namespace and lane; apply a DDL event alone, after everything
// before it and before anything after it (a barrier); then record the batch's position in the
// checkpoint, fenced by the lease's epoch. Every write is idempotent (see nsWriter.apply), so an
// applier that dies between applying and checkpointing costs a re-application of one batch, never a
// lost or doubled effect.
//
// The data writes themselves cannot be fenced by the lease without transactions, so a deposed
// applier must not start one: before each batch the applier checks, on its own monotonic clock,
// that its lease is still valid for at least a fifth of its TTL, and runs the batch's writes with the
// lease's validity as their deadline, which Config.Writes sends to the server as maxTimeMS. A process frozen mid-batch (SIGSTOP, a GC pause) wakes up past
// that deadline and its remaining writes fail before they are sent; the next holder's lease starts
// only after the old one's TTL, which is later than that deadline.
package applier

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/retryable"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/lease"
)

// Defaults and intervals.
const (
	// DefaultLanes is the number of parallel write lanes.
	DefaultLanes = 8
	// DefaultBatchEvents bounds a batch: with the read-ahead of one batch, at most twice this many
	// events are held in memory whatever the backlog (16 MB events at most: a bounded few GB in the
	// pathological case, typically a few MB).
	DefaultBatchEvents = 2000
	// minApplyWindowDivisor: a batch is started only with at least TTL/5 of lease validity left
	// (2 s of a 10 s lease). Renewals every TTL/3 keep about 0.47 TTL left at worst, so a healthy
	// holder never waits; one whose renewals fail stops well before its lease can expire.
	minApplyWindowDivisor = 5
	// windowCheckInterval is how often the oplog window is compared with the resume point.
	windowCheckInterval = 10 * time.Second
	// windowWarnFraction: warn when the resume point is in the oldest tenth of the oplog window.
	windowWarnFraction = 0.1
	// errorBackoff is the pause before retrying after a failed batch.
	errorBackoff = time.Second
	// rateSmoothing weighs a new catch-up rate sample in the moving average.
	rateSmoothing = 0.3
	// trimInterval spaces the deletes of applied spool entries: one delete covers every batch
	// applied since the last.
	trimInterval = time.Second
)

// Config is one applier's settings.
type Config struct {
	Source, Destination *mongo.Client
	// Writes takes the CRUD writes to the destination (nil: Destination). Give it the driver's
	// operation timeout (mongoconn.Options.OperationTimeout) so that each batch's lease deadline
	// reaches the server as maxTimeMS; DDL, index builds and reads stay on Destination, unbounded
	// by it.
	Writes *mongo.Client
	Meta   *metadata.DB
	Filter namespace.Filter
	// Mode picks the event source: ModeAuto (a change stream where the source has one, else the
	// oplog), ModeChangeStream or ModeOplog.
	Mode        string
	Lanes       int
	BatchEvents int
	// Stop, when closed, ends Run after the batch in flight is applied and checkpointed (pause).
	// Cancelling ctx instead ends it at once; the next applier re-applies the unfinished batch.
	Stop <-chan struct{}
	Log  *zap.Logger

	// Reversed is the direction Source and Destination were chosen for (the sync document's
	// reversed): Run refuses to apply in a sync whose direction differs (ErrDirectionChanged).
	Reversed bool
}

// Run applies change events while kept (the applier lease, from a lease.Store on the checkpoints
// collection, named after the sync) is held, from the checkpoint or, for a new sync, from the sync's
// startAtOperationTime. It returns when the lease is lost or ctx ends, or with an error that stops
// this holding (the node then competes for the lease again).
func Run(ctx context.Context, cfg Config, kept *lease.Kept) error {
	if cfg.Lanes <= 0 {
		cfg.Lanes = DefaultLanes
	}
	if cfg.BatchEvents <= 0 {
		cfg.BatchEvents = DefaultBatchEvents
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	a := &applier{cfg: cfg, kept: kept, ckpt: &checkpointer{
		coll: cfg.Meta.Collection(metadata.CollCheckpoints), syncID: cfg.Meta.SyncID, lease: kept.Lease(),
	}}
	return a.run(kept.Context())
}

type applier struct {
	cfg  Config
	kept *lease.Kept
	ckpt *checkpointer

	source       string
	warnings     Warnings
	buildIndexes string // the sync's buildIndexes option

	// uuids is the catalog by collection UUID (see resolve); nil until loaded, and after DDL.
	uuids *collectionNames

	// boundary checkpoints mid-batch, around DDL events (see applyBatch); nil applies without.
	boundary func(ctx context.Context, i int, ev changeevent.Event, n batchCounts) error

	beforeBatch func() // tests only: runs before each batch's lease check

	// For counting the spool entries applied (Checkpoint.FromSpool): the batch being applied, and
	// how many of its entries a boundary checkpoint already counted.
	applying events
	counted  int64
}

// batch is what the reader hands to the writer.
type batch struct {
	events []changeevent.Event
	ends   []int // from the spool: see events.ends
	// switchAt is the switch from the spool to the live source (see events.switchAt): recorded by
	// the writer, once every batch before it is applied and checkpointed.
	switchAt *Position
	pos      Position
	err      error
	readAt   time.Time
}

func (a *applier) run(ctx context.Context) error {
	log := a.cfg.Log
	// The checkpoint before the sync document: a reverse writes them in that order, so an applier
	// that reads the old direction here either sees the new one in the sync document, or has its
	// checkpoints refused (they are fenced by this direction).
	ck, _, err := ReadCheckpoint(ctx, a.cfg.Meta)
	if err != nil {
		return err
	}
	a.ckpt.direction = ck.Direction
	syncDoc, err := a.cfg.Meta.Sync(ctx)
	if err != nil {
		return err
	}
	if syncDoc.State == metadata.StateReversing || syncDoc.Reversed != a.cfg.Reversed {
		log.Info("not applying: the sync's direction is not this applier's", zap.String("state", syncDoc.State),
			zap.Bool("reversed", syncDoc.Reversed), zap.Bool("applierReversed", a.cfg.Reversed))
		return ErrDirectionChanged
	}
	// The source is chosen only now that the direction is known: a failure to choose is noted in
	// the checkpoint, fenced by that direction (with the direction unread, the note would be refused
	// as deposed after a reverse, and the applier retried at once, for ever, saying nothing).
	topo, err := probeTopology(ctx, a.cfg.Source)
	if err != nil {
		return err
	}
	a.source, err = chooseSource(topo, a.cfg.Mode)
	if err != nil {
		return a.fail(ctx, err)
	}
	a.buildIndexes = syncDoc.Options.BuildIndexes
	if ck.Terminal != "" {
		log.Warn("change event application stopped for good earlier; not reading events", zap.String("error", ck.Terminal))
		return a.halt(ctx)
	}
	from, inclusive := Position{TS: syncDoc.StartAtOperationTime}, true
	if ck.Position != nil {
		from, inclusive = *ck.Position, false
		if ck.Source != a.source {
			// Switching sources: resume by time; the token of the other kind means nothing here.
			from.Token = nil
			inclusive = true // at its time, not after it: a transaction's events there may not all be read (see newOplogRecords)
		}
	}
	a.warnings = append(Warnings(nil), ck.Warnings...)
	var r reader
	if ck.Live {
		r = a.liveReader(topo, from, inclusive)
		// Left by a capturer deposed after the switch, or by a switch whose clearing failed.
		if err := spool.Clear(ctx, a.cfg.Meta); err != nil {
			log.Warn("cannot clear the spool", zap.Error(err))
		}
	} else {
		r = &spoolReader{meta: a.cfg.Meta, spool: spool.Open(a.cfg.Meta, ck.Direction), direction: ck.Direction, liveKind: a.source,
			pos: from, inclusive: inclusive, open: func(pos Position, inclusive bool) reader { return a.liveReader(topo, pos, inclusive) }}
	}
	defer r.close(context.Background())
	log.Info("applying change events", zap.String("source", a.source), zap.Bool("live", ck.Live), zap.Int64("epoch", a.kept.Lease().Epoch),
		zap.String("from", fmtTS(from.TS)), zap.Bool("resuming", !inclusive))

	a.boundary = func(ctx context.Context, i int, ev changeevent.Event, n batchCounts) error {
		n.spooled = a.applying.covered(i) - a.counted
		if err := a.ckpt.save(ctx, a.source, eventPosition(ev), n, 0); err != nil {
			return err
		}
		a.counted += n.spooled
		return nil
	}
	sp := spool.Open(a.cfg.Meta, ck.Direction)
	var lastTrim time.Time

	// The reader runs one batch ahead of the writer; the channel holds at most one more.
	batches := make(chan batch, 1)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		defer close(batches)
		for readCtx.Err() == nil {
			evs, pos, err := r.next(readCtx, a.cfg.BatchEvents)
			select {
			case batches <- batch{events: evs.list, ends: evs.ends, switchAt: evs.switchAt, pos: pos, err: err, readAt: time.Now()}:
			case <-readCtx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer readers.Wait()
	defer stopReading()

	var (
		lastSaved    = from
		lastRate     float64
		lastWindow   time.Time
		rateFrom     = time.Now()
		rateFromTS   = from.TS
		sinceCounted batchCounts
	)
	for {
		var b batch
		select {
		case <-a.cfg.Stop:
			log.Info("stopped applying at a batch boundary", zap.String("through", fmtTS(lastSaved.TS)))
			return nil
		case next, ok := <-batches:
			if !ok {
				return nil
			}
			b = next
		}
		if b.err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return a.fail(ctx, b.err)
		}
		if b.switchAt != nil {
			if err := a.goLive(ctx, *b.switchAt, lastSaved, sinceCounted); err != nil {
				if errors.Is(err, ErrDeposed) {
					log.Warn("the applier lease was taken over; this node stops applying")
					return err
				}
				if ctx.Err() != nil {
					return nil
				}
				return a.fail(ctx, err)
			}
			if b.switchAt.TS.After(lastSaved.TS) {
				lastSaved = *b.switchAt
			}
			sinceCounted = batchCounts{}
			continue
		}
		if !b.pos.TS.After(lastSaved.TS) && len(b.events) == 0 {
			continue // nothing new
		}
		// The lease must outlive the batch's writes; see the package comment.
		if a.beforeBatch != nil {
			a.beforeBatch()
		}
		until := a.kept.ValidUntil()
		if time.Until(until) < a.kept.Lease().TTL/minApplyWindowDivisor {
			log.Warn("lease validity too short to start a batch; this node stops applying",
				zap.Duration("left", time.Until(until)), zap.Int("events", len(b.events)))
			return ErrDeposed
		}
		wctx, cancel := context.WithDeadline(ctx, until)
		a.applying, a.counted = events{list: b.events, ends: b.ends}, 0
		n, err := a.applyBatch(wctx, b.events)
		cancel()
		if err != nil {
			if retryable.OutcomeUnknown(err) {
				// A write of the batch got no answer and may still run on the destination until
				// its deadline (maxTimeMS): the batch is applied again, here or by a successor, only
				// after that, or the late write could overwrite a newer version of its document.
				a.kept.WaitOut(until)
			}
			if errors.Is(err, ErrDeposed) {
				log.Warn("the applier lease was taken over; this node stops applying")
				return err
			}
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
				log.Warn("stopped in the middle of a batch; the next applier re-applies it", zap.Error(err))
				return ErrDeposed
			}
			return a.fail(ctx, err)
		}
		sinceCounted.crud += n.crud
		sinceCounted.ddl += n.ddl
		sinceCounted.refreshed += n.refreshed
		sinceCounted.spooled += int64(len(b.ends)) - a.counted
		if n.last.After(sinceCounted.last) {
			sinceCounted.last = n.last
		}

		// Catch-up rate: source seconds applied per wall second, sampled while behind.
		if el := time.Since(rateFrom); el >= time.Second {
			applied := float64(int64(b.pos.TS.T) - int64(rateFromTS.T))
			if len(b.events) >= a.cfg.BatchEvents/2 && applied >= 0 {
				sample := applied / el.Seconds()
				if lastRate == 0 {
					lastRate = sample
				} else {
					lastRate = rateSmoothing*sample + (1-rateSmoothing)*lastRate
				}
			}
			rateFrom, rateFromTS = time.Now(), b.pos.TS
		}

		if err := a.ckpt.save(ctx, a.source, b.pos, sinceCounted, lastRate); err != nil {
			if errors.Is(err, ErrDeposed) {
				log.Warn("the applier lease was taken over; this node stops applying")
				return err
			}
			if ctx.Err() != nil {
				return nil // stopping: the batch is applied again by the next applier
			}
			return a.fail(ctx, err)
		}
		lastSaved, sinceCounted = b.pos, batchCounts{}
		if len(b.ends) > 0 && time.Since(lastTrim) >= trimInterval {
			// Applied and checkpointed: the spool need not keep these any more.
			lastTrim = time.Now()
			if _, err := sp.TrimThrough(ctx, b.pos); err != nil {
				log.Warn("cannot trim the spool; trying again later", zap.Error(err))
			}
		}

		if len(b.ends) == 0 && time.Since(lastWindow) >= windowCheckInterval {
			// Only for the live source: a position read from the spool needs nothing of the
			// source's oplog (the capture's lag is what is watched then).
			lastWindow = time.Now()
			a.checkWindow(ctx, b.pos.TS)
		}
	}
}

// liveReader reads the source itself, after from (at from when inclusive).
func (a *applier) liveReader(topo topology, from Position, inclusive bool) reader {
	if a.source == SourceChangeStream {
		return newChangeStreamReader(a.cfg.Source, topo, from, inclusive)
	}
	return newOplogReader(a.cfg.Source, from, inclusive)
}

// goLive records the switch from the spool to the live source at pos, once every batch read from
// the spool is applied and checkpointed (the reader hands the switch over behind them): first the
// checkpoint at pos, then the switch itself, both fenced. An applier that starts after the switch
// reads the live source from the checkpoint, which is then pos; one that starts before it reads the
// spool from the checkpoint. The spool is then deleted: nothing will read it again.
func (a *applier) goLive(ctx context.Context, pos, lastSaved Position, pending batchCounts) error {
	if pos.TS.After(lastSaved.TS) {
		if err := a.ckpt.save(ctx, a.source, pos, pending, 0); err != nil {
			return err
		}
	}
	if err := a.ckpt.goLive(ctx, pos); err != nil {
		return err
	}
	a.cfg.Log.Info("applied the spool: reading the live source from here on", zap.String("after", fmtTS(pos.TS)), zap.String("source", a.source))
	if err := spool.Clear(ctx, a.cfg.Meta); err != nil {
		a.cfg.Log.Warn("cannot clear the spool; the next applier clears it", zap.Error(err))
	}
	return nil
}

// applyBatch applies one batch: CRUD events in lanes, DDL events as barriers. It returns the counts
// not yet passed to a.boundary.
//
// Around each DDL event the position is checkpointed (through a.boundary) twice: after the events
// before it, and after it. A batch that is applied again after a takeover then never replays writes
// to a namespace across the DDL that changed it: replaying inserts to a collection's old name after
// its rename, say, would create a fresh collection under the old name that a replayed rename (which
// replaces its target) would then put in place of the renamed one. Only the DDL event itself can be
// replayed, alone, and every DDL is idempotent on its own.
func (a *applier) applyBatch(ctx context.Context, events []changeevent.Event) (batchCounts, error) {
	var n batchCounts
	var pending []changeevent.Event
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		refreshed, err := a.applyCRUD(ctx, pending)
		n.crud += int64(len(pending))
		n.refreshed += refreshed
		pending = pending[:0]
		return err
	}
	// mark checkpoints through events[i], when that is a position a reader can resume after.
	mark := func(i int) error {
		if a.boundary == nil || i < 0 || !resumableAfter(events, i) {
			return nil
		}
		if err := a.boundary(ctx, i, events[i], n); err != nil {
			return err
		}
		n = batchCounts{}
		return nil
	}
	for i, ev := range events {
		ev, apply, rerr := a.resolve(ctx, ev)
		if rerr != nil {
			return n, rerr
		}
		if !apply || !a.wanted(ev) {
			continue
		}
		if ev.ClusterTime.After(n.last) {
			n.last = ev.ClusterTime
		}
		if !ev.Op.IsDDL() {
			pending = append(pending, ev)
			continue
		}
		if err := flush(); err != nil {
			return n, err
		}
		if err := mark(i - 1); err != nil {
			return n, err
		}
		err := a.applyDDL(ctx, ev)
		var warn *ddlWarning
		if errors.As(err, &warn) {
			a.warn(ctx, ddlWarningKind(warn.msg), warn.msg)
			err = nil
		}
		if err != nil {
			return n, err
		}
		n.ddl++
		a.cfg.Log.Info("applied a DDL event", zap.String("op", string(ev.Op)), zap.String("ns", ev.NS.String()))
		if err := mark(i); err != nil {
			return n, err
		}
	}
	return n, flush()
}

// resumableAfter reports whether a reader can resume right after events[i]: a change stream event
// has its own resume token, but the events of one oplog entry (a transaction's applyOps) share its
// ts, so only the entry's last event is a position.
func resumableAfter(events []changeevent.Event, i int) bool {
	if events[i].ResumeToken != nil {
		return true
	}
	return i == len(events)-1 || events[i].ClusterTime.Before(events[i+1].ClusterTime)
}

// eventPosition is the position right after ev.
func eventPosition(ev changeevent.Event) Position {
	return Position{TS: ev.ClusterTime, Token: ev.ResumeToken}
}

// wanted reports whether an event concerns user data of this sync.
func (a *applier) wanted(ev changeevent.Event) bool { return wanted(a.cfg.Filter, ev) }

// wanted reports whether an event concerns the namespaces filter selects.
func wanted(filter namespace.Filter, ev changeevent.Event) bool {
	if ev.Op == changeevent.DropDatabase {
		return filter.MaySelectDatabase(ev.NS.DB)
	}
	if ev.Op == changeevent.Rename {
		return filter.Selected(ev.NS) || filter.Selected(ev.To)
	}
	return filter.Selected(ev.NS)
}

// applyCRUD applies CRUD events in parallel lanes and waits for all of them.
func (a *applier) applyCRUD(ctx context.Context, events []changeevent.Event) (int64, error) {
	type key struct {
		lane int
		ns   namespace.Namespace
	}
	// Per lane and namespace, in source order; the lanes' namespaces are written one after another.
	groups := map[key][]changeevent.Event{}
	var order []key
	for _, ev := range events {
		k := key{lane: a.lane(ev), ns: ev.NS}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], ev)
	}
	lanes := make([][]key, a.cfg.Lanes)
	for _, k := range order {
		lanes[k.lane] = append(lanes[k.lane], k)
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		firstErr  error
		refreshed int64
	)
	for _, keys := range lanes {
		if len(keys) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range keys {
				w := nsWriter{source: a.cfg.Source, destination: a.writes(), ns: k.ns}
				r, err := w.apply(ctx, groups[k])
				mu.Lock()
				refreshed += r
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return refreshed, firstErr
}

// writes is the client CRUD writes go to.
func (a *applier) writes() *mongo.Client {
	if a.cfg.Writes != nil {
		return a.cfg.Writes
	}
	return a.cfg.Destination
}

// lane is the hash of (namespace, _id) modulo the lane count: one document's events always share
// a lane, and so keep their order.
func (a *applier) lane(ev changeevent.Event) int {
	h := fnv.New32a()
	h.Write([]byte(ev.NS.String()))
	h.Write([]byte{0})
	h.Write([]byte(bsonorder.Key(ev.DocumentKey.Lookup("_id"))))
	return int(h.Sum32() % uint32(a.cfg.Lanes))
}

// fail records err in the checkpoint for /progress. A terminal error (see terminal) is recorded as
// such and holds the applier: nothing is retried, and fail returns nil only when told to stop (a
// pause, the node stopping, the lease lost). Any other error is returned after a moment, and the
// node runs the applier again.
func (a *applier) fail(ctx context.Context, err error) error {
	final := terminal(err)
	if final {
		a.cfg.Log.Error("change event application stopped for good; the sync must be started again", zap.Error(err))
	} else {
		a.cfg.Log.Error("change event application failed; retrying", zap.Error(err))
	}
	nerr := a.ckpt.note(ctx, a.warnings, err, final)
	if errors.Is(nerr, ErrDeposed) {
		return ErrDeposed
	}
	if final && nerr == nil {
		return a.halt(ctx)
	}
	// Not recorded yet (the destination is away): the next run meets the error again and records it.
	sleepCtx(ctx, errorBackoff)
	return err
}

// terminal reports whether err ends change event application for good: the events the destination
// needs are gone from the source (its oplog rolled over the resume point; a change stream's history
// is lost), or a collection that was never copied was renamed into the sync's namespaces, or one
// was renamed during its copy where the copy could not follow it (copied by name for want of a
// UUID, or renamed into another database), or before the catalog with no UUID to tell its effect. No retry can fix any of them; retrying would only fail
// again every second for as long as the fleet runs.
func terminal(err error) bool {
	if errors.Is(err, ErrOplogRolledOver) || errors.Is(err, ErrRenamedIntoFilter) || errors.Is(err, ErrRenamedWhileCopiedByName) ||
		errors.Is(err, ErrRenamedAcrossDatabasesDuringCopy) || errors.Is(err, ErrRenamedBeforeCatalogWithoutUUID) {
		return true
	}
	var se mongo.ServerError
	return errors.As(err, &se) && (se.HasErrorCode(codeChangeStreamHistoryLost) || se.HasErrorCode(codeChangeStreamFatalError))
}

// MongoDB's codes for a change stream that cannot resume (error_codes.yml).
const (
	codeChangeStreamFatalError  = 280
	codeChangeStreamHistoryLost = 286
)

// halt holds a stopped applier until it is told to stop (a pause, the node stopping) or its lease
// ends, and returns nil: the node keeps the lease, so no other node picks the work up to fail again.
func (a *applier) halt(ctx context.Context) error { return holdUntilStopped(ctx, a.cfg.Stop) }

// holdUntilStopped waits until stop is closed or ctx ends, and returns nil: a role that stopped for
// good keeps its lease meanwhile, so that no other node picks its work up to fail again.
func holdUntilStopped(ctx context.Context, stop <-chan struct{}) error {
	select {
	case <-stop:
	case <-ctx.Done():
	}
	return nil
}

// warn records msg as the warning of its kind, replacing an older one of that kind.
func (a *applier) warn(ctx context.Context, kind, msg string) {
	ws, changed := a.warnings.with(kind, msg)
	if !changed {
		return
	}
	a.cfg.Log.Warn(msg)
	a.warnings = ws
	a.saveWarnings(ctx)
}

// unwarn removes kind's warning: the condition it reported is over.
func (a *applier) unwarn(ctx context.Context, kind string) {
	ws, changed := a.warnings.without(kind)
	if !changed {
		return
	}
	a.warnings = ws
	a.saveWarnings(ctx)
}

func (a *applier) saveWarnings(ctx context.Context) {
	if err := a.ckpt.note(ctx, a.warnings, nil, false); err != nil && !errors.Is(err, ErrDeposed) {
		a.cfg.Log.Warn("cannot record the applier's warnings", zap.Error(err))
	}
}

// warningMessages are the warnings held in memory (tests).
func (a *applier) warningMessages() []string { return a.warnings.Messages() }

// Warning kinds. A DDL warning is one per message: each reports one event that was not applied.
const warnOplogWindow = "oplogWindow"

func ddlWarningKind(msg string) string { return "ddl: " + msg }

// checkWindow warns when the resume point is close to falling off the source's oplog, replacing the
// previous such warning, and withdraws it once the resume point is safe again.
func (a *applier) checkWindow(ctx context.Context, at primitive.Timestamp) {
	oldest, newest, err := oplogBounds(ctx, a.cfg.Source.Database("local").Collection("oplog.rs"))
	if err != nil {
		a.cfg.Log.Debug("cannot read the source's oplog window", zap.Error(err))
		return
	}
	if msg := windowWarning(oldest, newest, at); msg != "" {
		a.warn(ctx, warnOplogWindow, msg)
	} else {
		a.unwarn(ctx, warnOplogWindow)
	}
}

// windowWarningPrefix starts every oplog-window warning.
const windowWarningPrefix = "the applier's resume point is "

// windowWarning says, when it is so, that the resume point at is within the oldest
// windowWarnFraction of the oplog window [oldest, newest].
func windowWarning(oldest, newest, at primitive.Timestamp) string {
	window := int64(newest.T) - int64(oldest.T)
	if window <= 0 || oldest.IsZero() || at.T == 0 {
		return ""
	}
	headroom := int64(at.T) - int64(oldest.T)
	if float64(headroom) >= windowWarnFraction*float64(window) {
		return ""
	}
	return fmt.Sprintf(windowWarningPrefix+"%ds from falling off the source's oplog (window %ds); if it falls off, the sync must start over: let it catch up, or enlarge the source's oplog", max(headroom, 0), window)
}
