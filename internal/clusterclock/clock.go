// Package clusterclock reads a cluster's current time as an oplog timestamp: the point from which its
// change events are applied (a sync's start time, a commit point, a reverse's start).
package clusterclock

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// ErrNoClock says the source can give neither a cluster time nor an oplog position, so there is
// no point from which its change events could be applied after the copy.
var ErrNoClock = errors.New("the source reports no cluster time and has no oplog (local.oplog.rs); " +
	"fleetsync needs a replica set or a sharded cluster as its source")

// beforeEveryEntry is earlier than any oplog entry's ts, and not the zero Timestamp, which means "not
// taken yet" in the sync document.
var beforeEveryEntry = primitive.Timestamp{T: 0, I: 1}

// Now returns the source's current time as an oplog timestamp: the operationTime (or
// $clusterTime) of a command's reply, which replica sets and sharded clusters return, or else the
// ts of the source's latest oplog entry (servers that return no cluster time, like the sandbox's).
// Taken before any document is read, it is the point from which change events are applied after the
// copy, so that every write the copy might have missed is replayed.
func Now(ctx context.Context, source *mongo.Client) (primitive.Timestamp, error) {
	reply, err := source.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Raw()
	if err != nil {
		return primitive.Timestamp{}, fmt.Errorf("reading the source's cluster time: %w", err)
	}
	if ts, ok := clusterTime(reply); ok {
		return ts, nil
	}
	last, err := source.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		// An oplog with no entry yet: every entry it will ever have comes after this point.
		names, lerr := source.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
		if lerr == nil && len(names) == 1 {
			return beforeEveryEntry, nil
		}
		return primitive.Timestamp{}, ErrNoClock
	}
	if err != nil {
		return primitive.Timestamp{}, fmt.Errorf("%w (reading it failed: %v)", ErrNoClock, err)
	}
	t, i, ok := last.Lookup("ts").TimestampOK()
	if !ok {
		return primitive.Timestamp{}, fmt.Errorf("the source's latest oplog entry has no timestamp ts: %s", last)
	}
	return primitive.Timestamp{T: t, I: i}, nil
}

// clusterTime reads the time a replica set or sharded cluster stamps on every reply: operationTime,
// else $clusterTime.clusterTime.
func clusterTime(reply bson.Raw) (primitive.Timestamp, bool) {
	if t, i, ok := reply.Lookup("operationTime").TimestampOK(); ok {
		return primitive.Timestamp{T: t, I: i}, true
	}
	if t, i, ok := reply.Lookup("$clusterTime", "clusterTime").TimestampOK(); ok {
		return primitive.Timestamp{T: t, I: i}, true
	}
	return primitive.Timestamp{}, false
}
