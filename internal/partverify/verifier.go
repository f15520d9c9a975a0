package partverify

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
	"github.com/fleetsync/fleetsync/internal/concern"
	"github.com/fleetsync/fleetsync/internal/retryable"
	"github.com/fleetsync/fleetsync/lease"
)

// DefaultBatchDocs is how many _ids a verifier compares between checkpoints, and the driver batch
// size of both sides' cursors: memory per verifier is about two driver batches, whatever the
// partition's size. The copy's batch (worker.DefaultBatchDocs), for the same trade-off: a
// checkpoint costs little per batch, and a takeover compares little again.
const DefaultBatchDocs = 1000

// handBackTimeout bounds how long a stopping verifier spends checkpointing and releasing.
const handBackTimeout = 20 * time.Second

// Config is what a verifier needs. Owner must be unique to this verifier in the fleet.
type Config struct {
	Source      *mongo.Client
	Destination *mongo.Client
	Store       *Store
	Owner       string
	LeaseTTL    time.Duration
	BatchDocs   int
	Log         *zap.Logger
}

// Verifier verifies one partition at a time; a node runs one per verifying goroutine.
type Verifier struct {
	cfg Config

	// afterCheckpoint runs after each checkpoint (tests only: it stands for the moment a process
	// is killed, with a checkpoint stored and the next batch under way).
	afterCheckpoint func(Progress)
}

// New returns a verifier with cfg, defaults filled in.
func New(cfg Config) *Verifier {
	if cfg.BatchDocs <= 0 {
		cfg.BatchDocs = DefaultBatchDocs
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	return &Verifier{cfg: cfg}
}

// Result says what VerifyOne did.
type Result int

const (
	NothingToClaim Result = iota // no copied partition waits for verification right now
	Verified                     // a partition was compared to its end (differences or not)
	HandedBack                   // stop was closed: checkpointed and released unfinished
	Lost                         // the lease was lost; its new holder continues from the checkpoint
	Failed                       // reading failed; recorded for a retry from the checkpoint (Store.Fail)
)

// VerifyOne claims a copied partition and compares it to its end. A difference is recorded on the
// partition's verification document, not returned as an error. When stop is closed it checkpoints
// at the end of the batch under way and hands the partition back. ctx cancelled means stop at once
// without handing back (the lease then expires), as a killed process would. The error is non-nil for
// Lost and Failed, saying why.
func (v *Verifier) VerifyOne(ctx context.Context, stop <-chan struct{}) (Result, error) {
	claim, err := v.cfg.Store.Claim(ctx, v.cfg.Owner, v.cfg.LeaseTTL)
	if err != nil {
		return Failed, err
	}
	if claim == nil {
		return NothingToClaim, nil
	}
	d := claim.Doc
	log := v.cfg.Log.With(zap.String("partition", d.ID), zap.Int64("epoch", claim.Lease.Epoch))
	if d.LastID.Type != 0 {
		log.Info("resuming verification after its checkpoint", zap.String("after", d.LastID.String()), zap.Int64("comparedBefore", d.Compared))
	}

	kept := lease.Keep(ctx, v.cfg.Store.Leases(), claim.Lease)
	defer kept.Stop()
	res, err := v.verify(kept, stop, claim)
	switch {
	case ctx.Err() != nil:
		return Failed, ctx.Err() // killed: nothing more is written, the lease expires
	case res == HandedBack:
		hctx, cancel := context.WithTimeout(context.Background(), handBackTimeout)
		err = v.cfg.Store.Release(hctx, claim)
		cancel()
	case res == Failed && errors.Is(err, lease.ErrLost):
		res = Lost
	case res == Failed && errors.Is(kept.Err(), lease.ErrLost):
		res, err = Lost, kept.Err()
	case res == Failed:
		if retryable.Is(err) {
			log.Warn("verifying partition met a transient error; it will be retried from its checkpoint, with no attempt counted", zap.Error(err))
		} else {
			log.Warn("verifying partition failed; it will be retried from its checkpoint", zap.Error(err))
		}
		if ferr := v.cfg.Store.Fail(kept.Context(), claim, err); ferr != nil {
			log.Warn("recording the failure", zap.Error(ferr))
		}
	}
	if res == Lost {
		log.Warn("lost the verification lease; its new holder continues from the checkpoint", zap.Error(err))
	}
	return res, err
}

// verify compares the claimed range after its checkpoint while kept holds the lease, checkpointing
// after every BatchDocs _ids. Only metadata is written, each write fenced by the lease, so unlike
// the copy no lease-validity check is needed before a write: a deposed verifier's update matches
// nothing.
func (v *Verifier) verify(kept *lease.Kept, stop <-chan struct{}, claim *Claim) (Result, error) {
	ctx := kept.Context()
	m, closeAll, err := v.open(ctx, claim.Doc)
	if err != nil {
		return Failed, err
	}
	defer closeAll()
	for {
		more, err := v.compareBatch(ctx, m)
		if err != nil {
			return Failed, fmt.Errorf("reading %s %s: %w", claim.Doc.NS, claim.Doc.Range, err)
		}
		if !more {
			return v.finish(ctx, claim, m.take())
		}
		if err := v.checkpoint(ctx, claim, m.take()); err != nil {
			return Failed, err
		}
		select {
		case <-stop:
			return HandedBack, nil
		default:
		}
	}
}

// compareBatch compares up to BatchDocs _ids; more is false when both sides ended.
func (v *Verifier) compareBatch(ctx context.Context, m *merger) (more bool, err error) {
	for range v.cfg.BatchDocs {
		if more, err = m.step(ctx); !more || err != nil {
			return more, err
		}
	}
	return true, nil
}

func (v *Verifier) checkpoint(ctx context.Context, claim *Claim, p Progress) error {
	if err := v.cfg.Store.Checkpoint(ctx, claim, p); err != nil {
		return err
	}
	if v.afterCheckpoint != nil {
		v.afterCheckpoint(p)
	}
	return nil
}

func (v *Verifier) finish(ctx context.Context, claim *Claim, p Progress) (Result, error) {
	if err := v.cfg.Store.Complete(ctx, claim, p); err != nil {
		if errors.Is(err, lease.ErrLost) {
			return Lost, err
		}
		return Failed, err
	}
	return Verified, nil
}

// open starts both sides' reads of d's range after its checkpoint and returns their merge, with
// room for the differences the document can still keep.
func (v *Verifier) open(ctx context.Context, d Doc) (*merger, func(), error) {
	db, coll, ok := strings.Cut(d.NS, ".")
	if !ok {
		return nil, nil, fmt.Errorf("partition %s has a malformed namespace %q", d.ID, d.NS)
	}
	src, err := v.read(ctx, concern.SourceCollection(v.cfg.Source, db, coll), d)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s %s from the source: %w", d.NS, d.Range, err)
	}
	dst, err := v.read(ctx, concern.VerifiedCollection(v.cfg.Destination, db, coll), d)
	if err != nil {
		_ = src.Close(context.Background())
		return nil, nil, fmt.Errorf("reading %s %s from the destination: %w", d.NS, d.Range, err)
	}
	closeAll := func() {
		_ = src.Close(context.Background())
		_ = dst.Close(context.Background())
	}
	return newMerger(cursorStream{src}, cursorStream{dst}, MaxDifferences-len(d.Differences)), closeAll, nil
}

// read opens a cursor on the range after the checkpoint, sorted and collated as the copy reads it
// (worker.read), so that both sides come in MongoDB's _id order, the order bsonorder merges in.
func (v *Verifier) read(ctx context.Context, coll *mongo.Collection, d Doc) (*mongo.Cursor, error) {
	return coll.Find(ctx, d.Range.Filter(d.LastID), options.Find().
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetCollation(bsonorder.SimpleCollation).
		SetBatchSize(int32(v.cfg.BatchDocs)))
}
