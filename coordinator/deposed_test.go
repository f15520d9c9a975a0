package coordinator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
	"github.com/fleetsync/fleetsync/partition"
)

// deposedRunFor bounds a deposed coordinator's run: it must give up at once, well within this.
const deposedRunFor = 3 * time.Second

// How the old holder lost its lease.
const (
	takenOver = "taken over" // it expired and a second holder ("new") took it at epoch+1
	expired   = "expired"    // it expired; no one has taken it yet
	frozen    = "frozen"     // the process froze past its own validity; the server still has it live
)

// deposedRig is a sync whose coordinator lease a first holder ("old") lost, as mode says. The sync
// document is set as the old holder last read it.
type deposedRig struct {
	src, dst *mongo.Client // dst's client records every command sent through it
	sent     *sandboxtest.Commands
	meta     *metadata.DB
	parts    *partition.Store
	old      lease.Lease
	kept     *lease.Kept // the old holder's Keeper, in mode frozen
}

func newDeposedRig(t *testing.T, mode string, set bson.D) *deposedRig {
	t.Helper()
	ctx := context.Background()
	r := &deposedRig{sent: sandboxtest.NewCommands()}
	r.src = sandboxtest.Connect(t, sandboxtest.Server(t, true))
	dstURI := sandboxtest.Server(t, true)
	r.dst = sandboxtest.ConnectWith(t, dstURI, mongoconn.Options{Monitor: r.sent.Monitor()})
	var docs []any
	for i := range 50 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "a", Value: i}})
	}
	if _, err := r.src.Database("shop").Collection("orders").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	r.meta = metadata.Open(r.dst, namespace.DefaultMetadataDB, "default")
	register(t, ctx, r.meta)
	r.parts = partition.NewStore(r.meta.Collection(metadata.CollPartitions), "default")
	store := lease.NewStore(r.meta.Syncs())
	oldTTL := 200 * time.Millisecond
	if mode == frozen {
		oldTTL = time.Minute
	}
	var err error
	if r.old, err = store.Acquire(ctx, "default", "old", oldTTL); err != nil {
		t.Fatal(err)
	}
	switch mode {
	case frozen:
		// A Keeper that no longer renews: its validity on this node's clock is over, as for a
		// process that wakes from a freeze before its Keeper has run, while the server's lease
		// is still live (a successor's lease could not have begun yet).
		r.kept = lease.Keep(ctx, store, r.old)
		r.kept.Stop()
	default:
		time.Sleep(2 * oldTTL) // the old holder is frozen; its lease expires
	}
	if mode == takenOver {
		newer, err := store.Acquire(ctx, "default", "new", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if newer.Epoch != r.old.Epoch+1 {
			t.Fatalf("the takeover is at epoch %d, want %d", newer.Epoch, r.old.Epoch+1)
		}
	}
	if _, err := r.meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// runDeposed runs the old holder's coordinator as a node woken up from its freeze would, and wants
// it to stop as deposed.
func (r *deposedRig) runDeposed(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deposedRunFor)
	defer cancel()
	err := coordinator.Run(ctx, coordinator.Config{Source: r.src, Destination: r.dst, Meta: r.meta, Partitions: r.parts,
		Lease: r.old, Kept: r.kept, PollInterval: 20 * time.Millisecond, Log: zaptest.NewLogger(t)})
	if !errors.Is(err, metadata.ErrDeposed) {
		t.Errorf("the deposed coordinator's run ended with %v after up to %s, want ErrDeposed", err, deposedRunFor)
	}
}

// snapshot is every document of the metadata collection coll, and the destination's user databases.
func (r *deposedRig) snapshot(t *testing.T, coll string) []bson.Raw {
	t.Helper()
	ctx := context.Background()
	cur, err := r.meta.Collection(coll).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	if err := cur.All(ctx, &out); err != nil {
		t.Fatal(err)
	}
	names, err := r.dst.ListDatabaseNames(ctx, bson.D{{Key: "name", Value: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		colls, _ := r.dst.Database(n).ListCollectionNames(ctx, bson.D{})
		for _, c := range colls {
			out = append(out, bson.Raw(mustMarshal(t, bson.D{{Key: "destinationCollection", Value: n + "." + c}})))
		}
	}
	return out
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameDocs(a, b []bson.Raw) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// Issue 12, requirement 4. A coordinator frozen and replaced wakes up and carries on with the step it
// was in: it must change nothing, since only sync-document updates carry its fence by themselves.
// "taken over": the sync document names the new holder, which the coordinator reads before each
// step. "expired": no one has taken over yet, so the sync document still names the frozen holder,
// and the server's answer right before each side effect is what stops it. "frozen": the server
// still has the lease live, and the lease's validity on the node's own clock stops it.
func TestDeposedCoordinatorChangesNothing(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{takenOver, expired, frozen} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			deposedCoordinatorChangesNothing(t, mode)
		})
	}
}

func deposedCoordinatorChangesNothing(t *testing.T, mode string) {
	ctx := context.Background()

	t.Run("catalog: partitions with checkpoints, catalog entries, destination collections", func(t *testing.T) {
		t.Parallel()
		r := newDeposedRig(t, mode, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseCatalog},
			{Key: "startAtOperationTime", Value: primitive.Timestamp{T: 1, I: 1}}, {Key: "options", Value: metadata.Options{}}})
		// The new coordinator's work: shop.orders cataloged, and its partitions being copied.
		if err := r.meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("default", "shop.orders"),
			Sync: "default", DB: "shop", Coll: "orders", Partitions: 1}); err != nil {
			t.Fatal(err)
		}
		if err := r.parts.Replace(ctx, "shop.orders", []partition.Range{{Whole: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.meta.Collection(metadata.CollPartitions).UpdateOne(ctx, bson.D{{Key: "_id", Value: partition.ID("default", "shop.orders", 0)}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "lastId", Value: 24}, {Key: "docsCopied", Value: int64(25)}}}}); err != nil {
			t.Fatal(err)
		}
		beforeParts, beforeCatalog := r.snapshot(t, metadata.CollPartitions), r.snapshot(t, metadata.CollCatalog)
		r.runDeposed(t)
		if after := r.snapshot(t, metadata.CollPartitions); !sameDocs(beforeParts, after) {
			t.Errorf("the deposed coordinator changed the partitions:\nbefore %v\nafter  %v", beforeParts, after)
		}
		if after := r.snapshot(t, metadata.CollCatalog); !sameDocs(beforeCatalog, after) {
			t.Errorf("the deposed coordinator changed the catalog or the destination:\nbefore %v\nafter  %v", beforeCatalog, after)
		}
	})

	t.Run("indexes: no index built", func(t *testing.T) {
		t.Parallel()
		r := newDeposedRig(t, mode, bson.D{{Key: "state", Value: metadata.StateRunning}, {Key: "phase", Value: metadata.PhaseIndexes},
			{Key: "options", Value: metadata.Options{BuildIndexes: metadata.BuildIndexesAfterCopy}}})
		spec := mustMarshal(t, bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "name", Value: "a_1"}})
		if err := r.meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("default", "shop.orders"),
			Sync: "default", DB: "shop", Coll: "orders", Indexes: []bson.Raw{spec}, Partitioned: true}); err != nil {
			t.Fatal(err)
		}
		if err := r.dst.Database("shop").CreateCollection(ctx, "orders"); err != nil {
			t.Fatal(err)
		}
		r.runDeposed(t)
		if got := r.sent.Sent("createIndexes", "shop", ""); len(got) > 0 {
			t.Errorf("the deposed coordinator built indexes: %v", got[0].Body)
		}
	})

	t.Run("commit: the destination's write block stays", func(t *testing.T) {
		t.Parallel()
		r := newDeposedRig(t, mode, bson.D{{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
			{Key: "options", Value: metadata.Options{WriteBlocking: metadata.WriteBlockingDestinationOnly, Reversible: true}},
			{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepUnblock, Point: primitive.Timestamp{T: 1, I: 1}}}})
		r.runDeposed(t)
		if got := r.sent.Sent("setUserWriteBlockMode", "", ""); len(got) > 0 {
			t.Errorf("the deposed coordinator sent %v", got[0].Body)
		}
	})

	t.Run("commit: no index is dropped, built or changed by the restore", func(t *testing.T) {
		t.Parallel()
		r := newDeposedRig(t, mode, bson.D{{Key: "state", Value: metadata.StateCommitting}, {Key: "phase", Value: metadata.PhaseApply},
			{Key: "options", Value: metadata.Options{}},
			{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepRestore, Point: primitive.Timestamp{T: 1, I: 1}}}})
		// shop.orders' unique index a_1, built non-unique during the sync and waiting for the commit.
		unique := mustMarshal(t, bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "a", Value: 1}}}, {Key: "name", Value: "a_1"}, {Key: "unique", Value: true}})
		if err := r.meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("default", "shop.orders"),
			Sync: "default", DB: "shop", Coll: "orders", Indexes: []bson.Raw{unique}, Partitioned: true,
			Deferred: []metadata.DeferredIndexChange{{Index: "a_1", Unique: true}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.dst.Database("shop").Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetName("a_1")}); err != nil {
			t.Fatal(err)
		}
		before, sentBefore := r.snapshot(t, metadata.CollCatalog), len(r.sent.Sent("", "shop", ""))
		r.runDeposed(t)
		for _, cmd := range r.sent.Sent("", "shop", "")[sentBefore:] {
			if cmd.Name == "dropIndexes" || cmd.Name == "createIndexes" || cmd.Name == "collMod" {
				t.Errorf("the deposed coordinator sent %v", cmd.Body)
			}
		}
		if after := r.snapshot(t, metadata.CollCatalog); !sameDocs(before, after) {
			t.Errorf("the deposed coordinator changed the catalog:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("reverse: the applier's checkpoint stays", func(t *testing.T) {
		t.Parallel()
		r := newDeposedRig(t, mode, bson.D{{Key: "state", Value: metadata.StateReversing}, {Key: "phase", Value: metadata.PhaseApply},
			{Key: "options", Value: metadata.Options{Reversible: true}},
			{Key: "commit", Value: metadata.Commit{Step: metadata.CommitStepFinished, DestinationPoint: primitive.Timestamp{T: 5, I: 1}}}})
		// The new coordinator already reversed, and the reversed sync's applier has moved on.
		if _, err := lease.NewStore(r.meta.Collection(metadata.CollCheckpoints)).Acquire(ctx, "default", "app", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := r.meta.Collection(metadata.CollCheckpoints).UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "position", Value: applier.Position{TS: primitive.Timestamp{T: 9, I: 1}}}}}}); err != nil {
			t.Fatal(err)
		}
		before := r.snapshot(t, metadata.CollCheckpoints)
		r.runDeposed(t)
		if after := r.snapshot(t, metadata.CollCheckpoints); !sameDocs(before, after) {
			t.Errorf("the deposed coordinator changed the applier's checkpoint:\nbefore %v\nafter  %v", before, after)
		}
	})
}

// Partition Replace, the catalog's re-split of a collection, never deletes partitions that hold a
// checkpoint: whoever calls it, copied work is not thrown away.
func TestReplaceKeepsCheckpointedPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := metadata.Open(sandboxtest.Connect(t, sandboxtest.Server(t, false)), namespace.DefaultMetadataDB, "default")
	parts := partition.NewStore(meta.Collection(metadata.CollPartitions), "default")
	if err := parts.Replace(ctx, "shop.orders", []partition.Range{{Whole: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := meta.Collection(metadata.CollPartitions).UpdateOne(ctx, bson.D{{Key: "_id", Value: partition.ID("default", "shop.orders", 0)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastId", Value: 24}, {Key: "docsCopied", Value: int64(25)}}}}); err != nil {
		t.Fatal(err)
	}
	// An unclaimed sibling without copied work, of the same collection: a refusal must not delete it
	// either, or its range would never be copied.
	if _, err := meta.Collection(metadata.CollPartitions).InsertOne(ctx, partition.Partition{ID: partition.ID("default", "shop.orders", 1),
		Sync: "default", NS: "shop.orders", Seq: 1, Range: partition.Range{Rank: 10, Min: rawInt(100)}}); err != nil {
		t.Fatal(err)
	}
	err := parts.Replace(ctx, "shop.orders", []partition.Range{{Rank: 10, Min: rawInt(1)}, {Rank: 10, Max: rawInt(1)}})
	if err == nil {
		t.Error("Replace of a collection whose partition has a checkpoint succeeded; want a refusal")
	}
	all, aerr := parts.All(ctx)
	if aerr != nil {
		t.Fatal(aerr)
	}
	if len(all) != 2 || all[0].DocsCopied != 25 || !all[0].Range.Whole || all[1].Seq != 1 {
		t.Fatalf("after Replace (%v) the partitions are %+v; want both, unchanged", err, all)
	}
}
