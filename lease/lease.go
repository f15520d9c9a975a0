// Package lease gives fleetsync nodes named, fenced, expiring leases kept in a MongoDB collection on
// the destination cluster, the only place the nodes of a fleet coordinate.
//
// A lease is a document
//
//	{_id: "coordinator", owner: "node-a", epoch: 3, renewedAt: <server date>, ttlMs: 10000}
//
// Whoever holds it may act for the whole fleet (coordinator, applier) or on one partition. The epoch
// grows by one on every change of holder (a takeover, or a new acquisition after a release or an
// expiry) and never otherwise; it is the fencing token: every write that records progress is
// conditional on {owner, epoch, still live} (see [Lease.Fence]), so a node that was paused and wakes up
// after losing its lease cannot overwrite the newer holder's work.
//
// # Clocks
//
// No node's clock is trusted, and no two nodes' clocks are compared. renewedAt is set by the server
// with $currentDate, and expiry is judged by the server, in the filter of each update, with
//
//	{$expr: {$gte: [{$add: ["$renewedAt", "$ttlMs"]}, "$$NOW"]}}   // live
//
// so only the destination's clock is ever read. (Adding a number of milliseconds to a date in $expr
// yields a date in MongoDB and in the sandbox server alike; tests here depend on it.) A holder's own
// node only measures durations on its monotonic clock, from just before it sent its last successful
// acquire or renew, which is never later than the server's renewedAt: so a holder that stops work
// TTL - margin after that moment (see [Keep]) stops before the server considers the lease expired.
//
// # Documents that carry their own lease
//
// The lease fields may live in any document (a partition embeds its own lease), and a Store works on
// any collection: Acquire on a partition document's _id takes that partition, and a checkpoint is one
// update whose filter is the partition's _id AND-ed with [Lease.Fence].
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Field names of the lease fields, in the lease document or in any document that embeds its lease.
const (
	FieldOwner     = "owner"     // node name of the holder; "" when free
	FieldEpoch     = "epoch"     // fencing token, +1 at every change of holder
	FieldRenewedAt = "renewedAt" // server date of the last acquire or renew
	FieldTTL       = "ttlMs"     // milliseconds after renewedAt at which the lease expires
)

// Lease is one holding of a named lease: owner held name at epoch when it was acquired. It is a value;
// a renewal does not change it, since the epoch only changes with the holder.
type Lease struct {
	Name  string
	Owner string
	Epoch int64
	TTL   time.Duration

	// sentAt is this node's monotonic time just before it sent the last acquire or renew that
	// succeeded; the server's renewedAt is later, so expiry measured from here is conservative.
	sentAt time.Time
}

// Fence returns the filter conditions "this owner at this epoch still holds a live lease", to AND into
// the filter of any update of a document carrying the lease fields (the lease document itself, or a
// partition embedding its lease). The update then matches nothing once the lease was lost, released,
// taken over or expired. Fence uses $expr: if the caller's filter has its own $expr, combine both
// with $and rather than appending.
func (l Lease) Fence() bson.D {
	return bson.D{
		{Key: FieldOwner, Value: l.Owner},
		{Key: FieldEpoch, Value: l.Epoch},
		{Key: "$expr", Value: liveExpr},
	}
}

var (
	// expiresAt is renewedAt + ttlMs, a date, computed by the server.
	expiresAt = bson.D{{Key: "$add", Value: bson.A{"$" + FieldRenewedAt, "$" + FieldTTL}}}
	// liveExpr holds while the server's clock has not passed expiresAt.
	liveExpr = bson.D{{Key: "$gte", Value: bson.A{expiresAt, "$$NOW"}}}
	// expiredExpr is the negation of liveExpr.
	expiredExpr = bson.D{{Key: "$lt", Value: bson.A{expiresAt, "$$NOW"}}}
)

// Store keeps leases in one collection (by default fleetsync_internal.leases).
type Store struct {
	coll *mongo.Collection
}

// UpdateFenced applies update to the document l protects (its _id is l.Name) only while l holds
// it, live: the one-update fence of a progress write. A refusal is a *LostError saying why (taken
// over, expired, released), or that the lease lapsed while the update was in flight.
func (s *Store) UpdateFenced(ctx context.Context, l Lease, update bson.D) error {
	filter := append(bson.D{{Key: "_id", Value: l.Name}}, l.Fence()...)
	res, err := s.coll.UpdateOne(ctx, filter, update)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		if _, err := s.Renew(ctx, l); err != nil {
			return err
		}
		return &LostError{Name: l.Name, Owner: l.Owner, Epoch: l.Epoch, Reason: "its lease lapsed while the update was in flight"}
	}
	return nil
}

// NewStore returns a Store for the leases in coll.
func NewStore(coll *mongo.Collection) *Store {
	return &Store{coll: coll}
}

// doc is the lease fields of a document.
type doc struct {
	Owner string `bson:"owner"`
	Epoch int64  `bson:"epoch"`
}

var returnAfter = options.FindOneAndUpdate().SetReturnDocument(options.After)

// Acquire takes lease name for owner for ttl, when it is free, expired, or already owner's. Taking it
// from someone else, or after it expired or was released, increments the epoch; re-acquiring a live
// lease of one's own keeps the epoch and renews it. When someone else holds a live lease, the error
// is a *HeldError.
//
// owner must be unique to the holder (one node's name per lease): two holders with the same owner
// name would both be let in.
func (s *Store) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (Lease, error) {
	if owner == "" {
		return Lease{}, fmt.Errorf("acquiring lease %s: the owner must have a name", name)
	}
	if ttl < time.Millisecond {
		return Lease{}, fmt.Errorf("acquiring lease %s: TTL %s is shorter than a millisecond", name, ttl)
	}
	l := Lease{Name: name, Owner: owner, TTL: ttl, sentAt: time.Now()}
	ttlMs := ttl.Milliseconds()
	renewed := bson.D{{Key: "$currentDate", Value: bson.D{{Key: FieldRenewedAt, Value: true}}}}

	// Step 1: already mine and live: renew, keep the epoch.
	d, err := s.update(ctx,
		bson.D{{Key: "_id", Value: name}, {Key: FieldOwner, Value: owner}, {Key: "$expr", Value: liveExpr}},
		append(bson.D{{Key: "$set", Value: bson.D{{Key: FieldTTL, Value: ttlMs}}}}, renewed...), false)
	if err == nil {
		l.Epoch = d.Epoch
		return l, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return Lease{}, fmt.Errorf("acquiring lease %s: %w", name, err)
	}

	// Step 2: free (released, or never held in a document that already exists) or expired: take
	// over with the next epoch. Each is a single conditional update, so of many racing nodes the
	// server lets exactly one through.
	takeover := append(bson.D{
		{Key: "$set", Value: bson.D{{Key: FieldOwner, Value: owner}, {Key: FieldTTL, Value: ttlMs}}},
		{Key: "$inc", Value: bson.D{{Key: FieldEpoch, Value: int64(1)}}},
	}, renewed...)
	d, err = s.update(ctx,
		append(bson.D{{Key: "_id", Value: name}}, Claimable()...),
		takeover, false)
	if err == nil {
		l.Epoch = d.Epoch
		return l, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return Lease{}, fmt.Errorf("acquiring lease %s: %w", name, err)
	}

	// Step 3: no such document yet: create it at epoch 1. The filter matches no existing lease
	// document (they all have an epoch), so the upsert inserts, and the _id index turns a racing
	// or existing holder into a duplicate-key error.
	d, err = s.update(ctx,
		bson.D{{Key: "_id", Value: name}, {Key: FieldEpoch, Value: bson.D{{Key: "$exists", Value: false}}}},
		takeover, true)
	if err == nil {
		l.Epoch = d.Epoch
		return l, nil
	}
	if !mongo.IsDuplicateKeyError(err) && !errors.Is(err, mongo.ErrNoDocuments) {
		return Lease{}, fmt.Errorf("acquiring lease %s: %w", name, err)
	}
	held := &HeldError{Name: name}
	if cur, err := s.read(ctx, name); err == nil {
		held.Owner, held.Epoch = cur.Owner, cur.Epoch
	}
	return Lease{}, held
}

// Renew extends l by its TTL from now (the server's now). It fails with a *LostError (errors.Is
// ErrLost) when l is no longer live and held by l.Owner at l.Epoch: taken over, released, or expired
// before this renewal. The returned Lease carries the new renewal time for [Keep]; Name, Owner,
// Epoch and TTL are unchanged.
func (s *Store) Renew(ctx context.Context, l Lease) (Lease, error) {
	sent := time.Now()
	filter := append(bson.D{{Key: "_id", Value: l.Name}}, l.Fence()...)
	_, err := s.update(ctx, filter, bson.D{
		{Key: "$set", Value: bson.D{{Key: FieldTTL, Value: l.TTL.Milliseconds()}}},
		{Key: "$currentDate", Value: bson.D{{Key: FieldRenewedAt, Value: true}}},
	}, false)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return l, s.lost(ctx, l, "renewing")
	}
	if err != nil {
		return l, fmt.Errorf("renewing lease %s of %s: %w", l.Name, l.Owner, err)
	}
	l.sentAt = sent
	return l, nil
}

// Release frees l at once, so another node can acquire it (at the next epoch) without waiting for it
// to expire. Releasing a lease that has expired but was not yet taken over still frees it; releasing
// one that was taken over or already released fails with a *LostError and changes nothing.
func (s *Store) Release(ctx context.Context, l Lease) error {
	_, err := s.update(ctx,
		bson.D{{Key: "_id", Value: l.Name}, {Key: FieldOwner, Value: l.Owner}, {Key: FieldEpoch, Value: l.Epoch}},
		bson.D{{Key: "$set", Value: bson.D{{Key: FieldOwner, Value: ""}}}}, false)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return s.lost(ctx, l, "releasing")
	}
	if err != nil {
		return fmt.Errorf("releasing lease %s of %s: %w", l.Name, l.Owner, err)
	}
	return nil
}

func (s *Store) update(ctx context.Context, filter, update bson.D, upsert bool) (doc, error) {
	opts := returnAfter
	if upsert {
		opts = options.FindOneAndUpdate().SetReturnDocument(options.After).SetUpsert(true)
	}
	var d doc
	err := s.coll.FindOneAndUpdate(ctx, filter, update, opts).Decode(&d)
	return d, err
}

func (s *Store) read(ctx context.Context, name string) (doc, error) {
	var d doc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	return d, err
}

// lost explains why a conditional update on l matched nothing.
func (s *Store) lost(ctx context.Context, l Lease, doing string) error {
	e := &LostError{Name: l.Name, Owner: l.Owner, Epoch: l.Epoch}
	cur, err := s.read(ctx, l.Name)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		e.Reason = "its document is gone"
	case err != nil:
		e.Reason = fmt.Sprintf("and its document cannot be read (%v)", err)
	case cur.Owner == l.Owner && cur.Epoch == l.Epoch:
		e.Reason = fmt.Sprintf("it expired before %s reached the server; renew well within its TTL of %s", doing, l.TTL)
	case cur.Owner == "":
		e.Reason = fmt.Sprintf("it was released (epoch %d)", cur.Epoch)
	default:
		e.Reason = fmt.Sprintf("%s took it over at epoch %d", cur.Owner, cur.Epoch)
	}
	return e
}

// Claimable returns the filter conditions "this lease is free or expired": AND it into a query over
// documents that embed their lease (partitions) to find the ones a node may try to Acquire. It is a
// hint, not a guarantee: Acquire decides, atomically.
func Claimable() bson.D {
	return bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: FieldOwner, Value: ""}},
		bson.D{{Key: FieldOwner, Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$expr", Value: expiredExpr}},
	}}}
}
