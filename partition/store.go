package partition

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/retryable"
	"github.com/fleetsync/fleetsync/lease"
)

// MaxAttempts is how many times in a row a partition may fail (an error other than losing its lease,
// and not transient: see Fail) before workers stop claiming it; the sync then reports it and cannot
// finish its copy phase, rather than retrying a document the destination rejects forever, until a
// user retries it (RetryFailed).
const MaxAttempts = 5

// claimCandidates is how many claimable partitions a worker looks at; it tries them in random order,
// so that workers starting together do not all race for the same one.
const claimCandidates = 8

// Partition is a partition document of the metadata database (collection "partitions"). It embeds its
// copy lease (lease.Field*), so a checkpoint is one update fenced by that lease.
type Partition struct {
	ID    string `bson:"_id"` // "<sync>/<db>.<coll>/<seq>"
	Sync  string `bson:"sync"`
	NS    string `bson:"ns"`  // "<db>.<coll>"
	Seq   int    `bson:"seq"` // position of the range in the collection's _id order
	Range Range  `bson:"range"`
	// UUID is the source collection's UUID when it was cataloged (empty where the source reports
	// none): the copy reads the collection by it, so a rename or drop on the source during the copy
	// is noticed (see worker). NS stays the name the collection was cataloged with, which is the
	// name its documents are written under on the destination.
	UUID primitive.Binary `bson:"uuid,omitempty"`
	// SourceNS is the collection's name on the source when a worker found it renamed there during
	// the copy (empty: NS). A hint for the next claim, which reads by UUID all the same.
	SourceNS string `bson:"sourceNs,omitempty"`
	// SourceGone is set when the copy found no collection with UUID in the database any more (see
	// worker): dropped, or renamed into another database, which MongoDB does by copying it into a
	// new collection with a new UUID. The applier refuses the latter loudly, the copy being partial.
	SourceGone bool `bson:"sourceGone,omitempty"`

	// LastID is the checkpoint: the last _id copied, in _id order. Absent until the first batch.
	LastID      bson.RawValue `bson:"lastId,omitempty"`
	DocsCopied  int64         `bson:"docsCopied"`
	BytesCopied int64         `bson:"bytesCopied"`
	Done        bool          `bson:"done"`
	Attempts    int           `bson:"attempts"` // failures since the last progress (see MaxAttempts)
	LastError   string        `bson:"lastError,omitempty"`
	// Claims is the history of the partition's holders: where each one started.
	Claims []ClaimRecord `bson:"claims,omitempty"`

	Owner string `bson:"owner,omitempty"`
	Epoch int64  `bson:"epoch,omitempty"`
}

// ClaimRecord is one holding of a partition's lease, recorded when it was claimed: it lets a test (or
// an operator) check that a taken-over partition resumed after its checkpoint.
type ClaimRecord struct {
	Owner string `bson:"owner"`
	Epoch int64  `bson:"epoch"`
	// ResumedAfter is the checkpoint the holder started after; absent when it started at the range's
	// beginning.
	ResumedAfter     bson.RawValue `bson:"resumedAfter,omitempty"`
	DocsCopiedBefore int64         `bson:"docsCopiedBefore"`
	At               time.Time     `bson:"at"` // the claimer's clock: for people, never for expiry
}

// SourceName is the namespace to read the partition from on the source: where it was last seen.
func (p Partition) SourceName() string {
	if p.SourceNS != "" {
		return p.SourceNS
	}
	return p.NS
}

// ID returns a partition's _id.
func ID(syncID, ns string, seq int) string { return fmt.Sprintf("%s/%s/%06d", syncID, ns, seq) }

// Store keeps one sync's partitions in a collection of the metadata database.
type Store struct {
	syncID string
	coll   *mongo.Collection
	leases *lease.Store
}

// NewStore returns the Store of sync syncID's partitions in coll.
func NewStore(coll *mongo.Collection, syncID string) *Store {
	return &Store{syncID: syncID, coll: coll, leases: lease.NewStore(coll)}
}

// Replace writes ns's partitions, one per range in order, after deleting any it had: a coordinator
// that died while writing them left an incomplete set, and no worker claims partitions before the
// coordinator finishes the catalog phase.
//
// It never deletes a partition holding copied work (a checkpoint, or done): such a partition means
// the copy phase has begun, so a caller that still re-splits is a coordinator that was replaced and
// has not noticed. Replace then deletes only the partitions without copied work and refuses,
// writing nothing.
func (s *Store) Replace(ctx context.Context, ns string, ranges []Range) error {
	return s.ReplaceCollection(ctx, ns, primitive.Binary{}, ranges)
}

// ReplaceCollection is Replace for a collection whose source UUID is known: each partition carries
// it, and is read by it.
func (s *Store) ReplaceCollection(ctx context.Context, ns string, uuid primitive.Binary, ranges []Range) error {
	mine := bson.D{{Key: "sync", Value: s.syncID}, {Key: "ns", Value: ns}}
	// Refuse before deleting anything: a partition that is done, has a checkpoint, or is claimed
	// (its first batch may be in flight) means the copy has begun, and deleting its unclaimed
	// siblings would end the copy with their ranges never copied.
	begun := append(append(bson.D{}, mine...), bson.E{Key: "$or", Value: bson.A{
		bson.D{{Key: "done", Value: true}},
		bson.D{{Key: "docsCopied", Value: bson.D{{Key: "$gt", Value: 0}}}},
		bson.D{{Key: lease.FieldOwner, Value: bson.D{{Key: "$exists", Value: true}, {Key: "$ne", Value: ""}}}},
	}})
	kept, err := s.coll.CountDocuments(ctx, begun)
	if err != nil {
		return fmt.Errorf("checking the partitions of %s: %w", ns, err)
	}
	if kept > 0 {
		return fmt.Errorf("refusing to split %s into partitions again: %d of its partitions are claimed or hold copied work (the copy has begun)", ns, kept)
	}
	if _, err := s.coll.DeleteMany(ctx, mine); err != nil {
		return fmt.Errorf("clearing the partitions of %s: %w", ns, err)
	}
	docs := make([]any, len(ranges))
	for i, r := range ranges {
		docs[i] = Partition{ID: ID(s.syncID, ns, i), Sync: s.syncID, NS: ns, Seq: i, Range: r, UUID: uuid}
	}
	if len(docs) == 0 {
		return nil
	}
	if _, err := s.coll.InsertMany(ctx, docs); err != nil {
		return fmt.Errorf("writing the partitions of %s: %w", ns, err)
	}
	return nil
}

// Claim is a partition held by one worker. Partition is as it was when claimed (its LastID is where
// the holder resumes); Lease fences the holder's writes.
type Claim struct {
	Partition Partition
	Lease     lease.Lease
}

// Claim takes the lease of one unfinished partition for owner and records the claim. It prefers
// partitions with a checkpoint (work a dead node left half done), then the _id order. It returns nil
// and no error when no partition is claimable right now.
func (s *Store) Claim(ctx context.Context, owner string, ttl time.Duration) (*Claim, error) {
	filter := append(bson.D{
		{Key: "sync", Value: s.syncID},
		{Key: "done", Value: false},
		{Key: "attempts", Value: bson.D{{Key: "$lt", Value: MaxAttempts}}},
	}, lease.Claimable()...)
	cur, err := s.coll.Find(ctx, filter, options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}}).
		SetSort(bson.D{{Key: "docsCopied", Value: -1}, {Key: "_id", Value: 1}}).
		SetLimit(claimCandidates))
	if err != nil {
		return nil, fmt.Errorf("looking for a partition to copy: %w", err)
	}
	var candidates []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &candidates); err != nil {
		return nil, fmt.Errorf("looking for a partition to copy: %w", err)
	}
	// Half-done partitions first (they sort first), the rest shuffled among themselves.
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	for _, c := range candidates {
		l, err := s.leases.Acquire(ctx, c.ID, owner, ttl)
		var held *lease.HeldError
		if errors.As(err, &held) {
			continue // another worker won it
		}
		if err != nil {
			return nil, fmt.Errorf("claiming partition %s: %w", c.ID, err)
		}
		claim, err := s.record(ctx, l)
		if err != nil {
			_ = s.leases.Release(ctx, l)
			return nil, err
		}
		if claim.Partition.Done || claim.Partition.Attempts >= MaxAttempts {
			// Finished or given up between the query and the acquisition.
			_ = s.leases.Release(ctx, l)
			continue
		}
		return claim, nil
	}
	return nil, nil
}

// record reads the claimed partition and appends the claim to its history. Both happen under the
// new lease, so no one else can move the checkpoint in between.
func (s *Store) record(ctx context.Context, l lease.Lease) (*Claim, error) {
	var p Partition
	if err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: l.Name}}).Decode(&p); err != nil {
		return nil, fmt.Errorf("reading claimed partition %s: %w", l.Name, err)
	}
	rec := ClaimRecord{Owner: l.Owner, Epoch: l.Epoch, ResumedAfter: p.LastID, DocsCopiedBefore: p.DocsCopied, At: time.Now().UTC()}
	if err := s.fenced(ctx, l, bson.D{{Key: "$push", Value: bson.D{{Key: "claims", Value: rec}}}}); err != nil {
		return nil, err
	}
	p.Claims = append(p.Claims, rec)
	return &Claim{Partition: p, Lease: l}, nil
}

// Checkpoint records that the documents up to lastID (docs of them, bytes in all) are on the
// destination. It fails with a *lease.LostError when the claim's lease is no longer held, in which
// case the holder must stop: someone else owns the partition's progress now.
//
// Progress starts the partition's failure count again: what fails after it is another batch, and a
// partition that moves forward between failures is being copied, not stuck.
func (s *Store) Checkpoint(ctx context.Context, c *Claim, lastID bson.RawValue, docs, bytes int64) error {
	return s.fenced(ctx, c.Lease, bson.D{
		{Key: "$set", Value: bson.D{{Key: "lastId", Value: lastID}, {Key: "attempts", Value: 0}}},
		{Key: "$inc", Value: bson.D{{Key: "docsCopied", Value: docs}, {Key: "bytesCopied", Value: bytes}}},
	})
}

// Complete marks the claimed partition copied and frees its lease, in one fenced update.
func (s *Store) Complete(ctx context.Context, c *Claim) error {
	return s.fenced(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}, {Key: lease.FieldOwner, Value: ""}}}})
}

// Fail records that copying the claimed partition failed with cause and frees its lease, so another
// attempt (on any node) resumes from the checkpoint. A transient cause (retryable.Is: a failover, a
// shutdown, a dropped connection, a timeout) is recorded but costs no attempt: the next attempt is
// as likely to succeed as the first. Any other cause counts one; after MaxAttempts in a row no one
// claims the partition until a user retries it.
func (s *Store) Fail(ctx context.Context, c *Claim, cause error) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "lastError", Value: cause.Error()}, {Key: lease.FieldOwner, Value: ""}}}}
	if !retryable.Is(cause) {
		update = append(update, bson.E{Key: "$inc", Value: bson.D{{Key: "attempts", Value: 1}}})
	}
	return s.fenced(ctx, c.Lease, update)
}

// RetryFailed makes the partitions given up on (MaxAttempts failures in a row) claimable again, with
// a fresh count, and returns how many there were. Their checkpoints and last errors are kept: the
// retry resumes where they stopped.
func (s *Store) RetryFailed(ctx context.Context) (int64, error) {
	res, err := s.coll.UpdateMany(ctx, s.failedFilter(), bson.D{{Key: "$set", Value: bson.D{{Key: "attempts", Value: 0}}}})
	if err != nil {
		return 0, fmt.Errorf("retrying the failed partitions: %w", err)
	}
	return res.ModifiedCount, nil
}

// Failed reads up to limit partitions given up on, in _id order, for a user to see why.
func (s *Store) Failed(ctx context.Context, limit int64) ([]Partition, error) {
	cur, err := s.coll.Find(ctx, s.failedFilter(), options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(limit).
		SetProjection(bson.D{{Key: "ns", Value: 1}, {Key: "seq", Value: 1}, {Key: "range", Value: 1}, {Key: "attempts", Value: 1},
			{Key: "lastError", Value: 1}, {Key: "docsCopied", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("reading the failed partitions: %w", err)
	}
	var out []Partition
	if err := cur.All(ctx, &out); err != nil {
		return nil, fmt.Errorf("reading the failed partitions: %w", err)
	}
	return out, nil
}

func (s *Store) failedFilter() bson.D {
	return bson.D{{Key: "sync", Value: s.syncID}, {Key: "done", Value: false}, {Key: "attempts", Value: bson.D{{Key: "$gte", Value: MaxAttempts}}}}
}

// Renamed records that the source collection of ns with uuid is now named sourceNS, on every
// partition of it not done, so that later claims read the new name at once. It is a hint, not
// fenced by any lease: a reader still reads by UUID, and a stale name costs it one refused query.
func (s *Store) Renamed(ctx context.Context, ns string, uuid primitive.Binary, sourceNS string) error {
	_, err := s.coll.UpdateMany(ctx, bson.D{{Key: "sync", Value: s.syncID}, {Key: "ns", Value: ns}, {Key: "uuid", Value: uuid}, {Key: "done", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "sourceNs", Value: sourceNS}}}})
	if err != nil {
		return fmt.Errorf("recording that %s is now %s on the source: %w", ns, sourceNS, err)
	}
	return nil
}

// SourceGone records that the claimed partition's collection was gone from its database when the
// copy read it: what the partition copied may be all there will be of it.
func (s *Store) SourceGone(ctx context.Context, c *Claim) error {
	return s.fenced(ctx, c.Lease, bson.D{{Key: "$set", Value: bson.D{{Key: "sourceGone", Value: true}}}})
}

// Release hands the claimed partition back unfinished (a node shutting down), keeping its checkpoint.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	return s.leases.Release(ctx, c.Lease)
}

// Leases is the lease store the partitions' leases live in, for keeping a claim alive with lease.Keep.
func (s *Store) Leases() *lease.Store { return s.leases }

func (s *Store) fenced(ctx context.Context, l lease.Lease, update bson.D) error {
	err := s.leases.UpdateFenced(ctx, l, update)
	var lost *lease.LostError
	if err != nil && !errors.As(err, &lost) {
		return fmt.Errorf("updating partition %s: %w", l.Name, err)
	}
	return err
}

// Unfinished counts the sync's partitions not done yet, and those among them given up on. It reads
// counts only (the coordinator calls it every poll), through the {sync, done} index.
func (s *Store) Unfinished(ctx context.Context) (left, failed int64, err error) {
	notDone := bson.D{{Key: "sync", Value: s.syncID}, {Key: "done", Value: false}}
	if left, err = s.coll.CountDocuments(ctx, notDone); err != nil || left == 0 {
		return left, 0, err
	}
	failed, err = s.coll.CountDocuments(ctx, append(notDone, bson.E{Key: "attempts", Value: bson.D{{Key: "$gte", Value: MaxAttempts}}}))
	return left, failed, err
}

// EnsureIndexes creates the index the partition queries use (claims and counts filter on sync and
// done). Creating an existing index is a no-op, so every node may call it.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "sync", Value: 1}, {Key: "done", Value: 1}}})
	if err != nil {
		return fmt.Errorf("creating the partitions index: %w", err)
	}
	return nil
}

// Summary counts a sync's partitions.
type Summary struct {
	Total, Done, Active, Failed int
	DocsCopied, BytesCopied     int64
}

// Summarize counts the sync's partitions by state, and what they copied.
func (s *Store) Summarize(ctx context.Context) (Summary, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "sync", Value: s.syncID}}, options.Find().SetProjection(bson.D{
		{Key: "done", Value: 1}, {Key: "attempts", Value: 1}, {Key: "docsCopied", Value: 1}, {Key: "bytesCopied", Value: 1},
		{Key: lease.FieldOwner, Value: 1},
	}))
	if err != nil {
		return Summary{}, fmt.Errorf("counting partitions: %w", err)
	}
	defer cur.Close(ctx)
	var sum Summary
	for cur.Next(ctx) {
		var p Partition
		if err := cur.Decode(&p); err != nil {
			return Summary{}, fmt.Errorf("counting partitions: %w", err)
		}
		sum.Total++
		sum.DocsCopied += p.DocsCopied
		sum.BytesCopied += p.BytesCopied
		switch {
		case p.Done:
			sum.Done++
		case p.Attempts >= MaxAttempts:
			sum.Failed++
		case p.Owner != "":
			sum.Active++ // held, or held by a node that died and whose lease has not expired yet
		}
	}
	return sum, cur.Err()
}

// All reads every partition of the sync, in _id order (tests and diagnostics).
func (s *Store) All(ctx context.Context) ([]Partition, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "sync", Value: s.syncID}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	var out []Partition
	err = cur.All(ctx, &out)
	return out, err
}
