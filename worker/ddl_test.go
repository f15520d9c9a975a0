package worker_test

import (
	"context"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/worker"
)

// ddlRig is shop.items on the source, n documents with _id 0..n-1, cataloged with its UUID and
// split into three partitions, with every command to the source recorded.
type ddlRig struct {
	read     *sandboxtest.Commands
	srcURI   string
	src, dst *mongo.Client
	store    *partition.Store
	uuid     primitive.Binary
}

func newDDLRig(t *testing.T, n int) *ddlRig {
	t.Helper()
	ctx := context.Background()
	c := sandboxtest.Pair(t)
	r := &ddlRig{read: sandboxtest.NewCommands(), srcURI: c.Source}
	r.src = sandboxtest.ConnectWith(t, c.Source, mongoconn.Options{Monitor: r.read.Monitor()})
	r.dst = sandboxtest.Connect(t, c.Destination)
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: int64(i)}, {Key: "n", Value: i}}
	}
	if _, err := r.src.Database("shop").Collection("items").InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	colls, err := catalog.ListCollections(ctx, r.src, namespace.Filter{})
	if err != nil || len(colls) != 1 || len(colls[0].UUID.Data) != 16 {
		t.Fatalf("the catalog lists %+v (%v); want shop.items with its UUID", colls, err)
	}
	r.uuid = colls[0].UUID
	third := int64(n / 3)
	ranges := []partition.Range{
		{Rank: 10, Max: rawInt64(third)},
		{Rank: 10, Min: rawInt64(third), Max: rawInt64(2 * third)},
		{Rank: 10, Min: rawInt64(2 * third)},
	}
	r.store = partition.NewStore(r.dst.Database("fleetsync_internal").Collection("partitions"), "default")
	if err := r.store.ReplaceCollection(ctx, "shop.items", r.uuid, ranges); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *ddlRig) worker(batch int) *worker.Worker {
	return worker.New(worker.Config{Source: r.src, Destination: r.dst, Partitions: r.store, Owner: "n1/x/w0", LeaseTTL: ttl, BatchDocs: batch})
}

// copyAcrossRename copies the first partition, renames shop.items to shop.goods on the source,
// copies the rest, and checks that the destination's shop.items holds all 3000 documents.
func (r *ddlRig) copyAcrossRename(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	w := r.worker(200)
	if res, err := w.CopyOne(ctx, nil); res != worker.Copied {
		t.Fatalf("first partition: %v, %v", res, err)
	}
	if err := r.src.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.goods"}}).Err(); err != nil {
		t.Fatal(err)
	}
	r.copyAll(t, w)
	if got := len(r.destinationIDs(t)); got != 3000 {
		t.Errorf("the destination's shop.items holds %d documents, want all 3000 of the renamed collection", got)
	}
}

// copyAll copies partitions until none is left, failing the test on any result but Copied.
func (r *ddlRig) copyAll(t *testing.T, w *worker.Worker) {
	t.Helper()
	for {
		res, err := w.CopyOne(context.Background(), nil)
		if res == worker.NothingToClaim {
			return
		}
		if res != worker.Copied {
			t.Fatalf("CopyOne: %v, %v", res, err)
		}
	}
}

func (r *ddlRig) destinationIDs(t *testing.T) map[int64]bool {
	t.Helper()
	cur, err := r.dst.Database("shop").Collection("items").Find(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []struct {
		ID int64 `bson:"_id"`
	}
	if err := cur.All(context.Background(), &docs); err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	for _, d := range docs {
		ids[d.ID] = true
	}
	return ids
}

func rawInt64(v int64) bson.RawValue {
	_, b, _ := bson.MarshalValue(v)
	return bson.RawValue{Type: bson.TypeInt64, Value: b}
}

// A collection renamed on the source while its partitions are copied keeps being copied under its
// new name, read by its UUID, into the destination collection of the name it was cataloged with
// (the applier's replay of the rename moves it later). Without the UUID the partitions after the
// rename read the old, missing name and end with nothing: two thirds of the documents lost.
func TestRenamedCollectionKeepsBeingCopiedUnderItsNewName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newDDLRig(t, 3000)
	r.copyAcrossRename(t)
	parts, err := r.store.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	renamed := 0
	for _, p := range parts {
		if !p.Done || p.Attempts != 0 || p.NS != "shop.items" {
			t.Errorf("partition %s: done %v, attempts %d, ns %s; want done with no failed attempt, under the cataloged name", p.ID, p.Done, p.Attempts, p.NS)
		}
		if p.SourceNS == "shop.goods" {
			renamed++
		}
	}
	// The first partition to meet the rename records the new name on those not yet copied.
	if renamed == 0 {
		t.Error("no partition records the collection's new name (sourceNs) for the claims after the rename")
	}
	// On the wire: every find carries the UUID; after the rename, the old name is refused and the
	// new one read.
	var names []string
	for _, coll := range []string{"items", "goods"} {
		for _, f := range r.read.Sent("find", "shop", coll) {
			names = append(names, coll+":"+f.Outcome)
			if _, data, ok := f.Body.Lookup("collectionUUID").BinaryOK(); !ok || string(data) != string(r.uuid.Data) {
				t.Errorf("find of shop.%s sent collectionUUID %s, want the cataloged UUID", coll, f.Body.Lookup("collectionUUID"))
			}
		}
	}
	if len(r.read.Sent("find", "shop", "goods")) == 0 {
		t.Errorf("no find of the new name shop.goods; finds: %v", names)
	}
}

// A collection dropped on the source (here dropped and created again with other documents, so the
// name has a new UUID) while being copied: its partitions not yet copied end with nothing more,
// and copy nothing of the new collection, whose documents reach the destination as the events
// after the drop are replayed.
func TestDroppedCollectionsPartitionsEndWithNothingMore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newDDLRig(t, 3000)
	w := r.worker(200)
	if res, err := w.CopyOne(ctx, nil); res != worker.Copied {
		t.Fatalf("first partition: %v, %v", res, err)
	}
	first := r.destinationIDs(t)
	before, err := r.store.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	copiedBefore := map[string]bool{}
	for _, p := range before {
		copiedBefore[p.ID] = p.Done
	}
	items := r.src.Database("shop").Collection("items")
	if err := items.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := items.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: int64(1500)}, {Key: "new", Value: true}}, bson.D{{Key: "_id", Value: int64(2999)}, {Key: "new", Value: true}}}); err != nil {
		t.Fatal(err)
	}
	r.copyAll(t, w)

	if got := r.destinationIDs(t); len(got) != len(first) {
		t.Errorf("the destination holds %d documents after the drop, want the %d copied before it and none of the new collection's", len(got), len(first))
	}
	parts, err := r.store.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !p.Done || p.Attempts != 0 {
			t.Errorf("partition %s: done %v, attempts %d; want done with no failed attempt", p.ID, p.Done, p.Attempts)
		}
		// One was copied before the drop; the others found the collection gone, which a rename
		// into another database also looks like, and say so for the applier.
		if p.SourceGone == copiedBefore[p.ID] {
			t.Errorf("partition %s: sourceGone %v", p.ID, p.SourceGone)
		}
	}
}

// A cursor the source kills under the copy (MongoDB kills a collection's cursors when it renames or
// drops it: QueryPlanKilled) is opened again after the last _id read, by UUID: no document is
// missed or counted as a failure.
func TestCursorKilledByDDLIsReadAgainFromTheLastID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newDDLRig(t, 3000)
	sandboxtest.FailCommand(t, r.src, sandboxtest.FailPoint{Commands: []string{"getMore"}, Code: 175, Times: 1})
	r.copyAll(t, r.worker(200))
	if got := len(r.destinationIDs(t)); got != 3000 {
		t.Errorf("the destination holds %d documents, want 3000", got)
	}
	if n := sandboxtest.FailPointCount(t, r.src); n != 1 {
		t.Fatalf("the fail point fired %d times, want 1", n)
	}
	parts, err := r.store.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !p.Done || p.Attempts != 0 || p.LastError != "" {
			t.Errorf("partition %s: done %v, attempts %d, lastError %q; want done with no failure", p.ID, p.Done, p.Attempts, p.LastError)
		}
	}
}

// A source that refuses find's collectionUUID (MongoDB 4.4 and 5.0 answer 40415, "BSON field
// 'find.collectionUUID' is an unknown field"; here the sandbox's failCommand answers so once) is
// read by name from then on, and a rename during the copy is still followed: the worker looks the
// collection up by UUID in its database's listCollections before each find and each batch.
func TestRenameIsFollowedWhereTheSourceRefusesCollectionUUID(t *testing.T) {
	t.Parallel()
	r := newDDLRig(t, 3000)
	sandboxtest.FailCommand(t, r.src, sandboxtest.FailPoint{Commands: []string{"find"}, Code: 40415, Times: 1})
	r.copyAcrossRename(t)
	finds := append(r.read.Sent("find", "shop", "items"), r.read.Sent("find", "shop", "goods")...)
	for _, f := range finds[1:] {
		if _, found := f.Body.LookupErr("collectionUUID"); found == nil {
			t.Errorf("a find after the source refused collectionUUID still sent it: %s", f.Body)
		}
	}
	if len(r.read.Sent("find", "shop", "goods")) == 0 || len(r.read.Sent("listCollections", "shop", "")) == 0 {
		t.Errorf("the worker did not look the collection up by UUID and read it under its new name")
	}
	parts, err := r.store.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !p.Done || p.Attempts != 0 {
			t.Errorf("partition %s: done %v, attempts %d; want done with no failed attempt", p.ID, p.Done, p.Attempts)
		}
	}
}

// Read by name (the source refuses collectionUUID), a rename and a new collection under the old
// name between the look at the name's UUID and the find: the find reads the new collection. Its
// documents must not reach the destination (they are another collection's), and the renamed
// collection's must all be read where it went: each batch is handed out only after a look that the
// name still holds the collection.
func TestReadByNameDropsABatchOfTheCollectionThatTookTheName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newDDLRig(t, 3000)
	sandboxtest.FailCommand(t, r.src, sandboxtest.FailPoint{Commands: []string{"find"}, Code: 40415, Times: 1})
	w := r.worker(200)
	if res, err := w.CopyOne(ctx, nil); res != worker.Copied {
		t.Fatalf("first partition: %v, %v", res, err)
	}
	// The next find of shop.items: right before it is sent, shop.items becomes shop.goods and a
	// new shop.items is made with other documents in the same _id range.
	swapper := sandboxtest.Connect(t, r.srcURI)
	var swapped atomic.Bool
	r.read.OnStart(func(e *event.CommandStartedEvent) {
		if e.CommandName != "find" || e.Command.Lookup("find").StringValue() != "items" || !swapped.CompareAndSwap(false, true) {
			return
		}
		if err := swapper.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.items"}, {Key: "to", Value: "shop.goods"}}).Err(); err != nil {
			t.Error(err)
			return
		}
		docs := make([]any, 3000)
		for i := range docs {
			docs[i] = bson.D{{Key: "_id", Value: int64(i)}, {Key: "n", Value: "another collection's"}}
		}
		if _, err := swapper.Database("shop").Collection("items").InsertMany(ctx, docs); err != nil {
			t.Error(err)
		}
	})
	r.copyAll(t, w)
	if !swapped.Load() {
		t.Fatal("no find of shop.items was sent after the first partition")
	}
	n, err := r.dst.Database("shop").Collection("items").CountDocuments(ctx, bson.D{{Key: "n", Value: "another collection's"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.destinationIDs(t)); got != 3000 || n != 0 {
		t.Errorf("the destination's shop.items holds %d documents, %d of them the new collection's; want the 3000 of the renamed one only", got, n)
	}
}
