// Package metadata names and shapes fleetsync's metadata database on the destination cluster: the only
// place the nodes of a fleet share state, and everything a new fleet needs to continue a sync. Its
// schema is documented in docs/metadata.md; this package holds the collection names, the sync
// document, and the operations on it that any node may perform.
//
// Leases live inside the documents they protect (the coordinator lease in the sync document, a copy
// lease in each partition, a node's name lease in its registry document), so that a progress write
// and the check that its writer still holds the lease are one single-document update: no
// cross-document race, no transaction needed.
package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"

	"github.com/fleetsync/fleetsync/lease"
)

// Collections of the metadata database.
const (
	CollSyncs      = "syncs"      // one document per sync (--id): state, phase, options, coordinator lease
	CollCatalog    = "catalog"    // one document per source collection: options, indexes, deferred index changes
	CollPartitions = "partitions" // _id ranges to copy, each with its own copy lease and checkpoint
	CollNodes      = "nodes"      // node registry, each document with its node's name lease
	// CollCheckpoints holds one document per sync: the change-event applier's lease and its resume
	// point, written together so that only the live applier can move the resume point.
	CollCheckpoints = "checkpoints"
	// CollCapture holds one document per sync: the capture's lease and how far it spooled the
	// source's change events (package spool).
	CollCapture = "capture"
	// CollSpool holds the captured change events, keyed by source position, until the applier has
	// applied them.
	CollSpool = "spool"
	// CollSpoolChunks holds the pieces of spooled records too large for one document.
	CollSpoolChunks = "spoolChunks"
	// CollVerification holds one document per copied partition (_id the partition's _id): the fleet
	// verifier's lease on it, its checkpoint and what it found (package partverify).
	CollVerification = "verification"
)

// States of a sync, mongosync's names. INITIALIZING is never stored: it is what a node reports while
// it is still connecting to the clusters and has not read the sync document yet.
const (
	StateInitializing = "INITIALIZING"
	StateIdle         = "IDLE"
	StateRunning      = "RUNNING"
	StatePaused       = "PAUSED"
	StateCommitting   = "COMMITTING"
	StateCommitted    = "COMMITTED"
	StateReversing    = "REVERSING"
)

// Phases of a RUNNING sync, in order. Each is finished by the coordinator before it moves on, and each
// can be redone from its start by a new coordinator.
const (
	PhaseCatalog = "catalog" // take startAtOperationTime, catalog the source, split partitions, create collections
	PhaseCopy    = "copy"    // workers copy partitions
	PhaseIndexes = "indexes" // the coordinator builds the destination indexes
	PhaseApply   = "apply"   // collections and indexes are copied; the applier applies change events
)

// Identity says which deployment a connection string points at, without credentials: its hosts and
// replica set name, as written in the connection string.
type Identity struct {
	Hosts      []string `bson:"hosts" json:"hosts"`
	ReplicaSet string   `bson:"replicaSet,omitempty" json:"replicaSet,omitempty"`
}

// Sync is the sync document, _id the sync's --id. The coordinator lease's fields (lease.FieldOwner,
// ...) live in it too; Owner and Epoch below are read from them.
type Sync struct {
	ID          string   `bson:"_id"`
	Source      Identity `bson:"source"`
	Destination Identity `bson:"destination"`
	State       string   `bson:"state"`
	Phase       string   `bson:"phase,omitempty"`
	Error       string   `bson:"error,omitempty"`    // the coordinator's last failure, cleared when it gets past it
	Warnings    []string `bson:"warnings,omitempty"` // what the sync leaves out, said once at the catalog

	CreatedAt            time.Time           `bson:"createdAt"`
	StartedAt            time.Time           `bson:"startedAt,omitempty"`
	StartAtOperationTime primitive.Timestamp `bson:"startAtOperationTime,omitempty"`
	CopyStartedAt        time.Time           `bson:"copyStartedAt,omitempty"`
	CopyDoneAt           time.Time           `bson:"copyDoneAt,omitempty"`
	IndexesDoneAt        time.Time           `bson:"indexesDoneAt,omitempty"`

	// Options are /start's parameters, fixed for the life of the sync.
	Options Options `bson:"options"`
	// Reversed is set once a reverse began: events then flow from cluster1 back to cluster0.
	Reversed bool `bson:"reversed,omitempty"`
	// Commit is the cut-over's record, from the /commit call on.
	Commit *Commit `bson:"commit,omitempty"`
	// Verification is the embedded verifier's last result (verification.enabled).
	Verification *Verification `bson:"verification,omitempty"`

	Collections         int   `bson:"collections,omitempty"`
	EstimatedTotalBytes int64 `bson:"estimatedTotalBytes,omitempty"`
	EstimatedTotalDocs  int64 `bson:"estimatedTotalDocs,omitempty"`

	// The coordinator lease.
	Owner string `bson:"owner,omitempty"`
	Epoch int64  `bson:"epoch,omitempty"`
}

// DB is one sync's view of the metadata database.
type DB struct {
	SyncID string
	db     *mongo.Database
}

// Open returns the metadata database name on client for sync syncID. It does no I/O.
//
// Every write to it (leases, checkpoints, state changes, partitions) uses majority write concern:
// a lease or checkpoint acknowledged by a primary alone could be rolled back by a failover, and a
// new primary would then hand a lease to two holders, or let a checkpoint claim data that the
// rollback removed. Reads stay local (the primary's view): a reader acts only through fenced,
// majority-acknowledged writes, which a rolled-back read cannot get past.
func Open(client *mongo.Client, name, syncID string) *DB {
	return &DB{SyncID: syncID, db: client.Database(name, options.Database().SetWriteConcern(writeconcern.Majority()))}
}

// Name is the metadata database's name.
func (m *DB) Name() string { return m.db.Name() }

// Collection returns one of the Coll* collections.
func (m *DB) Collection(name string) *mongo.Collection { return m.db.Collection(name) }

// Syncs is where the coordinator lease lives: a lease.Store on it acquires the lease named SyncID.
func (m *DB) Syncs() *mongo.Collection { return m.db.Collection(CollSyncs) }

// MismatchError says a node was started with a source other than the one recorded for its sync.
type MismatchError struct {
	SyncID           string
	Recorded, Theirs Identity
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("--cluster0 points at %s, but sync %q on this destination was created for the source %s; "+
		"start every node of a fleet with the same --cluster0, or pick another --id for a new sync",
		describe(e.Theirs), e.SyncID, describe(e.Recorded))
}

func describe(id Identity) string {
	s := fmt.Sprint(id.Hosts)
	if id.ReplicaSet != "" {
		s += " (replica set " + id.ReplicaSet + ")"
	}
	return s
}

// Same reports whether two identities may be the same deployment: they share a host, or both name
// the same replica set. A fleet's nodes may list different seed hosts of one replica set; only a
// connection string with nothing in common is refused.
func (a Identity) Same(b Identity) bool {
	if a.ReplicaSet != "" && a.ReplicaSet == b.ReplicaSet {
		return true
	}
	for _, h := range a.Hosts {
		for _, g := range b.Hosts {
			if h == g {
				return true
			}
		}
	}
	return false
}

// Register creates the sync document in state IDLE if it does not exist, and checks that an existing
// one was created for the same source; it returns the sync as stored. A *MismatchError means the
// node must refuse to run.
func (m *DB) Register(ctx context.Context, source, destination Identity) (Sync, error) {
	_, err := m.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: m.SyncID}}, bson.D{{Key: "$setOnInsert", Value: bson.D{
		{Key: "source", Value: source},
		{Key: "destination", Value: destination},
		{Key: "state", Value: StateIdle},
		{Key: "createdAt", Value: time.Now().UTC()},
	}}}, options.Update().SetUpsert(true))
	if err != nil && !mongo.IsDuplicateKeyError(err) { // two nodes racing to create it: either wins
		return Sync{}, fmt.Errorf("registering sync %q in the metadata database %s: %w", m.SyncID, m.Name(), err)
	}
	s, err := m.Sync(ctx)
	if err != nil {
		return Sync{}, err
	}
	if !s.Source.Same(source) {
		return Sync{}, &MismatchError{SyncID: m.SyncID, Recorded: s.Source, Theirs: source}
	}
	return s, nil
}

// Sync reads the sync document.
func (m *DB) Sync(ctx context.Context) (Sync, error) {
	var s Sync
	err := m.Syncs().FindOne(ctx, bson.D{{Key: "_id", Value: m.SyncID}}).Decode(&s)
	if err != nil {
		return Sync{}, fmt.Errorf("reading sync %q from the metadata database %s: %w", m.SyncID, m.Name(), err)
	}
	return s, nil
}

// ErrDeposed is returned by fenced updates when the coordinator lease they were made under is gone.
var ErrDeposed = errors.New("this node no longer holds the coordinator lease")

// UpdateSync applies update to the sync document only while l (the coordinator lease) is held, so
// that a coordinator that stalled and was replaced cannot move the sync backwards.
func (m *DB) UpdateSync(ctx context.Context, l lease.Lease, update bson.D) error {
	filter := append(bson.D{{Key: "_id", Value: m.SyncID}}, l.Fence()...)
	res, err := m.Syncs().UpdateOne(ctx, filter, update)
	if err != nil {
		return fmt.Errorf("updating sync %q: %w", m.SyncID, err)
	}
	if res.MatchedCount == 0 {
		return ErrDeposed
	}
	return nil
}

// SetPhase moves the sync to phase under the coordinator lease l, with more fields to $set.
func (m *DB) SetPhase(ctx context.Context, l lease.Lease, phase string, set ...bson.E) error {
	return m.UpdateSync(ctx, l, bson.D{{Key: "$set", Value: append(bson.D{{Key: "phase", Value: phase}}, set...)}})
}

// CheckLease returns ErrDeposed unless l (the coordinator lease) is still held, live, at its epoch,
// as the server judges it now. The coordinator calls it right before a side effect that no fenced
// update of the sync document can carry (partitions, catalog, DDL, write blocking).
func (m *DB) CheckLease(ctx context.Context, l lease.Lease) error {
	filter := append(bson.D{{Key: "_id", Value: m.SyncID}}, l.Fence()...)
	err := m.Syncs().FindOne(ctx, filter, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return ErrDeposed
	}
	if err != nil {
		return fmt.Errorf("checking the coordinator lease of sync %q: %w", m.SyncID, err)
	}
	return nil
}
