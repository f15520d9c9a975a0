package applier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/lease"
)

// terminalWatch is how long the terminal tests watch an applier: a few of the old retries' backoff.
const terminalWatch = 3500 * time.Millisecond

// runAsTheNodeDoes calls Run again whenever it returns an error, as a node's applier loop does,
// until stop is closed, and returns how many times it was called.
func runAsTheNodeDoes(t *testing.T, r *rig, stop <-chan struct{}) (calls int, last error) {
	t.Helper()
	l, err := r.store.Acquire(context.Background(), "t", "n1/x/applier", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(context.Background(), r.store, l)
	defer kept.Stop()
	for !closedChan(stop) {
		calls++
		last = Run(kept.Context(), Config{Source: r.src, Destination: r.dst, Meta: r.meta, Mode: ModeAuto, Stop: stop,
			Log: zaptest.NewLogger(t)}, kept)
		if last == nil {
			break
		}
	}
	return calls, last
}

func closedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// An applier whose resume point has fallen off the source's oplog can never continue: the sync must
// be started again. It says so once, in the checkpoint and so in /progress, and stops, rather than
// reading the oplog and failing again every second for as long as the fleet runs.
func TestOplogRolledOverStopsTheApplierForGood(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.src.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	now, err := clusterclock.Now(ctx, r.src)
	if err != nil {
		t.Fatal(err)
	}
	// The resume point, older than the oldest entry the oplog holds.
	_, err = r.meta.Collection(metadata.CollCheckpoints).UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "source", Value: SourceOplog}, {Key: "position", Value: Position{TS: primitive.Timestamp{T: now.T - 3600, I: 1}}}}}},
		options.Update().SetUpsert(true))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	time.AfterFunc(terminalWatch, func() { close(stop) })
	calls, last := runAsTheNodeDoes(t, r, stop)
	if calls != 1 || last != nil {
		t.Fatalf("in %v the applier was run %d times (last: %v); want one run that stops for good and returns only when told to stop",
			terminalWatch, calls, last)
	}
	ck, _, err := ReadCheckpoint(ctx, r.meta)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ck.Error, ErrOplogRolledOver.Error()) || !strings.Contains(ck.Error, "started again") {
		t.Fatalf("checkpoint error %q: want the rollover and what to do", ck.Error)
	}
	assertTerminal(t, ck)

	// A node that takes the lease over (or this one after a pause) does not try again either.
	stop = make(chan struct{})
	time.AfterFunc(terminalWatch/2, func() { close(stop) })
	if calls, last := runAsTheNodeDoes(t, r, stop); calls != 1 || last != nil {
		t.Fatalf("a later applier was run %d times (last: %v); want it to stay stopped", calls, last)
	}
}

// A collection renamed into the sync's namespaces was never copied: the destination cannot be made
// equal by events any more. The applier stops for good and says what to do.
func TestRenameIntoTheFilterStopsTheApplierForGood(t *testing.T) {
	t.Parallel()
	d := newRealDocs(t)
	d.a.cfg.Filter = namespace.Filter{Include: []namespace.Rule{{Database: "archive"}}}
	_, err := d.a.applyBatch(context.Background(), parseOplog(t, realdocs.OplogRename))
	if !errors.Is(err, ErrRenamedIntoFilter) {
		t.Fatalf("applying a rename into the filter: %v, want ErrRenamedIntoFilter", err)
	}
	stop := make(chan struct{})
	d.a.cfg.Stop = stop
	time.AfterFunc(terminalWatch/2, func() { close(stop) })
	start := time.Now()
	ferr := d.a.fail(context.Background(), err)
	if waited := time.Since(start); waited < terminalWatch/2-100*time.Millisecond || ferr != nil {
		t.Fatalf("fail returned %v after %v; want it to hold the applier until told to stop (%v), then nil", ferr, waited, terminalWatch/2)
	}
	ck, _, rerr := ReadCheckpoint(context.Background(), d.meta)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !strings.Contains(ck.Error, "shop.orders was renamed to archive.orders_2023") || !strings.Contains(ck.Error, "Start a new sync") {
		t.Fatalf("checkpoint error %q: want the rename and what to do", ck.Error)
	}
	assertTerminal(t, ck)
}

// assertTerminal checks that the checkpoint records the failure as terminal, as /progress reads it.
func assertTerminal(t *testing.T, ck Checkpoint) {
	t.Helper()
	if ck.Terminal == "" || ck.Terminal != ck.Error {
		t.Fatalf("checkpoint terminal %q, error %q: want the failure recorded as terminal", ck.Terminal, ck.Error)
	}
}
