// Package worker copies partitions: a worker claims one partition's lease, reads its _id range from
// the source in _id order, writes the documents to the destination in unordered bulk inserts, and
// checkpoints the last copied _id under the lease's epoch after every batch. A worker that takes
// over a partition from a dead node resumes after that node's checkpoint.
package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/concern"
	"github.com/fleetsync/fleetsync/internal/retryable"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// Defaults for Config's zero values.
const (
	// DefaultBatchDocs matches the naive copy's insertMany batches: large enough that the per-batch
	// checkpoint costs little, small enough that a takeover redoes little.
	DefaultBatchDocs = 1000
	// DefaultBatchBytes caps a batch's size whatever the documents' size (up to 16 MiB each), which
	// with at most batchesInFlight batches per worker bounds a worker's memory.
	DefaultBatchBytes = 8 << 20
)

// batchesInFlight: while one batch is written, the reader fills the next one; no more are buffered.
const batchesInFlight = 1

// handBackTimeout bounds how long a stopping worker spends writing its last batch, checkpointing and
// releasing its partition before it gives up and lets the lease expire instead.
const handBackTimeout = 20 * time.Second

// minWriteWindowDivisor: a batch is written only with at least TTL/5 of the partition lease's
// validity left (2 s of a 10 s lease), the same margin the applier keeps. Renewals every TTL/3 keep
// about 0.47 TTL left at worst, so a healthy worker never waits; one whose process was frozen wakes
// up past its validity and writes nothing.
const minWriteWindowDivisor = 5

// Config is what a worker needs. Owner must be unique to this worker in the fleet.
type Config struct {
	Source *mongo.Client
	// Destination receives the copied documents. Give it the driver's operation timeout
	// (mongoconn.Options.OperationTimeout) so that each batch's lease deadline reaches the server
	// as maxTimeMS; any client works, but without it the bound stays on the client.
	Destination *mongo.Client
	Partitions  *partition.Store
	Owner       string
	LeaseTTL    time.Duration
	BatchDocs   int
	BatchBytes  int
	// ReadAfter returns the sync's startAtOperationTime, asked once per partition (the sync may
	// start after the worker is made): source reads wait for a majority snapshot that includes it.
	// Nil or zero: majority reads without a time.
	ReadAfter func() primitive.Timestamp
	Log       *zap.Logger
}

// Worker copies one partition at a time.
type Worker struct {
	cfg Config

	// noUUID is set once the source refused a find's collectionUUID (MongoDB before 6.0): this
	// worker then reads by name and follows collections by listing their database (rangeReader).
	noUUID atomic.Bool

	// beforeWrite runs before each batch's lease check (tests only: it stands for the moment a
	// frozen process wakes up, with its batch in hand).
	beforeWrite func()
}

// ErrNoLeaseTime says a batch was not written because the partition lease's validity, as this
// node last renewed it, had too little time left: the worker may have been frozen past it, and
// another worker may hold the partition by now.
var ErrNoLeaseTime = fmt.Errorf("%w: too little of the partition lease's validity was left to write a batch", lease.ErrLost)

// New returns a worker with cfg, defaults filled in.
func New(cfg Config) *Worker {
	if cfg.BatchDocs <= 0 {
		cfg.BatchDocs = DefaultBatchDocs
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Worker{cfg: cfg}
}

// Result says what CopyOne did.
type Result int

const (
	NothingToClaim Result = iota // no claimable partition right now
	Copied                       // a partition was copied to its end
	HandedBack                   // stop was closed: the partition was checkpointed and released unfinished
	Lost                         // the partition's lease was lost (expired or taken over); its new holder continues
	Failed                       // copying failed; the failure is recorded on the partition for a retry (see partition.Store.Fail)
)

// CopyOne claims a partition and copies it to its end. When stop is closed it finishes the batch in
// flight, checkpoints it and hands the partition back. ctx cancelled means stop at once, without
// handing back (the lease then expires). The error is non-nil for Failed and Lost, saying why.
func (w *Worker) CopyOne(ctx context.Context, stop <-chan struct{}) (Result, error) {
	claim, err := w.cfg.Partitions.Claim(ctx, w.cfg.Owner, w.cfg.LeaseTTL)
	if err != nil {
		return Failed, err
	}
	if claim == nil {
		return NothingToClaim, nil
	}
	p := claim.Partition
	log := w.cfg.Log.With(zap.String("partition", p.ID), zap.Int64("epoch", claim.Lease.Epoch))
	if p.LastID.Type != 0 {
		log.Info("resuming partition after its checkpoint", zap.String("range", p.Range.String()),
			zap.String("after", p.LastID.String()), zap.Int64("docsCopiedBefore", p.DocsCopied))
	} else {
		log.Debug("copying partition", zap.String("range", p.Range.String()))
	}

	kept := lease.Keep(ctx, w.cfg.Partitions.Leases(), claim.Lease)
	defer kept.Stop()
	res, err := w.copy(kept, stop, claim)
	switch res {
	case Copied:
		err = w.cfg.Partitions.Complete(kept.Context(), claim)
		if err != nil {
			res = Lost
		}
	case HandedBack:
		hctx, cancel := context.WithTimeout(context.Background(), handBackTimeout)
		err = w.cfg.Partitions.Release(hctx, claim)
		cancel()
	case Failed:
		if errors.Is(kept.Err(), lease.ErrLost) {
			res, err = Lost, kept.Err()
			break
		}
		if retryable.Is(err) {
			log.Warn("copying partition met a transient error; it will be retried from its checkpoint, with no attempt counted", zap.Error(err))
		} else {
			log.Warn("copying partition failed; it will be retried from its checkpoint", zap.Error(err))
		}
		if ferr := w.cfg.Partitions.Fail(kept.Context(), claim, err); ferr != nil {
			log.Warn("recording the failure", zap.Error(ferr))
		}
	}
	if res == Lost {
		log.Warn("lost the partition's lease; its new holder continues from the checkpoint", zap.Error(err))
	}
	return res, err
}

// batch is a run of documents read in _id order.
type batch struct {
	docs  []any // bson.Raw each, as InsertMany wants them
	bytes int64
	last  bson.RawValue
}

// copy streams the claimed range while kept holds its lease.
func (w *Worker) copy(kept *lease.Kept, stop <-chan struct{}, claim *partition.Claim) (Result, error) {
	ctx := kept.Context() // cancelled when the lease is lost
	p := claim.Partition
	db, coll, ok := strings.Cut(p.NS, ".")
	if !ok {
		return Failed, fmt.Errorf("partition %s has a malformed namespace %q", p.ID, p.NS)
	}
	// Written under the name the collection was cataloged with, whatever it is called on the source
	// now: the applier replays the source's renames in order, and they move it.
	dst := concern.DestinationCollection(w.cfg.Destination, db, coll)

	var after primitive.Timestamp
	if w.cfg.ReadAfter != nil {
		after = w.cfg.ReadAfter()
	}
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	readCtx, endSession, err := concern.ReadAfter(readCtx, w.cfg.Source, after)
	if err != nil {
		return Failed, err
	}
	batches := make(chan batch, batchesInFlight)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		defer endSession()
		readErr <- w.read(readCtx, claim, after, batches)
	}()

	for {
		var b batch
		var more bool
		select {
		case <-stop:
			// Hand back: no new batch. A batch already read is written below if it is waiting.
			stopReading()
			select {
			case b, more = <-batches:
			default:
			}
			if more {
				if err := w.fencedWrite(kept, dst, claim, b); err != nil {
					if errors.Is(err, lease.ErrLost) {
						return Lost, err
					}
					return Failed, err
				}
			}
			return HandedBack, nil
		case b, more = <-batches:
		}
		if !more {
			if err := <-readErr; err != nil {
				return Failed, fmt.Errorf("reading %s %s from the source: %w", p.NS, p.Range, err)
			}
			return Copied, nil
		}
		if err := w.fencedWrite(kept, dst, claim, b); err != nil {
			if errors.Is(err, lease.ErrLost) {
				return Lost, err
			}
			return Failed, err
		}
	}
}

// fencedWrite writes b and its checkpoint only while the partition lease is still valid for at
// least TTL/minWriteWindowDivisor, under that validity as their deadline (which the destination
// client sends as maxTimeMS). Data writes cannot carry the lease's fence, so this is what stops a
// worker that was frozen (SIGSTOP, a long GC pause) with a batch in hand: it wakes up with its own
// monotonic clock past the validity, before its lease keeper has had a chance to notice, and
// without this check would insert the batch after another worker took the partition over, after
// the apply phase began and after a delete of one of its documents was applied, bringing the
// document back for good.
func (w *Worker) fencedWrite(kept *lease.Kept, dst *mongo.Collection, claim *partition.Claim, b batch) error {
	if w.beforeWrite != nil {
		w.beforeWrite()
	}
	until := kept.ValidUntil()
	left := time.Until(until)
	if left < claim.Lease.TTL/minWriteWindowDivisor {
		return fmt.Errorf("%w (%s left of its %s TTL, with %d documents of %s in hand); they are copied again by the next holder",
			ErrNoLeaseTime, left.Round(time.Millisecond), claim.Lease.TTL, len(b.docs), claim.Partition.NS)
	}
	ctx, cancel := context.WithDeadline(kept.Context(), until)
	defer cancel()
	err := w.write(ctx, dst, claim, b)
	// The server gives up first (maxTimeMS is what is left of the deadline less the round trip; the
	// driver reports its MaxTimeMSExpired as a DeadlineExceeded), or the client does.
	deadlinePassed := err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded))
	if err != nil && retryable.OutcomeUnknown(err) {
		// No answer: the write may have reached the server and still run there, until its
		// deadline (maxTimeMS). The partition is not given back before then, or its next holder
		// could finish it, and the applier delete one of its documents, before this write inserts
		// it again.
		kept.WaitOut(until)
	}
	if deadlinePassed {
		// Not the documents' fault, so not a failed attempt: the partition goes back to be
		// claimed again from its checkpoint.
		return fmt.Errorf("%w: the batch of %d documents of %s did not finish within the %s of lease validity it started with "+
			"(a destination this slow needs a longer --lease-ttl): %v", lease.ErrLost, len(b.docs), claim.Partition.NS, left.Round(time.Millisecond), err)
	}
	return err
}

// read sends the range's documents after the checkpoint, in batches, until the end or ctx is done.
func (w *Worker) read(ctx context.Context, claim *partition.Claim, after primitive.Timestamp, out chan<- batch) error {
	p := claim.Partition
	r := &rangeReader{w: w, claim: claim, p: p, name: p.SourceName(), after: after, out: out, last: p.LastID, sent: p.LastID}
	return r.run(ctx)
}

// write inserts b and checkpoints it. Inserts bypass document validation, as mongosync's do: the
// destination collection carries the source's validator, and documents the source kept from before
// a validator was added (or added with validationAction "warn") must be copied as they are, not
// refused on every attempt.
//
// A document refused as a duplicate of its _id is already on the destination: written by an
// earlier holder of the partition after its last checkpoint (a takeover replays a batch), or there
// before the sync (preExistingDestinationData). Either way the source's version must win, so the
// duplicates are read back in one $in query and the ones whose bytes differ are replaced.
func (w *Worker) write(ctx context.Context, dst *mongo.Collection, claim *partition.Claim, b batch) error {
	_, err := dst.InsertMany(ctx, b.docs, options.InsertMany().SetOrdered(false).SetBypassDocumentValidation(true))
	if err != nil {
		dups, ok := duplicates(err)
		if !ok {
			return fmt.Errorf("writing %d documents of %s to the destination: %w", len(b.docs), claim.Partition.NS, err)
		}
		if err := w.reconcile(ctx, dst, b, dups); err != nil {
			return fmt.Errorf("writing %d documents of %s to the destination: %w", len(b.docs), claim.Partition.NS, err)
		}
	}
	return w.cfg.Partitions.Checkpoint(ctx, claim, b.last, int64(len(b.docs)), b.bytes)
}

// reconcile makes the documents of b at positions, refused as duplicates, equal to the source's
// version on the destination. A duplicate on another unique index (a destination that had data or
// indexes of its own) means the document is NOT there under its _id: that fails the batch rather
// than counting the document as copied.
func (w *Worker) reconcile(ctx context.Context, dst *mongo.Collection, b batch, positions []int) error {
	ids := make(bson.A, len(positions))
	want := make(map[string]bson.Raw, len(positions))
	for i, pos := range positions {
		doc := b.docs[pos].(bson.Raw)
		id := doc.Lookup("_id")
		ids[i] = id
		want[bsonorder.Key(id)] = doc
	}
	cur, err := dst.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetCollation(bsonorder.SimpleCollation))
	if err != nil {
		return fmt.Errorf("reading back %d documents refused as duplicates: %w", len(ids), err)
	}
	defer cur.Close(context.Background())
	found := 0
	var replace []mongo.WriteModel
	for cur.Next(ctx) {
		have := cur.Current
		found++
		doc, ok := want[bsonorder.Key(have.Lookup("_id"))]
		if !ok {
			// Equal to one of ours as a value but not as a type (int64(5) for int32(5)): the
			// server treats them as one _id, and a replace cannot change its type.
			return fmt.Errorf("the destination already has a document with _id %s of another BSON type than the source's; "+
				"remove it from the destination, or sync into an empty namespace", have.Lookup("_id"))
		}
		if !bytes.Equal(have, doc) {
			replace = append(replace, mongo.NewReplaceOneModel().
				SetFilter(bson.D{{Key: "_id", Value: doc.Lookup("_id")}}).SetReplacement(doc))
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading back %d documents refused as duplicates: %w", len(ids), err)
	}
	if found != len(ids) {
		return fmt.Errorf("%d of %d documents were refused as duplicates of other documents on a unique index of the destination; "+
			"the destination must not hold unique indexes of its own that the source's documents violate", len(ids)-found, len(ids))
	}
	if len(replace) == 0 {
		return nil
	}
	if _, err := dst.BulkWrite(ctx, replace, options.BulkWrite().SetOrdered(false).SetBypassDocumentValidation(true)); err != nil {
		return fmt.Errorf("replacing %d documents that differ from the source's: %w", len(replace), err)
	}
	return nil
}

// duplicateKey is the server's error code for a duplicate key.
const duplicateKey = 11000

// duplicates returns the batch positions of an unordered bulk insert's errors when every one of
// them is a duplicate key; ok is false when any error is something else.
func duplicates(err error) (positions []int, ok bool) {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return nil, false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != duplicateKey {
			return nil, false
		}
		positions = append(positions, we.Index)
	}
	return positions, true
}
