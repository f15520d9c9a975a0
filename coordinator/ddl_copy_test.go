package coordinator_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

// Sizes of the DDL table test's source: shop.items is split into about a dozen partitions, copied
// by one worker in small batches, so a DDL made after its first partition is copied meets a
// collection still being copied.
const (
	ddlItems          = 3000
	ddlOthers         = 200
	ddlPartitionBytes = 16 << 10
	ddlBatchDocs      = 100
)

// ddlCase is DDL made on the source at one point of a sync: in the window between the sync's start
// time and its catalog (beforeCatalog), or during the copy, after one partition is copied and
// while shop.items still has partitions to copy (duringCopy).
type ddlCase struct {
	name                      string
	beforeCatalog, duringCopy func(t *testing.T, ctx context.Context, src *mongo.Client)
	// quiet holds the writer while duringCopy runs, for DDL that drops a collection: the sandbox's
	// drops are not atomic against concurrent writes (mongoJavaServerDropsRaceWrites,
	// docs/test-servers.md). Writes go on before and after.
	quiet bool
}

// Issue 13, requirement 3: DDL on the source while a sync copies, under writes; every case ends
// COMMITTED, its commit's verification passed, and a verification afterwards finds the destination
// equal to the source, documents and indexes.
func TestDDLDuringTheCopyEndsCommittedAndEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []ddlCase{
		{name: "rename of a collection still being copied", duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			run(t, ctx, src.Database("admin"), bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.goods"}})
		}},
		{name: "rename onto another collection (dropTarget)", quiet: true, duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			run(t, ctx, src.Database("admin"), bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.others"}, {Key: "dropTarget", Value: true}})
		}},
		{name: "drop and re-create with other documents", quiet: true, duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			items := src.Database("shop").Collection("items")
			if err := items.Drop(ctx); err != nil {
				t.Fatal(err)
			}
			insertRange(t, ctx, items, 500_000, 500_300, "re-created")
		}},
		{name: "create", duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			run(t, ctx, src.Database("shop"), bson.D{{Key: "create", Value: "fresh"}})
			insertRange(t, ctx, src.Database("shop").Collection("fresh"), 0, 300, "fresh")
		}},
		// A collection that appeared during the copy gets a catalog entry (without UUID) from its
		// unique index, which the applier defers to the commit; its rename is not one of a
		// collection copied by name.
		{name: "create with a unique index, then rename", duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			fresh := src.Database("shop").Collection("fresh")
			insertRange(t, ctx, fresh, 0, 300, "fresh")
			if _, err := fresh.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}, Options: options.Index().SetUnique(true)}); err != nil {
				t.Fatal(err)
			}
			run(t, ctx, src.Database("admin"), bson.D{{Key: "renameCollection", Value: "shop.fresh"}, {Key: "to", Value: "shop.fresher"}})
		}},
		{name: "dropDatabase", quiet: true, duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			if err := src.Database("shop").Drop(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "index created and index dropped", duringCopy: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			items := src.Database("shop").Collection("items")
			if _, err := items.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: -1}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := items.Indexes().DropOne(ctx, "sku_1"); err != nil {
				t.Fatal(err)
			}
		}},
		// Between the start time and the catalog: the catalog sees the collection under its new
		// name and copies it there, while the events replayed from the start time still name the
		// old one (writes to it, then the rename).
		{name: "rename between the start time and the catalog", beforeCatalog: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			insertRange(t, ctx, src.Database("shop").Collection("items"), 900_000, 900_010, "before the rename")
			run(t, ctx, src.Database("admin"), bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.goods"}})
		}},
		{name: "rename onto an existing collection between the start time and the catalog", beforeCatalog: func(t *testing.T, ctx context.Context, src *mongo.Client) {
			insertRange(t, ctx, src.Database("shop").Collection("items"), 900_000, 900_010, "before the rename")
			run(t, ctx, src.Database("admin"), bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.others"}, {Key: "dropTarget", Value: true}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			syncWithDDL(t, tc)
		})
	}
}

// A source that reports no collection UUIDs (a MongoDB-compatible server; here the UUIDs are taken
// out of the catalog and the partitions, as such a catalog would have none) is copied by name,
// blind to renames: a rename during the copy then stops change event application for good, with
// an error naming the collection, rather than let the sync commit with the documents the copy
// missed.
func TestRenameOfACollectionCopiedByNameStopsTheSyncLoudly(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := sandboxtest.Pair(t)
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	seedDDLSource(t, ctx, src)
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	if err := meta.Start(ctx, metadata.Options{BuildIndexes: metadata.BuildIndexesAfterCopy, WriteBlocking: metadata.WriteBlockingNone}); err != nil {
		t.Fatal(err)
	}
	parts := startCoordinator(t, ctx, src, dst, meta)
	waitSync(t, ctx, meta, func(s metadata.Sync) bool { return s.Phase == metadata.PhaseCopy })
	for _, coll := range []string{metadata.CollCatalog, metadata.CollPartitions} {
		if _, err := meta.Collection(coll).UpdateMany(ctx, bson.D{}, bson.D{{Key: "$unset", Value: bson.D{{Key: "uuid", Value: ""}}}}); err != nil {
			t.Fatal(err)
		}
	}
	copyWithDDL(t, ctx, src, dst, meta, parts, func(t *testing.T, ctx context.Context, src *mongo.Client) {
		run(t, ctx, src.Database("admin"), bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.goods"}})
	})
	latest, err := clusterclock.Now(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	startApplier(t, ctx, src, dst, meta)
	var ck applier.Checkpoint
	waitFor(t, ctx, "the applier to stop for good, or to apply everything", func() bool {
		ck, _, err = applier.ReadCheckpoint(ctx, meta)
		return err == nil && (ck.Terminal != "" || (ck.Position != nil && !ck.Position.TS.Before(latest)))
	})
	if !strings.Contains(ck.Terminal, "shop.items was renamed to shop.goods") || !strings.Contains(ck.Terminal, "no UUID") {
		t.Errorf("the applier stopped with %q; want it to name shop.items, its rename and the missing UUID", ck.Terminal)
	}
}

// syncWithDDL runs one sync in-process (a coordinator, one worker driven by the test, an applier)
// over a fresh pair of sandbox servers, with tc's DDL and a writer running until the commit.
func syncWithDDL(t *testing.T, tc ddlCase) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := sandboxtest.Pair(t)
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	seedDDLSource(t, ctx, src)
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, meta)
	if err := meta.Start(ctx, metadata.Options{BuildIndexes: metadata.BuildIndexesAfterCopy,
		WriteBlocking: metadata.WriteBlockingNone, Verification: true}); err != nil {
		t.Fatal(err)
	}
	w := startWriter(ctx, src)
	if tc.beforeCatalog != nil {
		// The start time, as the coordinator takes it, with writes and the DDL after it and before
		// the catalog.
		ts, err := clusterclock.Now(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		setSync(t, ctx, meta, bson.D{{Key: "startAtOperationTime", Value: ts}})
		tc.beforeCatalog(t, ctx, src)
	}
	parts := startCoordinator(t, ctx, src, dst, meta)

	startCapture(t, ctx, src, meta)
	duringCopy := tc.duringCopy
	if tc.quiet {
		duringCopy = func(t *testing.T, ctx context.Context, src *mongo.Client) {
			w.hold.Lock()
			defer w.hold.Unlock()
			tc.duringCopy(t, ctx, src)
		}
	}
	copyWithDDL(t, ctx, src, dst, meta, parts, duringCopy)
	startApplier(t, ctx, src, dst, meta)
	if err := w.stop(); err != nil {
		t.Fatalf("the writer: %v", err)
	}
	if err := meta.RequestCommit(ctx); err != nil {
		t.Fatal(err)
	}
	s := waitSync(t, ctx, meta, func(s metadata.Sync) bool {
		return s.State == metadata.StateCommitted || (s.Commit != nil && s.Commit.Failure != "")
	})
	if s.State != metadata.StateCommitted {
		t.Fatalf("the commit failed: %s (verification %+v)", s.Commit.Failure, s.Verification)
	}
	report, err := verify.Run(ctx, src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range report.Namespaces {
		if !n.Equal() {
			t.Errorf("%s differs after the commit: %+v", n.NS, n)
		}
	}
	// The DDL and the writes of the copy reached the destination through the spool.
	ck, _, err := applier.ReadCheckpoint(ctx, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Live || ck.FromSpool == 0 {
		t.Errorf("the applier applied %d records from the spool (live %v); want the copy's events captured and applied from it", ck.FromSpool, ck.Live)
	}
	t.Logf("%d namespaces equal; the writer made %d writes; %d records applied from the spool", len(report.Namespaces), w.writes, ck.FromSpool)
}

// startCoordinator runs a coordinator until ctx ends, and returns the sync's partitions.
func startCoordinator(t *testing.T, ctx context.Context, src, dst *mongo.Client, meta *metadata.DB) *partition.Store {
	t.Helper()
	parts := partition.NewStore(meta.Collection(metadata.CollPartitions), "default")
	coord, err := lease.NewStore(meta.Syncs()).Acquire(ctx, "default", "coord", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = coordinator.Run(ctx, coordinator.Config{Source: src, Destination: dst, Meta: meta, Partitions: parts, Lease: coord,
			PartitionTargetBytes: ddlPartitionBytes, PollInterval: 20 * time.Millisecond, Log: zap.NewNop()})
	}()
	return parts
}

// keepLease takes the sync's lease in the metadata collection coll for owner, kept until the test
// ends.
func keepLease(t *testing.T, ctx context.Context, meta *metadata.DB, coll, owner string) *lease.Kept {
	t.Helper()
	store := lease.NewStore(meta.Collection(coll))
	l, err := store.Acquire(ctx, "default", owner, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	kept := lease.Keep(ctx, store, l)
	t.Cleanup(kept.Stop)
	return kept
}

// startCapture runs the capture, as a node does once the sync has its start time.
func startCapture(t *testing.T, ctx context.Context, src *mongo.Client, meta *metadata.DB) {
	t.Helper()
	s := waitSync(t, ctx, meta, func(s metadata.Sync) bool { return !s.StartAtOperationTime.IsZero() })
	kept := keepLease(t, ctx, meta, metadata.CollCapture, "capture")
	go func() {
		_ = applier.Capture(ctx, applier.CaptureConfig{Source: src, Meta: meta, Filter: s.Options.Filter(namespace.DefaultMetadataDB),
			Mode: applier.ModeOplog, StartAt: s.StartAtOperationTime, Log: zap.NewNop()}, kept)
	}()
}

// seedDDLSource writes shop.items (with index sku_1) and shop.others.
func seedDDLSource(t *testing.T, ctx context.Context, src *mongo.Client) {
	t.Helper()
	shop := src.Database("shop")
	insertRange(t, ctx, shop.Collection("items"), 0, ddlItems, "seed")
	insertRange(t, ctx, shop.Collection("others"), 0, ddlOthers, "seed")
	if _, err := shop.Collection("items").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "sku", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
}

// insertRange inserts documents with _id from to to-1 into coll.
func insertRange(t *testing.T, ctx context.Context, coll *mongo.Collection, from, to int64, tag string) {
	t.Helper()
	docs := make([]any, 0, to-from)
	for i := from; i < to; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: fmt.Sprintf("%s-%d", tag, i%50)}, {Key: "n", Value: i}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, ctx context.Context, db *mongo.Database, cmd bson.D) {
	t.Helper()
	if err := db.RunCommand(ctx, cmd).Err(); err != nil {
		t.Fatalf("%v: %v", cmd, err)
	}
}

// copyWithDDL copies partitions with one worker until the copy phase ends, making the DDL (when
// there is one) once the first partition is copied, while shop.items still has partitions to copy.
func copyWithDDL(t *testing.T, ctx context.Context, src, dst *mongo.Client, meta *metadata.DB, parts *partition.Store,
	ddl func(*testing.T, context.Context, *mongo.Client)) {
	t.Helper()
	w := worker.New(worker.Config{Source: src, Destination: dst, Partitions: parts,
		Owner: "w/x/0", LeaseTTL: time.Minute, BatchDocs: ddlBatchDocs})
	for {
		s, err := meta.Sync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case s.Phase == metadata.PhaseIndexes || s.Phase == metadata.PhaseApply:
			return
		case ctx.Err() != nil:
			t.Fatalf("the copy did not complete; sync %+v", s)
		case s.Phase != metadata.PhaseCopy:
			time.Sleep(20 * time.Millisecond)
			continue
		}
		res, err := w.CopyOne(ctx, nil)
		switch {
		case res == worker.Failed || res == worker.Lost:
			t.Fatalf("copying a partition: %v", err)
		case res == worker.NothingToClaim:
			time.Sleep(20 * time.Millisecond)
		case res == worker.Copied && ddl != nil:
			requireItemsBeingCopied(t, ctx, parts)
			ddl(t, ctx, src)
			ddl = nil
		}
	}
}

// requireItemsBeingCopied fails the test when shop.items has no partition left to copy: the DDL
// would then not be during its copy, and the case would test nothing.
func requireItemsBeingCopied(t *testing.T, ctx context.Context, parts *partition.Store) {
	t.Helper()
	all, err := parts.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, p := range all {
		if p.NS == "shop.items" && !p.Done {
			left++
		}
	}
	if left < 2 {
		t.Fatalf("shop.items has %d partitions left to copy at the DDL; the case needs a collection still being copied", left)
	}
}

// startApplier runs the applier, as a node does once the copy is done.
func startApplier(t *testing.T, ctx context.Context, src, dst *mongo.Client, meta *metadata.DB) {
	t.Helper()
	s := waitSync(t, ctx, meta, func(s metadata.Sync) bool { return s.Phase == metadata.PhaseApply })
	kept := keepLease(t, ctx, meta, metadata.CollCheckpoints, "app")
	go func() {
		_ = applier.Run(ctx, applier.Config{Source: src, Destination: dst, Meta: meta, Filter: s.Options.Filter(namespace.DefaultMetadataDB),
			Mode: applier.ModeOplog, Log: zap.NewNop()}, kept)
	}()
}

// writer writes to shop.items and shop.others until stopped: inserts, updates the sandbox logs as
// sent ($inc, which the applier applies by re-reading the document) and deletes, whatever names
// exist at the time (a write to a renamed or dropped collection creates it again, as on MongoDB).
type writer struct {
	hold     sync.RWMutex // each write holds it for reading; a quiet DDL, for writing
	stopOnce sync.Once
	done     chan struct{}
	result   chan error
	writes   int
}

func startWriter(ctx context.Context, src *mongo.Client) *writer {
	w := &writer{done: make(chan struct{}), result: make(chan error, 1)}
	go func() { w.result <- w.run(ctx, src) }()
	return w
}

func (w *writer) run(ctx context.Context, src *mongo.Client) error {
	rng := rand.New(rand.NewPCG(1, 2))
	colls := []*mongo.Collection{src.Database("shop").Collection("items"), src.Database("shop").Collection("others")}
	next := int64(1_000_000)
	for {
		select {
		case <-w.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		coll := colls[rng.IntN(len(colls))]
		var err error
		w.hold.RLock()
		switch rng.IntN(4) {
		case 0:
			_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: next}, {Key: "sku", Value: "written"}, {Key: "n", Value: next}})
			next++
		case 1, 2:
			_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: rng.Int64N(ddlItems)}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
				options.Update())
		case 3:
			_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: rng.Int64N(ddlItems)}})
		}
		w.hold.RUnlock()
		if err != nil {
			return err
		}
		w.writes++
		time.Sleep(time.Millisecond)
	}
}

// stop ends the writes and says whether any failed.
func (w *writer) stop() error {
	w.stopOnce.Do(func() { close(w.done) })
	return <-w.result
}
