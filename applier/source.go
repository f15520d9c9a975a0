package applier

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/preflight"
)

// reader reads source events in order.
type reader interface {
	// next returns the next events, at most max of them, waiting a bounded time (about a second)
	// when there are none, and the position through which the source has been read: once the events
	// are applied, everything up to that position is.
	next(ctx context.Context, max int) (events, Position, error)
	close(ctx context.Context)
}

// events are a reader's batch. records, when set, counts the spool entries they came from: ends[k]
// is the index of the last event of the k-th entry (that of the entry before it when it gave none,
// -1 for none at all), so that a checkpoint after events[i] covers the entries whose end is <= i.
type events struct {
	list []changeevent.Event
	ends []int
	// switchAt, set on an empty batch, is the spool reader's switch to the live source: everything
	// through it is applied, or not the sync's (see spoolReader).
	switchAt *Position
}

// recordReader reads the source's records as the source gives them (oplog entries, or change
// events), each with the position right after it: what the capture spools.
type recordReader interface {
	// nextRecords is reader.next before parsing: at most max records.
	nextRecords(ctx context.Context, max int) ([]record, Position, error)
	close(ctx context.Context)
}

// record is one source record and the position right after it.
type record struct {
	raw bson.Raw
	pos Position
}

// parsing turns a recordReader into a reader of events.
type parsing struct {
	recordReader
	kind string // SourceOplog or SourceChangeStream
}

func (p parsing) next(ctx context.Context, max int) (events, Position, error) {
	recs, pos, err := p.nextRecords(ctx, max)
	if err != nil {
		return events{}, pos, err
	}
	var out events
	for _, r := range recs {
		evs, err := parseRecord(p.kind, r.raw)
		if err != nil {
			return events{}, pos, err
		}
		out.list = append(out.list, evs...)
	}
	return out, pos, nil
}

// parseRecord reads the events of one record of kind.
func parseRecord(kind string, raw bson.Raw) ([]changeevent.Event, error) {
	if kind == SourceChangeStream {
		ev, err := changeevent.FromChangeStream(raw)
		if err != nil {
			return nil, fmt.Errorf("a change event fleetsync cannot read (%v): %s", err, truncate(raw.String(), 300))
		}
		return []changeevent.Event{ev}, nil
	}
	evs, err := changeevent.FromOplog(raw)
	if err != nil {
		return nil, fmt.Errorf("an oplog entry fleetsync cannot read (%v): %s", err, truncate(raw.String(), 300))
	}
	return evs, nil
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
