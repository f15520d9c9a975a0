package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/web"
)

// TestReversibleCommitAndReverse runs the whole lifecycle that only real MongoDB 6.0+ can: a
// reversible sync with write blocking on both sides, a commit that blocks the source and restores
// the unique and TTL index settings with collMod, writes on the destination after the cut-over, a
// reverse that applies them to the old source, and a second commit back.
//
// A reversible sync syncs whole clusters, so this test needs the clusters to itself: it runs before
// the parallel tests (it is not parallel) and skips, saying so, when the destination holds other user
// data. Write blocking binds users without the bypassWriteBlockingMode privilege; on clusters without
// access control every client bypasses it, so the test checks fleetsync's record of the block rather
// than a refused write.
func TestReversibleCommitAndReverse(t *testing.T) {
	source, destination := clusters(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if existing, err := catalog.ListCollections(ctx, destination, namespace.Filter{}); err != nil || len(existing) > 0 {
		t.Skipf("the reversible lifecycle test needs an empty destination (a reversible sync copies whole clusters); it has %d collection(s) (%v)", len(existing), err)
	}
	t.Cleanup(func() {
		// Never leave the shared clusters blocked, whatever happened.
		for _, c := range []*mongo.Client{source, destination} {
			_ = coordinator.SetUserWriteBlocking(context.Background(), c, false)
		}
	})
	db := scratchDB(t, source, destination)
	metaDB := db + "_meta"
	t.Cleanup(func() { _ = destination.Database(metaDB).Drop(context.Background()) })
	src := source.Database(db)
	seedCollection(t, src, "people", 0, 500, func(i int) bson.D {
		return bson.D{{Key: "email", Value: fmt.Sprintf("p%d@example.com", i)}, {Key: "seen", Value: time.Now()}}
	})
	_, err := src.Collection("people").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)},
		{Keys: bson.D{{Key: "seen", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(86400 * 365 * 50)},
	})
	must(t, err)

	api := startNodes(t, ctx, db, metaDB, "")
	post := func(call, body string) {
		t.Helper()
		resp, err := http.Post(api+"/"+call, "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", call, resp, err)
		}
		resp.Body.Close()
	}
	post("start", `{"source": "cluster0", "destination": "cluster1", "reversible": true, "enableUserWriteBlocking": "sourceAndDestination"}`)
	waitProgress(t, ctx, api, "canCommit", func(p web.Progress) bool { return p.CanCommit })
	post("commit", "{ }")
	p := waitProgress(t, ctx, api, "COMMITTED", func(p web.Progress) bool {
		if p.Fleet.Commit != nil && p.Fleet.Commit.Failure != "" {
			t.Fatalf("commit failed: %s", p.Fleet.Commit.Failure)
		}
		return p.State == metadata.StateCommitted
	})
	c := p.Fleet.Commit
	if !p.CanWrite || !c.SourceBlocked || len(c.Restored) != 2 || !strings.Contains(strings.Join(c.Restored, " "), "(collMod)") {
		t.Fatalf("after commit: canWrite %v, commit %+v; want the source blocked and both index settings restored by collMod", p.CanWrite, c)
	}
	if p.Verification == nil || p.Verification.Result != metadata.VerificationPassed {
		t.Fatalf("verification %+v", p.Verification)
	}
	t.Logf("commit pause %.2f s, restored %v", c.PauseSeconds, c.Restored)

	// The application now writes to the destination.
	dst := destination.Database(db)
	seedCollection(t, dst, "people", 10000, 50, func(i int) bson.D { return bson.D{{Key: "email", Value: fmt.Sprintf("new%d@example.com", i)}} })
	_, err = dst.Collection("people").UpdateOne(ctx, bson.D{{Key: "_id", Value: int64(3)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "moved", Value: true}}}})
	must(t, err)
	post("reverse", "{ }")
	p = waitProgress(t, ctx, api, "RUNNING in reverse, caught up", func(p web.Progress) bool {
		a := p.Fleet.Applier
		return p.State == metadata.StateRunning && p.Fleet.Reversed && a != nil && a.AppliedThrough != nil && a.SourceLatest != nil &&
			!a.AppliedThrough.Less(*a.SourceLatest)
	})
	if !strings.HasPrefix(p.DirectionMapping.Source, "cluster1") {
		t.Errorf("directionMapping after reverse: %+v", p.DirectionMapping)
	}
	report, err := verify.Run(ctx, destination, source, verify.Options{MetadataDB: metaDB,
		Include: []namespace.Namespace{{DB: db, Coll: "people"}}})
	must(t, err)
	if !report.Equal() {
		t.Fatalf("after the reverse the old source differs: %+v", report.Namespaces)
	}
	post("commit", "{ }")
	waitProgress(t, ctx, api, "COMMITTED again", func(p web.Progress) bool { return p.State == metadata.StateCommitted })
}
