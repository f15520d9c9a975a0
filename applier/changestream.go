package applier

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/changeevent"
)

// changeStreamAwait is how long the server waits for new events before answering a getMore.
const changeStreamAwait = time.Second

// changeStreamReader reads one cluster-wide change stream (client.Watch): the production source,
// since it needs no access to the local database and works through mongos.
type changeStreamReader struct {
	source   *mongo.Client
	expanded bool // showExpandedEvents: DDL events (MongoDB 6.0+)
	pos      Position
	// startAt: no resume token yet, so the first open starts at pos.TS (startAtOperationTime
	// includes events at that time).
	startAt bool
	cs      *mongo.ChangeStream
}

func newChangeStreamReader(source *mongo.Client, t topology, from Position, startAt bool) reader {
	return parsing{recordReader: newChangeStreamRecords(source, t, from, startAt), kind: SourceChangeStream}
}

// newChangeStreamRecords is the change stream reader before parsing: what the capture spools.
func newChangeStreamRecords(source *mongo.Client, t topology, from Position, startAt bool) *changeStreamReader {
	return &changeStreamReader{source: source, expanded: t.maxWire >= expandedEventsWire, pos: from, startAt: startAt || from.Token == nil}
}

func (r *changeStreamReader) open(ctx context.Context) error {
	opts := options.ChangeStream().SetMaxAwaitTime(changeStreamAwait).SetBatchSize(oplogBatch)
	if r.expanded {
		opts.SetShowExpandedEvents(true)
	}
	if r.startAt {
		ts := r.pos.TS
		opts.SetStartAtOperationTime(&ts)
	} else {
		opts.SetResumeAfter(r.pos.Token)
	}
	cs, err := r.source.Watch(ctx, mongo.Pipeline{}, opts)
	if err != nil {
		return fmt.Errorf("opening the source's change stream: %w", err)
	}
	r.cs = cs
	return nil
}

func (r *changeStreamReader) nextRecords(ctx context.Context, max int) ([]record, Position, error) {
	if r.cs == nil {
		if err := r.open(ctx); err != nil {
			return nil, r.pos, err
		}
	}
	var recs []record
	for len(recs) < max {
		if !r.cs.TryNext(ctx) {
			if err := r.cs.Err(); err != nil {
				r.close(ctx)
				if len(recs) == 0 {
					return nil, r.pos, fmt.Errorf("reading the source's change stream: %w", err)
				}
			}
			break
		}
		raw := bson.Raw(append([]byte(nil), r.cs.Current...))
		pos, err := changeEventPosition(raw)
		if err != nil {
			return nil, r.pos, err
		}
		recs = append(recs, record{raw: raw, pos: pos})
		r.pos = pos
		r.startAt = false
	}
	// After a batch, the stream's resume token is its post-batch token: it moves forward past
	// events the stream skipped (other namespaces' no-ops), so the position advances on a quiet
	// source too. Its cluster time is encoded in it.
	if r.cs != nil {
		if tok := r.cs.ResumeToken(); tok != nil {
			if ts, ok := changeevent.TokenTime(tok); ok && !ts.Before(r.pos.TS) {
				r.pos = Position{TS: ts, Token: append(bson.Raw(nil), tok...)}
				r.startAt = false
			}
		}
	}
	return recs, r.pos, nil
}

// changeEventPosition is the position right after a change event: its cluster time and its resume
// token (its _id).
func changeEventPosition(raw bson.Raw) (Position, error) {
	t, i, ok := raw.Lookup("clusterTime").TimestampOK()
	token, tok := raw.Lookup("_id").DocumentOK()
	if !ok || !tok {
		return Position{}, fmt.Errorf("a change event fleetsync cannot read (no clusterTime or _id): %s", truncate(raw.String(), 300))
	}
	return Position{TS: primitive.Timestamp{T: t, I: i}, Token: token}, nil
}

func (r *changeStreamReader) close(ctx context.Context) {
	if r.cs != nil {
		r.cs.Close(ctx)
		r.cs = nil
	}
}
