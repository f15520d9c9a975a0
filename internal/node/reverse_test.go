package node

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// Timing of the reverse story below.
const (
	reverseLeaseTTL   = 2 * time.Second         // short, so a lost applier lease is taken again quickly
	reverseStatePoll  = 2 * time.Millisecond    // how closely the test follows the state: "right at" COMMITTED
	reverseWriteFor   = 1500 * time.Millisecond // how long each side is written to
	reverseSyncBudget = 3 * time.Minute
)

// Issue 12, "done when": a fleet of two nodes commits a reversible sync; the test calls /reverse the
// moment the state is COMMITTED and the application starts writing to cluster1 at that same moment
// (canWrite), while the old direction's applier may still be running. The reverse applies those
// writes to cluster0, and after a second commit (cutting back over) cluster0 and cluster1 are equal.
//
// The sandbox has no write blocking, so the sync runs without it (the node's preflight requires it
// for a reversible sync on real clusters, and refuses it here), and the sync document is set as
// /start and the copy would leave it.
func TestReverseRightAtCommittedWhileCluster1IsWritten(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), reverseSyncBudget)
	defer cancel()
	uri0, uri1 := sandboxtest.Server(t, true), sandboxtest.Server(t, true)
	c0, c1 := sandboxtest.Connect(t, uri0), sandboxtest.Connect(t, uri1)
	// What a finished copy leaves: the same documents on both sides.
	for _, client := range []*mongo.Client{c0, c1} {
		var docs []any
		for i := range 100 {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: 0}})
		}
		if _, err := client.Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	id0, err := Identity("cluster0", uri0)
	if err != nil {
		t.Fatal(err)
	}
	id1, err := Identity("cluster1", uri1)
	if err != nil {
		t.Fatal(err)
	}
	meta := metadata.Open(c1, namespace.DefaultMetadataDB, "default")
	if _, err := meta.Register(ctx, id0, id1); err != nil {
		t.Fatal(err)
	}
	startAt, err := clusterclock.Now(ctx, c0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}}, bson.D{{Key: "$set", Value: bson.D{
		{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseApply},
		{Key: "startAtOperationTime", Value: startAt},
		{Key: "options", Value: metadata.Options{Reversible: true, WriteBlocking: metadata.WriteBlockingNone, Verification: true,
			BuildIndexes: metadata.BuildIndexesAfterCopy}},
	}}}); err != nil {
		t.Fatal(err)
	}

	runCtx, stopNodes := context.WithCancel(context.Background())
	var nodes sync.WaitGroup
	for _, name := range []string{"n1", "n2"} {
		nodes.Add(1)
		go func() {
			defer nodes.Done()
			if err := Run(runCtx, Config{Cluster0: uri0, Cluster1: uri1, SyncID: "default", Name: name, Bind: "127.0.0.1",
				Workers: 1, Sandbox: true, ChangeSource: applier.ModeOplog, LeaseTTL: reverseLeaseTTL,
				Log: zaptest.NewLogger(t).Named(name)}, nil); err != nil {
				t.Errorf("node %s: %v", name, err)
			}
		}()
	}
	t.Cleanup(func() { stopNodes(); nodes.Wait() })

	// Forward: the application writes to cluster0, then stops, and the sync commits.
	written := writeFor(t, c0, "before", reverseWriteFor)
	if err := meta.RequestCommit(ctx); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, meta, metadata.StateCommitted)

	// Right at COMMITTED: /reverse, and the application writes to cluster1.
	var writes sync.WaitGroup
	writes.Add(1)
	go func() { defer writes.Done(); written += writeFor(t, c1, "after", reverseWriteFor) }()
	if err := meta.RequestReverse(ctx); err != nil {
		t.Fatal(err)
	}
	s := waitState(t, ctx, meta, metadata.StateRunning)
	if !s.Reversed {
		t.Fatalf("after the reverse the sync is %+v, want reversed", s)
	}
	writes.Wait()

	// Cut back over: the reversed sync's commit, once cluster1's writes are applied to cluster0.
	if err := meta.RequestCommit(ctx); err != nil {
		t.Fatal(err)
	}
	s = waitState(t, ctx, meta, metadata.StateCommitted)
	t.Logf("%d writes; second commit at cluster1's %v", written, s.Commit.Point)
	report, err := verify.Run(ctx, c1, c0, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !report.Equal() {
		t.Fatalf("after the reverse and the second commit, cluster0 differs from cluster1: %+v", report.Namespaces)
	}
}

// waitState follows the sync closely until it is in state; a commit that fails says why.
func waitState(t *testing.T, ctx context.Context, meta *metadata.DB, state string) metadata.Sync {
	t.Helper()
	for {
		s, err := meta.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == state {
			return s
		}
		if s.Commit != nil && s.Commit.Step == metadata.CommitStepFailed {
			t.Fatalf("the commit failed: %s", s.Commit.Failure)
		}
		if ctx.Err() != nil {
			t.Fatalf("gave up waiting for %s; the sync is %+v", state, s)
		}
		time.Sleep(reverseStatePoll)
	}
}

// writeFor inserts, updates and deletes documents of shop.orders on client for d, as an
// application does, and returns how many writes it made. Inserted _ids carry prefix, so the two
// sides' writers never collide.
func writeFor(t *testing.T, client *mongo.Client, prefix string, d time.Duration) int {
	ctx := context.Background()
	orders := client.Database("shop").Collection("orders")
	n := 0
	end := time.Now().Add(d)
	for i := 0; time.Now().Before(end); i++ {
		var err error
		switch i % 4 {
		case 0, 1:
			_, err = orders.InsertOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%s-%d", prefix, i)}, {Key: "v", Value: i}})
		case 2:
			_, err = orders.UpdateOne(ctx, bson.D{{Key: "_id", Value: i % 100}}, bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: prefix}}}})
		case 3:
			_, err = orders.DeleteOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("%s-%d", prefix, i-3)}})
		}
		if err != nil {
			t.Errorf("writing to %s: %v", prefix, err)
			return n
		}
		n++
	}
	return n
}
