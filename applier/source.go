package applier

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/changeevent"
)

// reader reads source events in order.
type reader interface {
	// next returns the next events, at most max of them, waiting a bounded time (about a second)
	// when there are none, and the position through which the source has been read: once the events
	// are applied, everything up to that position is.
	next(ctx context.Context, max int) ([]changeevent.Event, Position, error)
	close(ctx context.Context)
}

// Modes for Config.Source.
const (
	ModeAuto         = "auto"
	ModeChangeStream = SourceChangeStream
	ModeOplog        = SourceOplog
)

// minChangeStreamWire is MongoDB 4.0's wire version: cluster-wide change streams and
// startAtOperationTime. expandedEventsWire is 6.0's, for showExpandedEvents (DDL events).
const (
	minChangeStreamWire = 7
	expandedEventsWire  = 17
)

// topology is what the applier needs to know about the source to pick an event source.
type topology struct {
	replicaSet, mongos bool
	maxWire            int32
	hasOplog           bool
}

func (t topology) changeStreams() bool {
	return (t.replicaSet || t.mongos) && t.maxWire >= minChangeStreamWire
}

func probeTopology(ctx context.Context, source *mongo.Client) (topology, error) {
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
		MaxWire int32  `bson:"maxWireVersion"`
	}
	// isMaster rather than hello: every server version answers it (the sandbox has no hello).
	if err := source.Database("admin").RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&hello); err != nil {
		return topology{}, fmt.Errorf("asking the source what it is (isMaster): %w", err)
	}
	t := topology{replicaSet: hello.SetName != "", mongos: hello.Msg == "isdbgrid", maxWire: hello.MaxWire}
	if !t.mongos {
		names, err := source.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
		t.hasOplog = err == nil && len(names) == 1
	}
	return t, nil
}

// chooseSource decides where events come from: a cluster-wide change stream where the source can
// give one (the production default), else its oplog; mode forces one of them.
func chooseSource(t topology, mode string) (string, error) {
	switch mode {
	case ModeChangeStream:
		if !t.changeStreams() {
			return "", errors.New("--change-source changeStream: the source cannot give a cluster-wide change stream (it needs a MongoDB 4.0+ replica set or sharded cluster); use --change-source oplog or auto")
		}
		return SourceChangeStream, nil
	case ModeOplog:
		if !t.hasOplog {
			return "", errors.New("--change-source oplog: the source has no readable local.oplog.rs (a sharded cluster's mongos has none, and the user needs read access to the local database); use --change-source changeStream or auto")
		}
		return SourceOplog, nil
	case ModeAuto, "":
		if t.changeStreams() {
			return SourceChangeStream, nil
		}
		if t.hasOplog {
			return SourceOplog, nil
		}
		return "", errors.New("the source gives no change events: it is neither a replica set nor a sharded cluster, and has no oplog; fleetsync needs a replica set source to keep the destination current")
	}
	return "", fmt.Errorf("--change-source %q is not one of auto, changeStream, oplog", mode)
}

// CheckSource says which event source the applier will use on source with mode, or why it cannot
// read change events there: the preflight of /start, so a sync that could never keep the
// destination current is refused before the copy rather than after it.
func CheckSource(ctx context.Context, source *mongo.Client, mode string) (string, error) {
	t, err := probeTopology(ctx, source)
	if err != nil {
		return "", err
	}
	return chooseSource(t, mode)
}
