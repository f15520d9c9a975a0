package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/web"
)

// The window that matters: with the capture running, the source's oplog only has to hold what the
// capture has not read yet. /progress reports the spool, mongosync's estimatedOplogTimeRemaining
// measured from what the sync still needs, and warns when the capture or the destination's disk
// becomes a risk.

const (
	// probeTTL is how long a node reuses what it asked a cluster for /progress beyond the metadata
	// (the destination's dbStats, the source's oldest oplog entry): /progress is called every
	// second by `fleetsync status --watch` and by dashboards, and these figures move slowly
	// (mongosync refreshes its estimatedOplogTimeRemaining every five minutes).
	probeTTL = time.Minute
	// probeTimeout bounds each such read, so that a slow cluster cannot hold /progress up; a read
	// that fails is remembered as unknown for probeTTL like any other answer.
	probeTimeout = 2 * time.Second
)

// mongosync's estimatedOplogTimeRemaining bounds and its value while the oldest entry is unknown
// (https://www.mongodb.com/docs/mongosync/current/reference/api/progress/).
const (
	oplogRemainingFloor   = 15 * time.Minute
	oplogRemainingCeiling = 72 * time.Hour
	oplogNotChecked       = "not checked yet"
)

// probes are one node's cached cluster reads for /progress.
type probes struct {
	space  cached[spool.Space]
	oldest cached[primitive.Timestamp]
}

func (n *node) probes() *probes { return &n.probeCache }

// cached is one value read at most once per probeTTL from the same place (key: the client asked,
// which a reverse swaps); concurrent callers wait for the one read.
type cached[T any] struct {
	mu  sync.Mutex
	at  time.Time // zero: never read
	key any
	v   T
	ok  bool
}

func (c *cached[T]) get(now time.Time, key any, read func() (T, bool)) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || now.Sub(c.at) >= probeTTL || c.key != key {
		c.v, c.ok = read()
		c.at, c.key = now, key
	}
	return c.v, c.ok
}

// windowProgress fills fleet.spool, estimatedOplogTimeRemaining, and the warnings about the
// capture's lag and the destination's free space. ck is the applier's checkpoint (ckOK false when
// the applier never ran).
func (n *node) windowProgress(ctx context.Context, p *web.Progress, s *metadata.Sync, source *mongo.Client, ck applier.Checkpoint, ckOK bool) error {
	c, capOK, err := spool.ReadCapture(ctx, n.meta)
	if err != nil {
		return err
	}
	if capOK && ckOK && c.Direction != ck.Direction {
		capOK = false // the capture of the direction a reverse left behind
	}
	var applied int64
	if ckOK {
		applied = ck.FromSpool
	}
	active := s.State == metadata.StateRunning || s.State == metadata.StatePaused
	if capOK {
		sp := &web.Spool{Captured: c.Captured, Applied: applied, Waiting: spool.Waiting(c, applied), Bytes: c.CapturedBytes,
			LagSeconds: c.LagSeconds(), Done: c.Done, Error: c.Error}
		capturer := ""
		if c.Owner != "" {
			capturer = displayName(c.Owner)
			sp.Capturer = &web.LeaseHolder{Node: capturer, Epoch: c.Epoch}
		}
		p.Fleet.Spool = sp
		if w := spool.LagWarning(c, capturer); active && w != "" {
			p.Warnings = append(p.Warnings, w)
		}
		if w := captureFailure(c); active && w != "" {
			p.Warnings = append(p.Warnings, w)
		}
	}
	if s.State == metadata.StateRunning {
		p.EstimatedOplogTimeRemaining = oplogNotChecked
		if needed, ok := neededFromOplog(s, c, capOK, ck, ckOK); ok {
			oldest, known := c.OplogOldest, capOK && !c.Done && !c.OplogOldest.IsZero()
			if !known {
				// The capture is over (or never ran), so nothing refreshes its figures: ask the
				// source, once a minute.
				oldest, known = n.probes().oldest.get(time.Now(), source, func() (primitive.Timestamp, bool) { return n.readOplogOldest(ctx, source) })
			}
			if known {
				p.EstimatedOplogTimeRemaining = oplogTimeRemaining(needed, oldest)
			}
		}
	}
	if active {
		waiting, toCopy := stillToWrite(s, p.CollectionCopy, c, capOK, applied)
		if space, known := n.probes().space.get(time.Now(), n.meta, func() (spool.Space, bool) { return n.readSpace(ctx) }); known {
			if w := spool.SpaceWarning(space, waiting, toCopy); w != "" {
				p.Warnings = append(p.Warnings, w)
			}
		}
	}
	return nil
}

// stillToWrite is what the sync still has to write to the destination, in bytes: the spool's
// entries not applied yet (while the capture runs) and the copy's remaining bytes (while copying;
// the estimate may be exceeded, never below 0).
func stillToWrite(s *metadata.Sync, cc web.CollectionCopy, c spool.Capture, capOK bool, applied int64) (waiting, toCopy int64) {
	if capOK && !c.Done {
		waiting = spool.WaitingBytes(c, applied)
	}
	if s.Phase == metadata.PhaseCatalog || s.Phase == metadata.PhaseCopy {
		toCopy = max(cc.EstimatedTotalBytes-cc.EstimatedCopiedBytes, 0)
	}
	return waiting, toCopy
}

// neededFromOplog is the oldest source position the sync still needs from the source's oplog: the
// capture's while the applier reads the spool, the applier's once it reads the source (or when no
// capture ever ran), and the sync's start before either has checkpointed.
func neededFromOplog(s *metadata.Sync, c spool.Capture, capOK bool, ck applier.Checkpoint, ckOK bool) (primitive.Timestamp, bool) {
	switch {
	case ckOK && ck.Live && ck.Position != nil:
		return ck.Position.TS, true
	case ckOK && ck.Live:
	case capOK && !c.Done && c.Position != nil:
		return c.Position.TS, true
	case !capOK && ckOK && ck.Position != nil:
		return ck.Position.TS, true
	case !s.StartAtOperationTime.IsZero():
		return s.StartAtOperationTime, true
	}
	return primitive.Timestamp{}, false
}

// oplogTimeRemaining is mongosync's estimatedOplogTimeRemaining: the source time between the
// oldest entry of the oplog and the oldest entry the sync still needs, which is how long the oplog
// can go on rolling over before it loses that entry. Rounded down (never promising more than
// there is) to whole minutes under an hour and to whole hours above, within mongosync's bounds.
func oplogTimeRemaining(needed, oldest primitive.Timestamp) string {
	d := time.Duration(int64(needed.T)-int64(oldest.T)) * time.Second
	switch {
	case d < oplogRemainingFloor:
		return "less than 15 minutes"
	case d > oplogRemainingCeiling:
		return "more than 72 hours"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	case d < 2*time.Hour:
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", int(d/time.Hour))
}

// readOplogOldest reads the ts of the source's oldest oplog entry: the first in natural order,
// which a capped collection gives without a scan. ok is false where there is none to read (a
// mongos, no access to local).
func (n *node) readOplogOldest(ctx context.Context, source *mongo.Client) (primitive.Timestamp, bool) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	raw, err := source.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}}).SetProjection(bson.D{{Key: "ts", Value: 1}})).Raw()
	if err != nil {
		n.log.Debug("cannot read the source's oldest oplog entry for estimatedOplogTimeRemaining", zap.Error(err))
		return primitive.Timestamp{}, false
	}
	t, i, ok := raw.Lookup("ts").TimestampOK()
	return primitive.Timestamp{T: t, I: i}, ok
}

// readSpace reads the file-system figures of the destination's metadata database, where the spool
// grows; ok is false when the server does not give them.
func (n *node) readSpace(ctx context.Context) (spool.Space, bool) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	s, ok, err := spool.ReadSpace(ctx, n.meta.Collection(metadata.CollSpool).Database())
	if err != nil {
		n.log.Debug("cannot read the destination's free space", zap.Error(err))
		return spool.Space{}, false
	}
	return s, ok
}

// captureFailure is the warning of a failing capture: one that stopped for good (the sync must
// start again, which nothing else would say before the copy ends), or one that keeps failing.
func captureFailure(c spool.Capture) string {
	switch {
	case c.Terminal != "":
		return "the capture of change events stopped for good: " + c.Terminal + "; the sync cannot finish: start a new sync (with a larger oplog)"
	case c.Error != "" && !c.Done:
		return "the capture of change events is failing (retrying): " + c.Error
	}
	return ""
}
