// Package worker copies partitions: a worker claims one partition's lease, reads its _id range from
// the source in _id order, writes the documents to the destination in unordered bulk inserts, and
// checkpoints the last copied _id under the lease's epoch after every batch. A worker that takes
// over a partition from a dead node resumes after that node's checkpoint.
package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
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

// Config is what a worker needs. Owner must be unique to this worker in the fleet.
type Config struct {
	Source, Destination *mongo.Client
	Partitions          *partition.Store
	Owner               string
	LeaseTTL            time.Duration
	BatchDocs           int
	BatchBytes          int
	Log                 *zap.Logger
}

// Worker copies one partition at a time.
type Worker struct {
	cfg Config
}

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
	Failed                       // copying failed; the failure is recorded on the partition for a retry
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
	res, err := w.copy(kept.Context(), stop, claim)
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
		log.Warn("copying partition failed; it will be retried from its checkpoint", zap.Error(err))
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

// copy streams the claimed range. ctx is the lease's context: cancelled when the lease is lost.
func (w *Worker) copy(ctx context.Context, stop <-chan struct{}, claim *partition.Claim) (Result, error) {
	p := claim.Partition
	db, coll, ok := strings.Cut(p.NS, ".")
	if !ok {
		return Failed, fmt.Errorf("partition %s has a malformed namespace %q", p.ID, p.NS)
	}
	src := w.cfg.Source.Database(db).Collection(coll)
	dst := w.cfg.Destination.Database(db).Collection(coll)

	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	batches := make(chan batch, batchesInFlight)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- w.read(readCtx, src, p, batches)
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
				if err := w.write(ctx, dst, claim, b); err != nil {
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
		if err := w.write(ctx, dst, claim, b); err != nil {
			if errors.Is(err, lease.ErrLost) {
				return Lost, err
			}
			return Failed, err
		}
	}
}

// read sends the range's documents after the checkpoint, in batches, until the end or ctx is done.
func (w *Worker) read(ctx context.Context, src *mongo.Collection, p partition.Partition, out chan<- batch) error {
	cur, err := src.Find(ctx, p.Range.Filter(p.LastID), options.Find().
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetCollation(bsonorder.SimpleCollation).
		SetBatchSize(int32(w.cfg.BatchDocs)))
	if err != nil {
		return err
	}
	defer cur.Close(context.Background())
	var b batch
	for cur.Next(ctx) {
		// The cursor reuses its buffer: keep a copy.
		doc := make(bson.Raw, len(cur.Current))
		copy(doc, cur.Current)
		b.docs = append(b.docs, doc)
		b.bytes += int64(len(doc))
		b.last = doc.Lookup("_id")
		if len(b.docs) >= w.cfg.BatchDocs || b.bytes >= int64(w.cfg.BatchBytes) {
			select {
			case out <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			b = batch{}
		}
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if len(b.docs) > 0 {
		select {
		case out <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// write inserts b and checkpoints it. Documents already on the destination (an earlier holder wrote
// them after its last checkpoint) count as copied: the change events applied after the copy bring
// every document up to date whatever version of it the copy wrote.
func (w *Worker) write(ctx context.Context, dst *mongo.Collection, claim *partition.Claim, b batch) error {
	_, err := dst.InsertMany(ctx, b.docs, options.InsertMany().SetOrdered(false))
	if err != nil {
		dups, ok := duplicates(err)
		if !ok {
			return fmt.Errorf("writing %d documents of %s to the destination: %w", len(b.docs), claim.Partition.NS, err)
		}
		if err := w.alreadyThere(ctx, dst, b, dups); err != nil {
			return fmt.Errorf("writing %d documents of %s to the destination: %w", len(b.docs), claim.Partition.NS, err)
		}
	}
	return w.cfg.Partitions.Checkpoint(ctx, claim, b.last, int64(len(b.docs)), b.bytes)
}

// alreadyThere checks that the documents refused as duplicates are on the destination by _id. A
// duplicate on another unique index (a destination that had data or indexes of its own) means the
// document is NOT there, and must fail the batch rather than be counted as copied.
func (w *Worker) alreadyThere(ctx context.Context, dst *mongo.Collection, b batch, positions []int) error {
	ids := make(bson.A, len(positions))
	for i, pos := range positions {
		ids[i] = b.docs[pos].(bson.Raw).Lookup("_id")
	}
	n, err := dst.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Count().SetCollation(bsonorder.SimpleCollation))
	if err != nil {
		return fmt.Errorf("checking %d documents refused as duplicates: %w", len(ids), err)
	}
	if n != int64(len(ids)) {
		return fmt.Errorf("%d of %d documents were refused as duplicates of other documents on a unique index of the destination; "+
			"the destination must not hold data or unique indexes of its own in the namespaces being synced", int64(len(ids))-n, len(ids))
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
