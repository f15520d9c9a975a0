// Package partverify verifies copied partitions while the sync runs, spread over the fleet by lease
// like the copy (issue 14, requirement 1): a verifier claims a partition that is copied (done) and
// not yet verified in the current generation, reads its _id range from both clusters in _id order,
// compares them document by document in a streaming merge, checkpoints the last _id compared after
// every batch under the partition's verification lease, and records what differs.
//
// Its state lives in the metadata database's collection "verification", one document per copied
// partition, with the partition's _id; the lease fields are embedded (package lease), so a
// checkpoint is one fenced single-document update and a verifier that died leaves a checkpoint that
// any other verifier resumes after. Memory is bounded by the batch size, whatever the partition's size.
//
// It verifies what it reads, while change events may still be applied: a difference it records may be
// a write the applier has not applied yet. Rechecks (issue 14, requirement 2) decide whether such a
// difference is real; this package only finds candidates and never decides a sync failed.
//
// Not wired into the node yet (issue 14 is open): the node, /progress and the commit do not use it.
package partverify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/retryable"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// MaxDifferences is how many differing _ids one partition's document keeps: enough to show a user
// where to look, few enough that a partition whose destination is wholly wrong stays a small document.
const MaxDifferences = 10

// claimCandidates is how many claimable partitions a verifier looks at; it tries them in random
// order (checkpointed ones first), so that verifiers starting together do not all race for one.
const claimCandidates = 8

// enrollPage is how many copied partitions are enrolled per insert: bounds enrollment's memory.
const enrollPage = 500

// neverVerified is verifiedGeneration before a partition's first complete verification.
const neverVerified = -1

// Kinds of difference, the words of internal/verify's report.
const (
	KindDifferent = "different" // on both sides, with other bytes
	KindMissing   = "missing"   // on the source, not on the destination
	KindExtra     = "extra"     // on the destination, not on the source
)

// Counts are what a verification compared. Compared = Equal + Different + Missing + Extra: one per
// _id seen on either side.
type Counts struct {
	Compared  int64 `bson:"compared"`
	Equal     int64 `bson:"equal"`
	Different int64 `bson:"different"`
	Missing   int64 `bson:"missing"` // on the destination
	Extra     int64 `bson:"extra"`   // on the destination
}

// Differing is how many _ids did not match.
func (c Counts) Differing() int64 { return c.Different + c.Missing + c.Extra }

func (c *Counts) add(o Counts) {
	c.Compared += o.Compared
	c.Equal += o.Equal
	c.Different += o.Different
	c.Missing += o.Missing
	c.Extra += o.Extra
}

// Difference is one _id that did not match.
type Difference struct {
	ID   bson.RawValue `bson:"id"`
	Kind string        `bson:"kind"`
}

// Doc is a partition's verification document (collection metadata.CollVerification).
type Doc struct {
	ID    string          `bson:"_id"` // the partition's _id
	Sync  string          `bson:"sync"`
	NS    string          `bson:"ns"`
	Seq   int             `bson:"seq"`
	Range partition.Range `bson:"range"` // copied from the partition: a copied partition's range never changes

	// Generation is the pass LastID and the counts belong to; a claim for a later generation
	// starts them again. VerifiedGeneration is the last generation verified to the end.
	Generation         int64 `bson:"generation"`
	VerifiedGeneration int64 `bson:"verifiedGeneration"`

	// LastID is the checkpoint: every _id up to it, on either side, is compared and counted.
	LastID      bson.RawValue `bson:"lastId,omitempty"`
	Counts      `bson:",inline"`
	Differences []Difference  `bson:"differences,omitempty"` // the first MaxDifferences, in _id order
	Attempts    int           `bson:"attempts"`              // failures since the last checkpoint, as partition.Partition's
	LastError   string        `bson:"lastError,omitempty"`
	Claims      []ClaimRecord `bson:"claims,omitempty"`

	Owner string `bson:"owner,omitempty"`
	Epoch int64  `bson:"epoch,omitempty"`
}

// ClaimRecord is one holding of a verification lease: where its holder started, the audit trail
// that shows a takeover resumed after its predecessor's checkpoint.
type ClaimRecord struct {
	Owner          string        `bson:"owner"`
	Epoch          int64         `bson:"epoch"`
	Generation     int64         `bson:"generation"`
	ResumedAfter   bson.RawValue `bson:"resumedAfter,omitempty"`
	ComparedBefore int64         `bson:"comparedBefore"`
	At             time.Time     `bson:"at"` // the claimer's clock: for people, never for expiry
}

// Store keeps one sync's verification documents for one generation.
type Store struct {
	syncID     string
	generation int64
	coll       *mongo.Collection // verification
	partitions *mongo.Collection
	leases     *lease.Store
}

// NewStore returns the Store of meta's sync for generation (0: the first pass over the copy).
func NewStore(meta *metadata.DB, generation int64) *Store {
	coll := meta.Collection(metadata.CollVerification)
	return &Store{syncID: meta.SyncID, generation: generation, coll: coll,
		partitions: meta.Collection(metadata.CollPartitions), leases: lease.NewStore(coll)}
}

// Leases is the lease store the verification leases live in, for lease.Keep.
func (s *Store) Leases() *lease.Store { return s.leases }

// EnsureIndexes creates the index claims and summaries filter on. Any node may call it.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "sync", Value: 1}, {Key: "verifiedGeneration", Value: 1}}})
	if err != nil {
		return fmt.Errorf("creating the verification index: %w", err)
	}
	return nil
}

// Claim is a partition's verification held by one verifier: Doc as it was when claimed (after its
// reset for a new generation), and the lease that fences the holder's writes.
type Claim struct {
	Doc   Doc
	Lease lease.Lease
}

// Claim takes the lease of one copied partition not verified in the store's generation, enrolling
// newly copied partitions first when none is claimable. It prefers partitions with a checkpoint of
// this generation (a dead verifier's half-done work). It returns nil and no error when there is
// nothing to claim right now.
func (s *Store) Claim(ctx context.Context, owner string, ttl time.Duration) (*Claim, error) {
	ids, err := s.candidates(ctx)
	if err == nil && len(ids) == 0 {
		if err = s.enroll(ctx); err == nil {
			ids, err = s.candidates(ctx)
		}
	}
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		l, err := s.leases.Acquire(ctx, id, owner, ttl)
		var held *lease.HeldError
		if errors.As(err, &held) {
			continue // another verifier won it
		}
		if err != nil {
			return nil, fmt.Errorf("claiming the verification of partition %s: %w", id, err)
		}
		claim, err := s.record(ctx, l)
		if err != nil {
			_ = s.leases.Release(ctx, l)
			return nil, err
		}
		if claim == nil {
			_ = s.leases.Release(ctx, l) // verified or given up on between the query and the acquisition
			continue
		}
		return claim, nil
	}
	return nil, nil
}

// claimable is the filter of verifications a verifier may try to claim.
func (s *Store) claimable() bson.D {
	return append(bson.D{
		{Key: "sync", Value: s.syncID},
		{Key: "verifiedGeneration", Value: bson.D{{Key: "$lt", Value: s.generation}}},
		{Key: "attempts", Value: bson.D{{Key: "$lt", Value: partition.MaxAttempts}}},
	}, lease.Claimable()...)
}

// candidates returns up to claimCandidates claimable _ids: the ones with a checkpoint of this
// generation first (a dead verifier's half-done work), then the others in random order.
func (s *Store) candidates(ctx context.Context) ([]string, error) {
	cur, err := s.coll.Find(ctx, s.claimable(), options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "generation", Value: 1}, {Key: "compared", Value: 1}}).
		SetSort(bson.D{{Key: "generation", Value: -1}, {Key: "compared", Value: -1}, {Key: "_id", Value: 1}}).
		SetLimit(claimCandidates))
	if err != nil {
		return nil, fmt.Errorf("looking for a partition to verify: %w", err)
	}
	var found []Doc
	if err := cur.All(ctx, &found); err != nil {
		return nil, fmt.Errorf("looking for a partition to verify: %w", err)
	}
	ids := make([]string, len(found))
	resumed := 0
	for i, f := range found {
		ids[i] = f.ID
		if f.Generation == s.generation && f.Compared > 0 {
			resumed = i + 1
		}
	}
	rest := ids[resumed:]
	rand.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	return ids, nil
}

// record reads the claimed document under the new lease, starts its counts again when they belong to
// an earlier generation, and appends the claim to its history, in one fenced update. It returns nil
// when the document needs no verification after all.
func (s *Store) record(ctx context.Context, l lease.Lease) (*Claim, error) {
	var d Doc
	if err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: l.Name}}).Decode(&d); err != nil {
		return nil, fmt.Errorf("reading claimed verification %s: %w", l.Name, err)
	}
	if d.VerifiedGeneration >= s.generation || d.Attempts >= partition.MaxAttempts {
		return nil, nil
	}
	set := bson.D{}
	if d.Generation != s.generation {
		d = Doc{ID: d.ID, Sync: d.Sync, NS: d.NS, Seq: d.Seq, Range: d.Range, Generation: s.generation,
			VerifiedGeneration: d.VerifiedGeneration, Claims: d.Claims, Owner: d.Owner, Epoch: d.Epoch}
		set = bson.D{{Key: "generation", Value: s.generation}, {Key: "compared", Value: int64(0)}, {Key: "equal", Value: int64(0)},
			{Key: "different", Value: int64(0)}, {Key: "missing", Value: int64(0)}, {Key: "extra", Value: int64(0)},
			{Key: "differences", Value: bson.A{}}}
	}
	rec := ClaimRecord{Owner: l.Owner, Epoch: l.Epoch, Generation: s.generation, ResumedAfter: d.LastID,
		ComparedBefore: d.Compared, At: time.Now().UTC()}
	update := bson.D{{Key: "$push", Value: bson.D{{Key: "claims", Value: rec}}}}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: set}, bson.E{Key: "$unset", Value: bson.D{{Key: "lastId", Value: ""}}})
	}
	if err := s.fenced(ctx, l, update); err != nil {
		return nil, err
	}
	d.Claims = append(d.Claims, rec)
	return &Claim{Doc: d, Lease: l}, nil
}

// enroll creates the verification document of every copied partition that has none. Racing nodes
// insert the same _ids; the unique _id keeps one, and the refused duplicates are ignored. It reads
// counts first, so that a fleet with everything enrolled pays two counts, not a scan.
func (s *Store) enroll(ctx context.Context) error {
	copied := bson.D{{Key: "sync", Value: s.syncID}, {Key: "done", Value: true}}
	nCopied, err := s.partitions.CountDocuments(ctx, copied)
	if err != nil {
		return fmt.Errorf("counting the copied partitions: %w", err)
	}
	nEnrolled, err := s.coll.CountDocuments(ctx, bson.D{{Key: "sync", Value: s.syncID}})
	if err != nil {
		return fmt.Errorf("counting the enrolled partitions: %w", err)
	}
	if nEnrolled >= nCopied {
		return nil
	}
	cur, err := s.partitions.Find(ctx, copied, options.Find().
		SetProjection(bson.D{{Key: "ns", Value: 1}, {Key: "seq", Value: 1}, {Key: "range", Value: 1}, {Key: "sync", Value: 1}}))
	if err != nil {
		return fmt.Errorf("reading the copied partitions: %w", err)
	}
	defer cur.Close(context.Background())
	var page []any
	for cur.Next(ctx) {
		var p partition.Partition
		if err := cur.Decode(&p); err != nil {
			return fmt.Errorf("reading the copied partitions: %w", err)
		}
		page = append(page, newDoc(p))
		if len(page) == enrollPage {
			if err := s.insertNew(ctx, page); err != nil {
				return err
			}
			page = page[:0]
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading the copied partitions: %w", err)
	}
	return s.insertNew(ctx, page)
}

// newDoc is a copied partition's verification document before its first claim.
func newDoc(p partition.Partition) Doc {
	return Doc{ID: p.ID, Sync: p.Sync, NS: p.NS, Seq: p.Seq, Range: p.Range, VerifiedGeneration: neverVerified}
}

// insertNew inserts docs, ignoring the ones that exist already.
func (s *Store) insertNew(ctx context.Context, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := s.coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return fmt.Errorf("enrolling %d copied partitions for verification: %w", len(docs), err)
}

// duplicateKey is the server's error code for a duplicate key.
const duplicateKey = 11000

func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != duplicateKey {
			return false
		}
	}
	return true
}

// Progress is what one batch of a claim compared, and the _id it ended at.
type Progress struct {
	LastID      bson.RawValue
	Counts      Counts
	Differences []Difference // recorded after the stored ones, up to MaxDifferences in all
}

// Checkpoint records p under the claim's lease, and starts the failure count again. It fails with a
// *lease.LostError when the lease is no longer held: the holder must stop, its successor owns the
// partition's verification now.
func (s *Store) Checkpoint(ctx context.Context, c *Claim, p Progress) error {
	return s.fenced(ctx, c.Lease, progressUpdate(p, bson.E{Key: "attempts", Value: 0}))
}

// Complete records the last batch, marks the partition verified in the store's generation and frees
// its lease, in one fenced update.
func (s *Store) Complete(ctx context.Context, c *Claim, p Progress) error {
	return s.fenced(ctx, c.Lease, progressUpdate(p,
		bson.E{Key: "attempts", Value: 0}, bson.E{Key: "verifiedGeneration", Value: s.generation}, bson.E{Key: lease.FieldOwner, Value: ""}))
}

// progressUpdate adds p to a document's counts, moves its checkpoint, appends its differences, and
// sets set.
func progressUpdate(p Progress, set ...bson.E) bson.D {
	if p.LastID.Type != 0 {
		set = append(set, bson.E{Key: "lastId", Value: p.LastID})
	}
	c := p.Counts
	update := bson.D{
		{Key: "$set", Value: bson.D(set)},
		{Key: "$inc", Value: bson.D{{Key: "compared", Value: c.Compared}, {Key: "equal", Value: c.Equal},
			{Key: "different", Value: c.Different}, {Key: "missing", Value: c.Missing}, {Key: "extra", Value: c.Extra}}},
	}
	if len(p.Differences) > 0 {
		update = append(update, bson.E{Key: "$push", Value: bson.D{{Key: "differences", Value: bson.D{{Key: "$each", Value: p.Differences}}}}})
	}
	return update
}

// Fail records that verifying the claimed partition failed with cause and frees its lease; the next
// claim resumes from the checkpoint. As for the copy (partition.Store.Fail), a transient cause
// costs no attempt, any other counts one, and after partition.MaxAttempts in a row the partition is
// no longer claimed.
func (s *Store) Fail(ctx context.Context, c *Claim, cause error) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "lastError", Value: cause.Error()}, {Key: lease.FieldOwner, Value: ""}}}}
	if !retryable.Is(cause) {
		update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}})
	}
	return s.fenced(ctx, c.Lease, update)
}

// Release hands the claimed verification back unfinished (a node shutting down), keeping its checkpoint.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	return s.leases.Release(ctx, c.Lease)
}

func (s *Store) fenced(ctx context.Context, l lease.Lease, update bson.D) error {
	err := s.leases.UpdateFenced(ctx, l, update)
	var lost *lease.LostError
	if err != nil && !errors.As(err, &lost) {
		return fmt.Errorf("updating the verification of partition %s: %w", l.Name, err)
	}
	return err
}

// All reads every verification document of the sync, in _id order (tests and diagnostics).
func (s *Store) All(ctx context.Context) ([]Doc, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "sync", Value: s.syncID}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []Doc
	err = cur.All(ctx, &out)
	return out, err
}
