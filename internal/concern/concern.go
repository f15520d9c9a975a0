// Package concern holds the read and write concerns of fleetsync's data paths, in one place so that
// every path that copies, refreshes or writes user data makes the same choice:
//
//   - A source read that feeds the destination (the copy, an update's refresh) reads with majority
//     read concern, so that it never copies a write that a failover later rolls back (no event
//     would ever remove it from the destination), and with afterClusterTime at the time the data
//     must at least reflect (the sync's start time; for a refresh, the event being refreshed), so
//     that a majority snapshot older than that time, which a lagging or newly elected node can
//     serve, cannot hide writes that no change event will bring back.
//   - A destination data write (copy inserts, applied events) uses majority write concern: a
//     checkpoint recorded after it (majority too, see metadata.Open) must never outlive it. On a
//     replica set the order of the oplog would give that for free within one primary's term, but
//     not across a failover between the write and the checkpoint, nor on a sharded destination,
//     where the data and the metadata live on different shards.
//
// docs/metadata.md has the table of every read and write and the concern it uses.
package concern

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/mongo/readconcern"
	"go.mongodb.org/mongo-driver/mongo/writeconcern"
)

// SourceCollection is a source collection whose reads are majority reads.
func SourceCollection(source *mongo.Client, db, coll string) *mongo.Collection {
	return source.Database(db).Collection(coll, options.Collection().SetReadConcern(readconcern.Majority()))
}

// DestinationCollection is a destination collection whose writes wait for a majority.
func DestinationCollection(destination *mongo.Client, db, coll string) *mongo.Collection {
	return destination.Database(db).Collection(coll, options.Collection().SetWriteConcern(writeconcern.Majority()))
}

// VerifiedCollection is a destination collection whose reads are majority reads, for the fleet
// verifier (package partverify): the copy and the applier write with majority write concern, so a
// majority read sees every write they counted, and never a write a failover then rolls back, which
// would be a difference no one made.
func VerifiedCollection(destination *mongo.Client, db, coll string) *mongo.Collection {
	return destination.Database(db).Collection(coll, options.Collection().SetReadConcern(readconcern.Majority()))
}

// ReadAfter returns ctx with a causally consistent session of source advanced to at, so that every
// read made under the returned context (and its cursors' getMores) carries
// readConcern.afterClusterTime = at: the server answers only from a snapshot that includes at.
// With a zero at it returns ctx unchanged. end must be called when the reads are done; the session
// is not safe for concurrent use, so one goroutine reads under it.
func ReadAfter(ctx context.Context, source *mongo.Client, at primitive.Timestamp) (context.Context, func(), error) {
	if at.IsZero() {
		return ctx, func() {}, nil
	}
	sess, err := source.StartSession(options.Session().SetCausalConsistency(true))
	if err != nil {
		return nil, nil, fmt.Errorf("starting a causally consistent session on the source: %w", err)
	}
	if err := sess.AdvanceOperationTime(&at); err != nil {
		sess.EndSession(context.Background())
		return nil, nil, fmt.Errorf("advancing the source session to %d.%d: %w", at.T, at.I, err)
	}
	return mongo.NewSessionContext(ctx, sess), func() { sess.EndSession(context.Background()) }, nil
}
