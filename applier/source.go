package applier

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/preflight"
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

// probeTopology asks the source what it is (preflight.Probe, the same question /start asks).
func probeTopology(ctx context.Context, source *mongo.Client) (topology, error) {
	c, err := preflight.Probe(ctx, "the source", source)
	if err != nil {
		return topology{}, err
	}
	return topologyOf(c), nil
}

func topologyOf(c preflight.Cluster) topology {
	return topology{replicaSet: c.ReplicaSet, mongos: c.Mongos, maxWire: c.MaxWire, hasOplog: c.HasOplog}
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

// SourceFor says which event source the applier will use on a cluster (as preflight.Probe saw it)
// with mode, or why it cannot apply events from it: /start refuses such a sync at once.
func SourceFor(c preflight.Cluster, mode string) (string, error) {
	return chooseSource(topologyOf(c), mode)
}
