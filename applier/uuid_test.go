package applier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// sourceEvents reads the source's oplog after from into events, as the applier's reader does.
func sourceEvents(t *testing.T, src *mongo.Client, from primitive.Timestamp) []changeevent.Event {
	t.Helper()
	ctx := context.Background()
	cur, err := src.Database("local").Collection("oplog.rs").Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gt", Value: from}}}})
	if err != nil {
		t.Fatal(err)
	}
	var events []changeevent.Event
	for cur.Next(ctx) {
		evs, err := changeevent.FromOplog(cur.Current)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, evs...)
	}
	return events
}

func latestTS(t *testing.T, src *mongo.Client) primitive.Timestamp {
	t.Helper()
	var last struct {
		TS primitive.Timestamp `bson:"ts"`
	}
	err := src.Database("local").Collection("oplog.rs").FindOne(context.Background(), bson.D{},
		optionsSortByTSDesc()).Decode(&last)
	if err != nil && err != mongo.ErrNoDocuments {
		t.Fatal(err)
	}
	return last.TS
}

// An update the applier can apply only by re-reading the document (the sandbox logs $inc as sent),
// replayed after its collection was renamed on the source (during the copy, or while the applier
// lagged): the refresh finds the document under the new name, by the event's collection UUID, and
// the replayed rename then moves it with the collection. Read by the old name, the document would
// be found missing, deleted from the destination, and lost. Where the source refuses
// collectionUUID (MongoDB before 6.0; here the fail point answers the first find so), the refresh
// looks the collection up by UUID in its database instead.
func TestRefreshAfterARenameReadsTheCollectionUnderItsNewName(t *testing.T) {
	t.Parallel()
	for _, refuses := range []bool{false, true} {
		name := "source takes collectionUUID"
		if refuses {
			name = "source refuses collectionUUID"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := newRealDocs(t)
			items := d.src.Database("app").Collection("items")
			if _, err := items.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}); err != nil {
				t.Fatal(err)
			}
			// The destination holds the copy of the document, under the cataloged name.
			if _, err := d.dst.Database("app").Collection("items").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 0}}); err != nil {
				t.Fatal(err)
			}
			from := latestTS(t, d.src)
			if _, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 5}}}}); err != nil {
				t.Fatal(err)
			}
			if err := d.src.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "app.items"}, {Key: "to", Value: "app.goods"}}).Err(); err != nil {
				t.Fatal(err)
			}
			events := sourceEvents(t, d.src, from)
			if len(events) != 2 || events[0].Op != changeevent.Update || events[0].Update != nil || len(events[0].UUID.Data) == 0 {
				t.Fatalf("events %+v; want the $inc (to be refreshed, with its collection's UUID), then the rename", events)
			}
			if refuses {
				sandboxtest.FailCommand(t, d.src, sandboxtest.FailPoint{Commands: []string{"find"}, Namespace: "app.items", Code: 40415, Times: 1})
			}
			if _, err := d.a.applyBatch(ctx, events); err != nil {
				t.Fatal(err)
			}
			var doc struct{ N int }
			if err := d.dst.Database("app").Collection("goods").FindOne(ctx, bson.D{{Key: "_id", Value: 1}}).Decode(&doc); err != nil || doc.N != 5 {
				t.Fatalf("the destination's app.goods has document 1 as %+v (%v); want it with n 5, as on the source", doc, err)
			}
		})
	}
}

// The rule by which events of the copy window are applied (collectionNames.resolve), on the cases
// the end-to-end test cannot reach on the sandbox: renames across databases (which give the
// collection a new UUID on MongoDB) and a collection held under another name.
func TestEventsAreResolvedByTheCatalogsUUIDs(t *testing.T) {
	t.Parallel()
	u := func(b byte) primitive.Binary {
		return primitive.Binary{Subtype: 4, Data: []byte{b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}
	}
	ns := func(s string) namespace.Namespace { n, _ := namespace.Parse(s); return n }
	names := &collectionNames{
		byUUID: map[string]namespace.Namespace{string(u(1).Data): ns("shop.goods"), string(u(2).Data): ns("shop.orders"), string(u(3).Data): ns("archive.old")},
		byName: map[namespace.Namespace]string{ns("shop.goods"): string(u(1).Data), ns("shop.orders"): string(u(2).Data), ns("archive.old"): string(u(3).Data)},
		// The events below are from before it (cluster time 0) unless they say otherwise.
		catalogAt: primitive.Timestamp{T: 1000},
	}
	after := primitive.Timestamp{T: 2000}
	for _, tc := range []struct {
		name  string
		ev    changeevent.Event
		apply bool
		as    string // the namespace it is applied to
	}{
		{"a write under the cataloged name", changeevent.Event{Op: changeevent.Insert, NS: ns("shop.goods"), UUID: u(1)}, true, "shop.goods"},
		{"a write from before the collection's rename", changeevent.Event{Op: changeevent.Insert, NS: ns("shop.items"), UUID: u(1)}, true, "shop.goods"},
		{"an index built before the rename", changeevent.Event{Op: changeevent.CreateIndexes, NS: ns("shop.items"), UUID: u(1)}, true, "shop.goods"},
		{"the rename the catalog already shows", changeevent.Event{Op: changeevent.Rename, NS: ns("shop.items"), To: ns("shop.goods"), UUID: u(1)}, false, ""},
		{"a rename after the catalog", changeevent.Event{Op: changeevent.Rename, NS: ns("shop.goods"), To: ns("shop.items"), UUID: u(1)}, true, "shop.goods"},
		{"the creation of a collection the catalog holds under another name", changeevent.Event{Op: changeevent.Create, NS: ns("shop.items"), UUID: u(1)}, false, ""},
		{"a write to a collection dropped before the catalog, whose name another holds", changeevent.Event{Op: changeevent.Insert, NS: ns("shop.orders"), UUID: u(9)}, false, ""},
		{"the drop of that collection", changeevent.Event{Op: changeevent.Drop, NS: ns("shop.orders"), UUID: u(9)}, false, ""},
		{"a rename onto a cataloged collection by one gone since", changeevent.Event{Op: changeevent.Rename, NS: ns("tmp.x"), To: ns("archive.old"), UUID: u(9)}, false, ""},
		{"a collection created after the catalog", changeevent.Event{Op: changeevent.Insert, NS: ns("shop.fresh"), UUID: u(8)}, true, "shop.fresh"},
		{"an event without a UUID", changeevent.Event{Op: changeevent.Insert, NS: ns("shop.orders")}, true, "shop.orders"},
		{"after the catalog, a rename onto a cataloged collection ($out)", changeevent.Event{Op: changeevent.Rename, NS: ns("archive.tmp"), To: ns("archive.old"), UUID: u(9), ClusterTime: after}, true, "archive.tmp"},
		{"after the catalog, a write to the collection renamed there", changeevent.Event{Op: changeevent.Insert, NS: ns("archive.old"), UUID: u(9), ClusterTime: after}, true, "archive.old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, apply, err := names.decide(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if apply != tc.apply || (apply && ev.NS.String() != tc.as) {
				t.Errorf("resolve = %s, %v; want %s, %v", ev.NS, apply, tc.as, tc.apply)
			}
		})
	}
	if held := names.heldIn("shop"); !held["goods"] || !held["orders"] || len(held) != 2 {
		t.Errorf("heldIn(shop) = %v, want goods and orders: a dropDatabase from before the catalog keeps them", held)
	}
}

func optionsSortByTSDesc() *options.FindOneOptions {
	return options.FindOne().SetSort(bson.D{{Key: "ts", Value: -1}})
}

// A rename into another database replayed for a collection whose partitions found it gone during
// the copy (MongoDB renames across databases by copying into a new collection, with a new UUID,
// so the copy's reads by UUID end there): the copy is partial, and the applier stops for good,
// naming the collection, rather than move a partial copy under the new name. The sandbox cannot
// rename across databases; the event is MongoDB's own oplog entry.
func TestRenameAcrossDatabasesDuringTheCopyStopsTheApplierLoudly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newRealDocs(t)
	events := parseOplog(t, realdocs.OplogRename)
	if _, err := d.meta.Collection(metadata.CollPartitions).InsertOne(ctx, bson.D{{Key: "_id", Value: "t/shop.orders/000001"},
		{Key: "sync", Value: "t"}, {Key: "ns", Value: "shop.orders"}, {Key: "uuid", Value: events[0].UUID},
		{Key: "done", Value: true}, {Key: "sourceGone", Value: true}}); err != nil {
		t.Fatal(err)
	}
	_, err := d.a.applyBatch(ctx, events)
	if !errors.Is(err, ErrRenamedAcrossDatabasesDuringCopy) || !terminal(err) || !strings.Contains(err.Error(), "shop.orders was renamed to archive.orders_2023") {
		t.Fatalf("applying the rename: %v; want the terminal error naming shop.orders", err)
	}
}

// Where the events carry no UUID (a change stream of MongoDB before 6.0: here MongoDB's own rename
// event without showExpandedEvents), a rename of or onto a cataloged collection from before the
// catalog cannot be told apart from one the copy already reflects, and a rename before the copy
// ended of a collection copied by name may have hidden documents from it: both stop the applier
// for good, naming the collection. Later renames, and renames of other collections, are applied.
func TestRenamesWithoutUUIDInTheCopyWindowAreRefused(t *testing.T) {
	t.Parallel()
	ev := parseChangeStream(t, realdocs.ChangeStreamRename)[0] // engineering.users → engineering.people
	before := primitive.Timestamp{T: ev.ClusterTime.T - 1}
	after := primitive.Timestamp{T: ev.ClusterTime.T + 1}
	people := map[namespace.Namespace]bool{{DB: "engineering", Coll: "people"}: true}
	for _, tc := range []struct {
		name  string
		names collectionNames
		want  error
	}{
		{"onto a cataloged collection, before the catalog", collectionNames{cataloged: people, catalogAt: after}, ErrRenamedBeforeCatalogWithoutUUID},
		{"onto a cataloged collection, after the catalog", collectionNames{cataloged: people, catalogAt: before}, nil},
		{"of collections not cataloged", collectionNames{cataloged: map[namespace.Namespace]bool{}, catalogAt: after}, nil},
		{"of a collection copied by name, before the copy ended", collectionNames{copiedByName: people, copyDone: after}, ErrRenamedWhileCopiedByName},
		{"of a collection copied by name, after the copy", collectionNames{copiedByName: people, copyDone: before}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.names.decide(ev)
			if !errors.Is(err, tc.want) || (err != nil && (!terminal(err) || !strings.Contains(err.Error(), "engineering.people"))) {
				t.Errorf("got %v, want %v (terminal, naming the collection)", err, tc.want)
			}
		})
	}
}

// A catalog with two entries of one UUID (a coordinator replaced mid-catalog, the collection renamed
// between its listing and its successor's) cannot say which name the UUID's events mean: they are
// applied by name, as without UUIDs, never skipped or moved to one of the two names at random.
func TestAUUIDTheCatalogHoldsTwiceIsAppliedByName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newRealDocs(t)
	uuid := primitive.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}
	for _, coll := range []string{"a", "b"} {
		if err := d.meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("t", "shop."+coll), Sync: "t", DB: "shop", Coll: coll,
			Type: "collection", UUID: uuid, Partitioned: true, Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	names, err := d.a.names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, coll := range []string{"a", "b", "c"} {
		ev := changeevent.Event{Op: changeevent.Insert, NS: namespace.Namespace{DB: "shop", Coll: coll}, UUID: uuid}
		got, apply, err := names.decide(ev)
		if err != nil || !apply || got.NS != ev.NS {
			t.Errorf("an insert into shop.%s: applied %v to %s (%v); want it applied by its own name", coll, apply, got.NS, err)
		}
	}
}

// After the catalog, a collection created and renamed onto a cataloged name with dropTarget (what
// $out and "build, then swap" jobs do) carries a UUID the catalog never held: the rename and every
// later write to that name are applied by name, as they happened, not skipped for good (review of
// issue 13: the destination kept the old collection and a stray tmp).
func TestSwapOntoACatalogedCollectionAfterTheCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := newRealDocs(t)
	report := d.src.Database("app").Collection("report")
	if _, err := report.InsertOne(ctx, bson.D{{Key: "_id", Value: "old"}}); err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Info struct {
			UUID primitive.Binary `bson:"uuid"`
		} `bson:"info"`
	}
	cur, err := d.src.Database("app").ListCollections(ctx, bson.D{{Key: "name", Value: "report"}})
	if err != nil || !cur.Next(ctx) {
		t.Fatal(err)
	}
	if err := cur.Decode(&spec); err != nil || len(spec.Info.UUID.Data) == 0 {
		t.Fatalf("uuid %v %v", spec.Info.UUID, err)
	}
	if err := d.meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("t", "app.report"), Sync: "t", DB: "app", Coll: "report",
		Type: "collection", UUID: spec.Info.UUID, Partitioned: true, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.dst.Database("app").Collection("report").InsertOne(ctx, bson.D{{Key: "_id", Value: "old"}}); err != nil {
		t.Fatal(err)
	}
	catalogAt := latestTS(t, d.src)
	if _, err := d.meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "t"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: FieldCatalogAtOperationTime, Value: catalogAt}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.src.Database("app").Collection("tmp").InsertOne(ctx, bson.D{{Key: "_id", Value: "new"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.src.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "app.tmp"}, {Key: "to", Value: "app.report"},
		{Key: "dropTarget", Value: true}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := report.InsertOne(ctx, bson.D{{Key: "_id", Value: "later"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.a.applyBatch(ctx, sourceEvents(t, d.src, catalogAt)); err != nil {
		t.Fatal(err)
	}
	ids := func(c *mongo.Collection) []any {
		var docs []bson.M
		cur, err := c.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil || cur.All(ctx, &docs) != nil {
			t.Fatal(err)
		}
		var out []any
		for _, d := range docs {
			out = append(out, d["_id"])
		}
		return out
	}
	got, want := ids(d.dst.Database("app").Collection("report")), ids(report)
	names, _ := d.dst.Database("app").ListCollectionNames(ctx, bson.D{})
	if fmt.Sprint(got) != fmt.Sprint(want) || len(names) != 1 {
		t.Fatalf("destination app.report %v (collections %v), source %v", got, names, want)
	}
}
