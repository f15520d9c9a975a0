package membership

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/lease"
)

// A registry document, in <metadataDB>.nodes on the destination, is
//
//	{_id: "<sync>/<name>", owner, epoch, renewedAt, ttlMs,   // its registration lease (package lease)
//	 sync, name, gossipAddr, apiAddr, host, pid, startedAt, left, leftAt}
//
// A node is registered while its lease is live and held (owner not ""); left is set, and the lease
// released, when it leaves gracefully. A crashed node's document stays until its lease expires and
// the name is taken again.
const (
	fieldSync       = "sync"
	fieldName       = "name"
	fieldGossipAddr = "gossipAddr"
	fieldAPIAddr    = "apiAddr"
	fieldHost       = "host"
	fieldPID        = "pid"
	fieldStartedAt  = "startedAt" // the node's own clock when it joined: for people, not for expiry
	fieldLeft       = "left"
	fieldLeftAt     = "leftAt" // server date of a graceful leave
)

// registration is a registry document as read back.
type registration struct {
	ID         string    `bson:"_id"`
	Owner      string    `bson:"owner"`
	TTLMs      int64     `bson:"ttlMs"`
	Sync       string    `bson:"sync"`
	Name       string    `bson:"name"`
	GossipAddr string    `bson:"gossipAddr"`
	APIAddr    string    `bson:"apiAddr"`
	Host       string    `bson:"host"`
	PID        int       `bson:"pid"`
	StartedAt  time.Time `bson:"startedAt"`
	Left       bool      `bson:"left"`
}

// registryID is the _id of a node's registry document. Names may not contain "/", so the sync is
// everything before the last "/".
func registryID(syncID, name string) string { return syncID + "/" + name }

// registeredFilter matches the documents of the nodes of syncID that are registered now: held,
// not left, and live by the server's clock (the same test as package lease's, which keeps its
// expression to itself).
func registeredFilter(syncID string) bson.D {
	expiresAt := bson.D{{Key: "$add", Value: bson.A{"$" + lease.FieldRenewedAt, "$" + lease.FieldTTL}}}
	return bson.D{
		{Key: fieldSync, Value: syncID},
		{Key: fieldLeft, Value: false},
		{Key: lease.FieldOwner, Value: bson.D{{Key: "$ne", Value: ""}}},
		{Key: "$expr", Value: bson.D{{Key: "$gte", Value: bson.A{expiresAt, "$$NOW"}}}},
	}
}

// register fills in the document of a freshly acquired registration lease l, fenced by it.
func register(ctx context.Context, coll *mongo.Collection, l lease.Lease, r registration) error {
	filter := append(bson.D{{Key: "_id", Value: l.Name}}, l.Fence()...)
	res, err := coll.UpdateOne(ctx, filter, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: fieldSync, Value: r.Sync},
			{Key: fieldName, Value: r.Name},
			{Key: fieldGossipAddr, Value: r.GossipAddr},
			{Key: fieldAPIAddr, Value: r.APIAddr},
			{Key: fieldHost, Value: r.Host},
			{Key: fieldPID, Value: r.PID},
			{Key: fieldStartedAt, Value: r.StartedAt},
			{Key: fieldLeft, Value: false},
		}},
		{Key: "$unset", Value: bson.D{{Key: fieldLeftAt, Value: ""}}},
	})
	if err != nil {
		return fmt.Errorf("registering node %q of sync %q: %w", r.Name, r.Sync, err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("registering node %q of sync %q: its registration lease expired within its TTL of %s before it was written; is the destination very slow?",
			r.Name, r.Sync, l.TTL)
	}
	return nil
}

// registered reads the nodes of syncID registered now.
func registered(ctx context.Context, coll *mongo.Collection, syncID string) ([]registration, error) {
	cur, err := coll.Find(ctx, registeredFilter(syncID))
	if err != nil {
		return nil, fmt.Errorf("reading the node registry: %w", err)
	}
	var regs []registration
	if err := cur.All(ctx, &regs); err != nil {
		return nil, fmt.Errorf("reading the node registry: %w", err)
	}
	return regs, nil
}

// deregister marks the registration of l left and releases its lease. It changes nothing when
// another process has taken the name since (the document is then that process's).
func deregister(ctx context.Context, coll *mongo.Collection, store *lease.Store, l lease.Lease) error {
	// Not fenced on liveness: a registration that expired during a stall but was not taken over is
	// still ours to mark.
	res, err := coll.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: l.Name}, {Key: lease.FieldOwner, Value: l.Owner}, {Key: lease.FieldEpoch, Value: l.Epoch}},
		bson.D{
			{Key: "$set", Value: bson.D{{Key: fieldLeft, Value: true}}},
			{Key: "$currentDate", Value: bson.D{{Key: fieldLeftAt, Value: true}}},
		})
	if err != nil {
		return fmt.Errorf("marking registration %s left: %w", l.Name, err)
	}
	if res.MatchedCount == 0 {
		return nil // taken over (or already released): not ours any more
	}
	if err := store.Release(ctx, l); err != nil && !errors.Is(err, lease.ErrLost) {
		return fmt.Errorf("releasing registration %s: %w", l.Name, err)
	}
	return nil
}

// NameInUseError says Join could not register because a live node of the same sync already has
// the name.
type NameInUseError struct {
	SyncID string
	Name   string
	// The live holder, from its registry document; zero when it had not written them yet.
	Host      string
	PID       int
	StartedAt time.Time     // the holder's own clock
	TTL       time.Duration // the holder's registration TTL: its name is free this long after it stops
	Err       *lease.HeldError
}

func (e *NameInUseError) Error() string {
	holder := ""
	if e.Host != "" {
		holder = fmt.Sprintf(" (started %s on %s, pid %d)", e.StartedAt.Local().Format(time.RFC3339), e.Host, e.PID)
	}
	wait := "until its registration expires"
	if e.TTL > 0 {
		wait = e.TTL.String()
	}
	return fmt.Sprintf("node name %q is already in use by a live node of sync %q%s; pick another --name, or wait %s if that node is gone",
		e.Name, e.SyncID, holder, wait)
}

// Unwrap returns the lease error underneath.
func (e *NameInUseError) Unwrap() error { return e.Err }

// nameInUse explains held, the failure to acquire the registration of opts.Name.
func nameInUse(ctx context.Context, opts Options, held *lease.HeldError) error {
	e := &NameInUseError{SyncID: opts.SyncID, Name: opts.Name, Err: held}
	var r registration
	if err := opts.Registry.FindOne(ctx, bson.D{{Key: "_id", Value: held.Name}}).Decode(&r); err == nil {
		e.Host, e.PID, e.StartedAt = r.Host, r.PID, r.StartedAt
		e.TTL = time.Duration(r.TTLMs) * time.Millisecond
	}
	return e
}
