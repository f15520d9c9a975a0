package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/loadgen"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/node"
	"github.com/fleetsync/fleetsync/internal/spool"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/web"
)

// Change-event application against real clusters: the change stream (or the oplog) of a real
// replica set, with the DDL events only MongoDB sends (create with a validator, createIndexes,
// rename, drop, collMod of a TTL), must bring the destination to where verify reports it equal.
const (
	ceaLoadRate = 300 // writes per second from internal/loadgen
	// ceaLoadAfterCopy is how long the load goes on once the copy is done: its writes, and the DDL
	// made meanwhile, reach the destination as live change events.
	ceaLoadAfterCopy = 4 * time.Second
	ceaCatchUp       = 3 * time.Minute
	ceaTimeout       = 8 * time.Minute
	// TTLs of 50 and 40 years, in seconds: long enough that no test document expires.
	ceaTTLBefore = int64(86400 * 365 * 50)
	ceaTTLAfter  = int64(86400 * 365 * 40)
)

// On a real replica set the default source of change events is the cluster-wide change stream.
func TestChangeEventsFromAChangeStreamOnRealClusters(t *testing.T) {
	changeEventsScenario(t, applier.ModeAuto, applier.SourceChangeStream)
}

// --change-source oplog on a replica set tails its oplog instead, with the same result.
func TestChangeEventsFromTheOplogOnRealClusters(t *testing.T) {
	changeEventsScenario(t, applier.ModeOplog, applier.SourceOplog)
}

// changeEventsScenario seeds a source database, starts two nodes with the given --change-source,
// writes to the source with internal/loadgen from before /start until a few seconds after the
// copy, changes the schema meanwhile, waits until the applier has applied everything (lag 0), and
// verifies the destination. wantSource is the event source the applier must have picked.
func changeEventsScenario(t *testing.T, mode, wantSource string) {
	s := newScratchSync(t)
	source, destination, db, metaDB, src := s.source, s.destination, s.db, s.metaDB, s.src
	ctx, cancel := context.WithTimeout(context.Background(), ceaTimeout)
	defer cancel()

	// orders and people take the load; events is renamed and scratch dropped while events are
	// applied; sessions has a TTL index whose expireAfterSeconds is changed with collMod.
	seedCollection(t, src, "orders", 0, 3000, func(i int) bson.D {
		return bson.D{{Key: "customerId", Value: i % 97}, {Key: "status", Value: "new"},
			{Key: "items", Value: bson.A{bson.D{{Key: "sku", Value: fmt.Sprintf("S-%d", i%13)}, {Key: "qty", Value: 1 + i%4}}}},
			{Key: "pad", Value: strings.Repeat("o", 300)}}
	})
	seedCollection(t, src, "people", 0, 2000, func(i int) bson.D {
		return bson.D{{Key: "name", Value: fmt.Sprintf("Person %d", i)}, {Key: "email", Value: fmt.Sprintf("p%d@example.com", i)}}
	})
	seedCollection(t, src, "events", 0, 500, func(i int) bson.D { return bson.D{{Key: "kind", Value: "click"}, {Key: "n", Value: i}} })
	seedCollection(t, src, "scratch", 0, 100, func(i int) bson.D { return bson.D{{Key: "tmp", Value: true}} })
	seedCollection(t, src, "sessions", 0, 300, func(i int) bson.D {
		return bson.D{{Key: "user", Value: i}, {Key: "lastSeen", Value: time.Now().UTC()}}
	})
	_, err := src.Collection("people").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "email", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	_, err = src.Collection("sessions").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "lastSeen", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(int32(ceaTTLBefore))})
	must(t, err)

	// The load starts before the sync, so its writes fall during the copy as well as after it.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan loadResult, 1)
	go func() {
		stats, err := loadgen.Run(loadCtx, source, loadgen.Options{Rate: ceaLoadRate, Seed: 11,
			Namespaces: []namespace.Namespace{{DB: db, Coll: "orders"}, {DB: db, Coll: "people"}}})
		loadDone <- loadResult{stats, err}
	}()

	api := startNodes(t, ctx, db, metaDB, mode)
	resp, err := http.Post(api+"/start", "application/json", strings.NewReader(startBody(db)))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("start: %v %v", resp, err)
	}
	resp.Body.Close()
	p := waitProgress(t, ctx, api, "the copy to complete and an applier to start", func(p web.Progress) bool {
		return p.Fleet.Phase == metadata.PhaseApply && p.Fleet.Applier != nil && p.Fleet.Applier.Source != ""
	})
	if got := p.Fleet.Applier.Source; got != wantSource {
		t.Fatalf("--change-source %s on a replica set: the applier reads %q, want %q", mode, got, wantSource)
	}

	// Schema changes while the load goes on, each of a kind the applier turns into a DDL event.
	must(t, src.CreateCollection(ctx, "audit", options.CreateCollection().SetValidator(bson.D{{Key: "$jsonSchema", Value: bson.D{
		{Key: "bsonType", Value: "object"}, {Key: "required", Value: bson.A{"action", "ref"}}}}})))
	_, err = src.Collection("audit").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "ref", Value: 1}}, Options: options.Index().SetUnique(true)})
	must(t, err)
	seedCollection(t, src, "audit", 0, 50, func(i int) bson.D { return bson.D{{Key: "action", Value: "login"}, {Key: "ref", Value: i}} })
	must(t, source.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: db + ".events"}, {Key: "to", Value: db + ".events_archived"}}).Err())
	seedCollection(t, src, "events_archived", 1000, 20, func(i int) bson.D { return bson.D{{Key: "kind", Value: "after rename"}} })
	must(t, src.Collection("scratch").Drop(ctx))
	must(t, src.RunCommand(ctx, bson.D{{Key: "collMod", Value: "sessions"},
		{Key: "index", Value: bson.D{{Key: "name", Value: "lastSeen_1"}, {Key: "expireAfterSeconds", Value: ceaTTLAfter}}}}).Err())

	time.Sleep(ceaLoadAfterCopy)
	stopLoad()
	load := <-loadDone
	if load.err != nil || load.stats.ErrorCount() != 0 || load.stats.Ops() == 0 {
		t.Fatalf("load: %d writes, %d errors %v, %v", load.stats.Ops(), load.stats.ErrorCount(), load.stats.FirstErrors, load.err)
	}
	t.Logf("load: %d writes at %.0f/s", load.stats.Ops(), load.stats.Rate())

	p = waitProgress(t, ctx, api, "lag 0", func(p web.Progress) bool {
		a := p.Fleet.Applier
		return a != nil && a.AppliedThrough != nil && a.SourceLatest != nil && !a.AppliedThrough.Less(*a.SourceLatest) &&
			p.LagTimeSeconds != nil && *p.LagTimeSeconds == 0
	})
	a := p.Fleet.Applier
	t.Logf("caught up: %d events applied (%d CRUD, %d DDL, %d refreshed) from the %s by %s",
		a.EventsApplied, a.CRUDApplied, a.DDLApplied, a.Refreshed, a.Source, a.Node)
	if a.Source != wantSource || a.Error != "" || a.DDLApplied < 5 || a.CRUDApplied == 0 {
		t.Errorf("applier %+v: want source %s, no error, CRUD events and at least 5 DDL events (create, createIndexes, rename, drop, collMod)",
			a, wantSource)
	}
	// The load wrote during the copy: those events went through the spool, captured from the
	// same source, before the applier switched to the live source (issue 13).
	meta := metadata.Open(destination, metaDB, db)
	ck, _, err := applier.ReadCheckpoint(ctx, meta)
	must(t, err)
	capture, _, err := spool.ReadCapture(ctx, meta)
	must(t, err)
	if !ck.Live || ck.FromSpool == 0 || capture.Source != wantSource || !capture.Done || capture.Captured < ck.FromSpool {
		t.Errorf("capture %+v, applier live %v from %v with %d spooled records applied: want the %s captured, applied from the spool, then live",
			capture, ck.Live, ck.LiveFrom, ck.FromSpool, wantSource)
	}
	for _, w := range p.Warnings {
		// A real destination supports every DDL event of this scenario.
		if strings.Contains(w, "not applied") || strings.Contains(w, "skipped") {
			t.Errorf("warning: %s", w)
		}
	}

	names, err := destination.Database(db).ListCollectionNames(ctx, bson.D{})
	must(t, err)
	for _, gone := range []string{"events", "scratch"} {
		for _, n := range names {
			if n == gone {
				t.Errorf("%s.%s is still on the destination (collections %v)", db, gone, names)
			}
		}
	}
	var include []namespace.Namespace
	for _, coll := range []string{"orders", "people", "events_archived", "sessions", "audit"} {
		include = append(include, namespace.Namespace{DB: db, Coll: coll})
	}
	report, err := verify.Run(ctx, source, destination, verify.Options{MetadataDB: metaDB, Include: include})
	must(t, err)
	pending := map[string][]string{}
	for _, n := range report.Namespaces {
		pending[n.NS.Coll] = n.PendingCommit
		if !n.Equal() {
			t.Errorf("%s differs: collection %q, options %v, indexes %v, missing %d, extra %d, different %d, samples %+v",
				n.NS, n.Collection, n.OptionDiffs, n.IndexDiffs, n.Missing, n.Extra, n.Different, n.Samples)
		}
	}
	// The unique index created during the sync, and the TTL changed during it, are left out on the
	// destination and accepted through the catalog's deferred records.
	for coll, want := range map[string]string{
		"audit":    "index ref_1: unique restored at commit",
		"people":   "index email_1: unique restored at commit",
		"sessions": fmt.Sprintf("index lastSeen_1: expireAfterSeconds %d restored at commit", ceaTTLAfter),
	} {
		if strings.Join(pending[coll], "; ") != want {
			t.Errorf("%s: pending commit %q, want %q", coll, pending[coll], want)
		}
	}
}

type loadResult struct {
	stats loadgen.Stats
	err   error
}

// seedCollection inserts n documents with _ids first, first+1, ... (int64) and the fields doc(i)
// gives.
func seedCollection(t *testing.T, db *mongo.Database, coll string, first, n int, doc func(i int) bson.D) {
	t.Helper()
	docs := make([]any, n)
	for i := range n {
		docs[i] = append(bson.D{{Key: "_id", Value: int64(first + i)}}, doc(i)...)
	}
	if _, err := db.Collection(coll).InsertMany(context.Background(), docs); err != nil {
		t.Fatalf("seeding %s.%s: %v", db.Name(), coll, err)
	}
}

// startNodes runs two in-process nodes of sync db with the given --change-source until the test
// ends, and returns the API of the first.
func startNodes(t *testing.T, ctx context.Context, db, metaDB, changeSource string) string {
	t.Helper()
	port := freePort(t)
	runCtx, stopNodes := context.WithCancel(ctx)
	done := make(chan error, 2)
	for i, name := range []string{"e2e-a", "e2e-b"} {
		p := 0
		if i == 0 {
			p = port
		}
		go func() {
			done <- node.Run(runCtx, node.Config{
				Cluster0: os.Getenv(envSource), Cluster1: os.Getenv(envDestination), SyncID: db, Name: name,
				Bind: "127.0.0.1", Port: p, Workers: 2, MetadataDB: metaDB, LeaseTTL: 5 * time.Second,
				PartitionTargetBytes: 256 << 10, ChangeSource: changeSource, Log: zap.NewNop(),
			}, nil)
		}()
	}
	t.Cleanup(func() {
		stopNodes()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("node stopped with %v", err)
			}
		}
	})
	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1", port)
	waitHTTP(t, api+"/progress")
	return api
}

// waitProgress polls /progress until ok, failing on a sync error or when ceaCatchUp (or ctx) runs
// out.
func waitProgress(t *testing.T, ctx context.Context, api, what string, ok func(web.Progress) bool) web.Progress {
	t.Helper()
	deadline := time.Now().Add(ceaCatchUp)
	for {
		p := getProgress(t, api)
		if p.Fleet.Error != "" {
			t.Fatalf("waiting for %s: sync error: %s", what, p.Fleet.Error)
		}
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: gave up after %s: %+v, applier %+v", what, ceaCatchUp, p, p.Fleet.Applier)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
