package applier

// Real documents through the parser and the writers. Every event in these tests is a change
// stream event or an oplog entry as MongoDB 6.0/7.0 sends it: the fixtures that internal/changeevent's
// tests read too, from package realdocs (internal/changeevent/realdocs, which says where each comes
// from), and at the end of this file three entries only these tests use. Each is parsed by
// changeevent.FromChangeStream or FromOplog and applied by the applier's own batch path (applyBatch:
// CRUD events in lanes through nsWriter, DDL events through applyDDL) to a sandbox destination that
// holds a known earlier version of the data, and the destination's documents, collections, indexes
// and catalog are compared with what MongoDB would hold after the same events.
//
// Every test applies its events twice, as a new applier re-applies the batch its predecessor
// applied but did not checkpoint, and checks the same state after both rounds.
//
// Sandbox notes (docs/test-servers.md): the sandbox keeps a document's stored field order when it
// is replaced (mongoJavaServerKeepsFieldOrderOnReplace), so documents written by a replace (insert,
// replace and refresh events are replace-upserts) are compared ignoring field order; documents
// only ever updated are compared exactly, field order included. It stores no collection options, so
// the options a create sends are checked on the wire (recordingDestination).

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/event"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap/zaptest"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

func TestRealDocInsertsAndDeletes(t *testing.T) {
	d := newRealDocs(t)
	// The copy already holds an older version of the document the change stream inserts (it was
	// inserted after the sync's start time, and changed again before the copy read it).
	d.seed(t, d.dst, "engineering.users",
		`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "name": "Alice (old)", "userName": "alice123", "email": "old@example.com"}`)

	inserts := append(parseChangeStream(t, realdocs.ChangeStreamInsert),
		parseOplog(t, realdocs.OplogInsert, realdocs.OplogInsertShardedRetryable, realdocs.OplogInsertWithoutO2)...)
	d.step(t, "inserts", inserts, func(t *testing.T, _ batchCounts) {
		// A replace-upsert over the older version: any field order (see the file comment).
		d.assertDocsAnyOrder(t, "engineering.users",
			`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}`)
		// Upserted where there was nothing: the documents as inserted, field order included.
		d.assertDocs(t, "shop.orders",
			`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "items": [{"sku": "A-1", "qty": 2}], "status": "new"}`,
			`{"_id": {"$oid": "6553f1000000000000000002"}, "customerId": 9, "status": "new"}`,
			`{"_id": 17, "status": "new"}`)
	})

	deletes := append(parseChangeStream(t, realdocs.ChangeStreamDelete), parseOplog(t, realdocs.OplogDelete)...)
	d.step(t, "deletes", deletes, func(t *testing.T, _ batchCounts) {
		d.assertDocs(t, "engineering.users")
		d.assertDocs(t, "shop.orders",
			`{"_id": {"$oid": "6553f1000000000000000002"}, "customerId": 9, "status": "new"}`,
			`{"_id": 17, "status": "new"}`)
	})
}

func TestRealDocReplacements(t *testing.T) {
	d := newRealDocs(t)
	// Older versions, with their fields in another order than the replacements'.
	d.seed(t, d.dst, "engineering.users",
		`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "name": "Alice Liddell", "userName": "alice123", "email": "alice@example.com"}`,
		`{"_id": {"$oid": "599af247bb69cd89961c986e"}, "name": "Bob", "userName": "bob42"}`)
	d.seed(t, d.dst, "shop.orders",
		`{"_id": {"$oid": "6553f1000000000000000001"}, "status": "paid", "customerId": 7, "items": [{"sku": "A-1", "qty": 2}]}`,
		`{"_id": 17, "qty": 4, "sku": "A-1"}`)

	events := append(parseChangeStream(t, realdocs.ChangeStreamReplace),
		parseOplog(t, realdocs.OplogReplacement, realdocs.OplogReplacementWithoutID)...)
	d.applyTwice(t, events, func(t *testing.T, _ batchCounts) {
		// Any field order: the sandbox keeps the stored order on a replace
		// (mongoJavaServerKeepsFieldOrderOnReplace); MongoDB takes the replacement's.
		d.assertDocsAnyOrder(t, "engineering.users",
			`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}`,
			`{"_id": {"$oid": "599af247bb69cd89961c986e"}, "name": "Bob", "userName": "bob42"}`)
		d.assertDocsAnyOrder(t, "shop.orders",
			`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "cancelled"}`,
			`{"_id": 17, "customerId": 7, "status": "cancelled"}`)
	})
}

// The documented update with updatedFields, removedFields and truncatedArrays, and the same update
// as showRawUpdateDescription sends it (the oplog's $v:2 diff), turn the same earlier document into
// the same document; an update of an array element by its dotted path extends the array.
func TestRealDocUpdateDescriptionsFromAChangeStream(t *testing.T) {
	var vacation []string
	for day := 1; day <= 38; day++ {
		vacation = append(vacation, fmt.Sprint(day))
	}
	before := `{"_id": {"$oid": "58a4eb4a30c75625e00d2820"}, "name": "Alice", "userName": "alice123",
		"email": "alice@example.com", "phoneNumber": "+1 555 0100", "team": "replication",
		"vacation_time": [` + strings.Join(vacation, ", ") + `]}`
	after := `{"_id": {"$oid": "58a4eb4a30c75625e00d2820"}, "name": "Alice", "userName": "alice123",
		"email": "alice@10gen.com", "team": "replication",
		"vacation_time": [` + strings.Join(vacation[:36], ", ") + `]}`
	for _, tc := range []struct{ name, doc string }{
		{"updateDescription", realdocs.ChangeStreamUpdateTruncatedArrays},
		{"rawUpdateDescription", realdocs.ChangeStreamRawUpdateDescription},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newRealDocs(t)
			d.seed(t, d.dst, "engineering.users", before)
			d.applyTwice(t, parseChangeStream(t, tc.doc), func(t *testing.T, _ batchCounts) {
				// Updated in place: the field order is the earlier document's, less phoneNumber.
				d.assertDocs(t, "engineering.users", after)
			})
		})
	}
	t.Run("array element", func(t *testing.T) {
		d := newRealDocs(t)
		// The page's second $push: scores had one element, the new one is reported as scores.1.
		d.seed(t, d.dst, "communication_chat.students",
			`{"_id": {"$oid": "642ad66b5dc4b11bea5f4319"}, "student_id": 1, "scores": [0.75]}`)
		d.applyTwice(t, parseChangeStream(t, realdocs.ChangeStreamUpdateArrayElement), func(t *testing.T, _ batchCounts) {
			d.assertDocs(t, "communication_chat.students",
				`{"_id": {"$oid": "642ad66b5dc4b11bea5f4319"}, "student_id": 1, "scores": [0.75, 0.94]}`)
		})
	})
}

// Three $v:2 oplog entries of one order (a $set, a pipeline update touching every kind of diff
// section, a $push) applied to a known earlier version give the document computed by hand below;
// the same changes sent as ordinary update operators to a second sandbox collection give the same
// document, field order included.
func TestRealDocOplogDiffMatchesTheUpdateOperators(t *testing.T) {
	d := newRealDocs(t)
	before := `{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "new", "coupon": "WELCOME10",
		"address": {"street": "Invalidenstraße 1", "zip": "10117", "city": "Berlin"},
		"items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 4}, {"sku": "X-9", "qty": 1}]}`
	// By hand, applying each diff as MongoDB does: "u" updates a field where it is, "i" appends
	// it, "d" removes it, "s<field>" recurses; an array diff cuts the array to "l" elements, then
	// recurses into element 0 ("s0") and replaces element 1 ("u1"); the $push's diff sets
	// element 2. New fields (paidAt, shippedAt, address.floor) come last, in the order written.
	want := `{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "shipped",
		"address": {"street": "Invalidenstraße 1", "zip": "10115", "city": "Berlin", "floor": 3},
		"items": [{"sku": "A-1", "qty": 5}, {"sku": "C-3", "qty": 1}, {"sku": "D-4", "qty": 1}],
		"paidAt": {"$date": "2023-11-14T22:13:25Z"}, "shippedAt": {"$date": "2023-11-15T08:00:00Z"}}`

	// The cross-check: what a user sends for the same three changes, applied by the sandbox to the
	// same earlier version in a collection of the source cluster. The truncation is a $pop here
	// (the applier uses $push with $slice), and the second change takes two updates because one
	// update cannot both $pop items and $set items.0.qty.
	d.seed(t, d.src, "shop.orders", before)
	orders := d.src.Database("shop").Collection("orders")
	for _, update := range []string{
		`{"$set": {"status": "paid", "paidAt": {"$date": "2023-11-14T22:13:25Z"}}}`,
		`{"$unset": {"coupon": ""}, "$set": {"status": "shipped", "address.zip": "10115", "address.floor": 3}, "$pop": {"items": 1}}`,
		`{"$set": {"items.0.qty": 5, "items.1": {"sku": "C-3", "qty": 1}, "shippedAt": {"$date": "2023-11-15T08:00:00Z"}}}`,
		`{"$push": {"items": {"sku": "D-4", "qty": 1}}}`,
	} {
		res, err := orders.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: realDoc(t, before).Lookup("_id")}}, realDoc(t, update))
		if err != nil || res.ModifiedCount != 1 {
			t.Fatalf("cross-check update %s: %+v, %v", update, res, err)
		}
	}
	byOperators := d.docs(t, d.src, "shop.orders", false)
	if wantDocs := docsByID(t, []string{want}, false); !sameDocs(byOperators, wantDocs) {
		t.Fatalf("the hand-computed document disagrees with the sandbox's own update operators:\n operators: %v\n by hand:   %v",
			byOperators, wantDocs)
	}

	d.seed(t, d.dst, "shop.orders", before)
	events := parseOplog(t, realdocs.OplogV2DiffSet, realdocs.OplogV2DiffNested, realdocs.OplogV2DiffPush)
	for _, ev := range events {
		if ev.Update == nil {
			t.Fatalf("%s at %v has no update description: it would be refreshed, not applied", ev.Op, ev.ClusterTime)
		}
	}
	d.applyTwice(t, events, func(t *testing.T, _ batchCounts) {
		d.assertDocs(t, "shop.orders", want)
		if got := d.docs(t, d.dst, "shop.orders", false); !sameDocs(got, byOperators) {
			t.Errorf("the applied diffs and the update operators disagree:\n applied:   %v\n operators: %v", got, byOperators)
		}
	})
}

func TestRealDocOplogV1SetAndUnset(t *testing.T) {
	d := newRealDocs(t)
	d.seed(t, d.dst, "shop.orders",
		`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "new", "coupon": "WELCOME10",
		  "address": {"city": "Hamburg", "zip": "20095"}, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}]}`,
		`{"_id": 17, "sku": "A-1", "qty": 1}`)
	d.applyTwice(t, parseOplog(t, realdocs.OplogV1SetUnset, realdocs.OplogUpdateWithoutV), func(t *testing.T, _ batchCounts) {
		d.assertDocs(t, "shop.orders",
			`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "paid",
			  "address": {"city": "Berlin", "zip": "20095"}, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 3}]}`,
			`{"_id": 17, "sku": "A-1", "qty": 4}`)
	})
}

// Updates whose description cannot be applied as it is (a numeric field name below an array, a
// non-idempotent $inc, a field name with a dot) are applied by re-reading the document from the
// source.
func TestRealDocUpdatesWithoutADescriptionAreRefreshed(t *testing.T) {
	d := newRealDocs(t)
	d.seed(t, d.src, "engineering.people", `{"_id": 1, "name": "Ada", "residences": [{"0": "London"}]}`)
	d.seed(t, d.dst, "engineering.people", `{"_id": 1, "name": "Ada", "residences": [{"0": "Paris"}]}`)
	d.seed(t, d.src, "shop.stock", `{"_id": "A-1", "sku": "A-1", "qty": 6, "updatedBy": "web"}`)
	d.seed(t, d.dst, "shop.stock", `{"_id": "A-1", "sku": "A-1", "qty": 7}`)
	events := append(parseChangeStream(t, realdocs.ChangeStreamUpdateBelowNumericField), parseOplog(t, realdocs.OplogUpdateInc)...)
	for _, ev := range events {
		if ev.Update != nil {
			t.Fatalf("%s of %s has a description %+v; these events are the parser's refreshes", ev.Op, ev.NS, ev.Update)
		}
	}
	d.applyTwice(t, events, func(t *testing.T, n batchCounts) {
		if n.refreshed != 2 || n.crud != 2 {
			t.Errorf("%+v, want 2 CRUD events, both refreshed", n)
		}
		// A refresh is a replace: any field order.
		d.assertDocsAnyOrder(t, "engineering.people", `{"_id": 1, "name": "Ada", "residences": [{"0": "London"}]}`)
		d.assertDocsAnyOrder(t, "shop.stock", `{"_id": "A-1", "sku": "A-1", "qty": 6, "updatedBy": "web"}`)
	})

	// mongoJavaServerRefusesDottedFieldNamesInReplacements: the sandbox stores a field named
	// "home.town" on insert but refuses it in a replacement ("illegal field name"), where MongoDB
	// 5.0+ takes both. So the refresh of this event cannot be written here; what the test can
	// check is that the applier stops on it with an error naming the document, both times, and
	// leaves the destination's version in place rather than losing it.
	t.Run("a field name with a dot", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.src, "engineering.people", `{"_id": 1, "name": "Ada", "home.town": "London"}`)
		d.seed(t, d.dst, "engineering.people", `{"_id": 1, "name": "Ada", "home.town": "Paris"}`)
		events := parseChangeStream(t, realdocs.ChangeStreamUpdateDottedField)
		if events[0].Update != nil {
			t.Fatalf("the update of home.town has a description %+v; it is the parser's refresh", events[0].Update)
		}
		for round := 1; round <= 2; round++ {
			_, err := d.a.applyBatch(context.Background(), events)
			if err == nil || !strings.Contains(err.Error(), `engineering.people (key {"_id": {"$numberInt":"1"}})`) ||
				!strings.Contains(err.Error(), "illegal field name") {
				t.Fatalf("round %d: %v; want the sandbox's refusal of the refreshed document, naming it", round, err)
			}
			d.assertDocs(t, "engineering.people", `{"_id": 1, "name": "Ada", "home.town": "Paris"}`)
		}
	})
}

// One batch of transactions as the oplog holds them: an applyOps over three collections, a large
// transaction in two entries, a prepared transaction and its commit, a transaction that creates a
// collection and an index before inserting, and a batched multi-delete with a chunk migration's
// delete inside.
func TestRealDocOplogTransactions(t *testing.T) {
	d := newRealDocs(t)
	d.seed(t, d.dst, "shop.stock", `{"_id": "A-1", "sku": "A-1", "qty": 9}`)
	d.seed(t, d.dst, "shop.carts",
		`{"_id": {"$oid": "6553f1000000000000000009"}, "customerId": 7}`,
		`{"_id": {"$oid": "655300000000000000000010"}, "customerId": 8}`,
		`{"_id": 1}`, `{"_id": 2}`, `{"_id": 3}`)
	events := parseOplog(t, realdocs.OplogTransaction, realdocs.OplogLargeTransactionPart, realdocs.OplogLargeTransactionEnd,
		realdocs.OplogPrepare, realdocs.OplogCommitPrepared, realdocs.OplogTransactionWithDDL, realdocs.OplogBatchedDeletes)
	d.applyTwice(t, events, func(t *testing.T, n batchCounts) {
		if n != (batchCounts{crud: 9, ddl: 2, last: primitive.Timestamp{T: 1700000019, I: 1}}) {
			t.Errorf("%+v, want 9 CRUD events (3+1+1+1+1+2) and 2 DDL events (create, createIndexes), none refreshed, the last at the batched deletes' time", n)
		}
		d.assertDocsAnyOrder(t, "shop.orders", `{"_id": 21, "sku": "A-1", "qty": 1}`, `{"_id": 31}`, `{"_id": 32}`)
		// Updated in place: qty 8 by the first transaction, then 7 by the prepared one.
		d.assertDocs(t, "shop.stock", `{"_id": "A-1", "sku": "A-1", "qty": 7}`)
		// Cart 2's delete was a chunk migration's, which the cluster as a whole never saw.
		d.assertDocs(t, "shop.carts", `{"_id": {"$oid": "655300000000000000000010"}, "customerId": 8}`, `{"_id": 2}`)
		d.assertDocsAnyOrder(t, "shop.returns", `{"_id": 1, "orderId": 21}`)
		d.assertIndexes(t, "shop.returns", `{"key": {"_id": 1}, "name": "_id_"}`, `{"key": {"orderId": 1}, "name": "orderId_1"}`)
	})

}

func TestRealDocDDLFromTheOplog(t *testing.T) {
	ctx := context.Background()
	t.Run("create", func(t *testing.T) {
		d := newRealDocs(t)
		d.applyTwice(t, parseOplog(t, realdocs.OplogCreate), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "shop", "orders")
		})
	})

	t.Run("indexes and collMod", func(t *testing.T) {
		d := newRealDocs(t)
		d.step(t, "create, createIndexes", parseOplog(t, realdocs.OplogCreate, realdocs.OplogCreateIndexes), func(t *testing.T, _ batchCounts) {
			d.assertIndexes(t, "shop.orders", `{"key": {"_id": 1}, "name": "_id_"}`, `{"key": {"sku": 1}, "name": "sku_1"}`)
		})

		// A unique and a TTL index: built without uniqueness and with the largest expireAfterSeconds
		// (the destination must expire nothing by itself), and recorded for commit to restore.
		d.step(t, "unique and TTL indexes", parseOplog(t, realdocs.OplogCommitIndexBuild, opCreateIndexesTTL), func(t *testing.T, _ batchCounts) {
			d.assertIndexes(t, "shop.orders",
				`{"key": {"_id": 1}, "name": "_id_"}`,
				`{"key": {"sku": 1}, "name": "sku_1"}`,
				`{"key": {"customerId": 1, "createdAt": -1}, "name": "customerId_1_createdAt_-1"}`,
				`{"key": {"email": 1}, "name": "email_1"}`,
				`{"key": {"createdAt": 1}, "name": "createdAt_1", "expireAfterSeconds": {"$numberLong": "2147483647"}}`)
			d.assertDeferred(t, "shop.orders", map[string]string{"email_1": "unique", "createdAt_1": "expireAfterSeconds 3600"})
		})

		// The sandbox has no collMod: the applier turns the server's CommandNotFound into a warning,
		// recorded once in the checkpoint, and goes on.
		collMods := parseOplog(t, realdocs.OplogCollModIndex, realdocs.OplogCollModValidator)
		for _, ev := range collMods {
			var warn *ddlWarning
			if err := d.a.applyDDL(ctx, ev); !errors.As(err, &warn) {
				t.Fatalf("applyDDL(%s of %s) = %v, want a *ddlWarning", ev.Op, ev.NS, err)
			}
		}
		d.step(t, "collMod of an index and of the validator", collMods, func(t *testing.T, n batchCounts) {
			if n.ddl != 2 {
				t.Errorf("%+v: a collMod turned into a warning still counts as applied", n)
			}
			d.assertWarnings(t, "the destination does not support collMod, so collMod on shop.orders was not applied")
		})

		// A TTL change is recorded for commit and not sent: the sandbox would refuse a collMod,
		// and the warnings stay as they were.
		warnings := d.warnings(t)
		d.step(t, "collMod of a TTL", parseOplog(t, opCollModTTL), func(t *testing.T, _ batchCounts) {
			d.assertDeferred(t, "shop.orders", map[string]string{"email_1": "unique", "createdAt_1": "expireAfterSeconds 7200"})
			d.assertWarnings(t, warnings...)
		})

		d.step(t, "dropIndexes", parseOplog(t, realdocs.OplogDropIndexes), func(t *testing.T, _ batchCounts) {
			d.assertIndexes(t, "shop.orders",
				`{"key": {"_id": 1}, "name": "_id_"}`,
				`{"key": {"customerId": 1, "createdAt": -1}, "name": "customerId_1_createdAt_-1"}`,
				`{"key": {"email": 1}, "name": "email_1"}`,
				`{"key": {"createdAt": 1}, "name": "createdAt_1", "expireAfterSeconds": {"$numberLong": "2147483647"}}`)
		})
	})

	t.Run("drop", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "shop.orders", `{"_id": 1}`, `{"_id": 2}`)
		d.seed(t, d.dst, "shop.carts", `{"_id": 1}`)
		d.applyTwice(t, parseOplog(t, realdocs.OplogDrop), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "shop", "carts")
		})
	})

	t.Run("rename onto an existing target", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "shop.orders", `{"_id": 1, "v": "old"}`)
		d.seed(t, d.dst, "shop.orders_tmp", `{"_id": 1, "v": "new"}`, `{"_id": 2, "v": "new"}`, `{"_id": 3, "v": "new"}`)
		d.putCatalog(t, "shop.orders", metadata.DeferredIndexChange{Index: "email_1", Unique: true})
		d.putCatalog(t, "shop.orders_tmp", metadata.DeferredIndexChange{Index: "sku_1", Unique: true})
		d.applyTwice(t, parseOplog(t, realdocs.OplogRenameReplacingTarget), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "shop", "orders")
			d.assertDocs(t, "shop.orders", `{"_id": 1, "v": "new"}`, `{"_id": 2, "v": "new"}`, `{"_id": 3, "v": "new"}`)
			// What commit must restore follows the collection; the replaced target's is gone.
			d.assertDeferred(t, "shop.orders", map[string]string{"sku_1": "unique"})
			d.assertNoCatalogEntry(t, "shop.orders_tmp")
		})
	})

	t.Run("rename to another database", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "shop.orders", `{"_id": 1}`, `{"_id": 2}`)
		// mongoJavaServerRenameIntoANewDatabase: the sandbox fails a rename into a database that
		// does not exist yet (a NullPointerException inside the server); MongoDB creates it. The
		// archive database exists here.
		d.seed(t, d.dst, "archive.other", `{"_id": 1}`)
		d.applyTwice(t, parseOplog(t, realdocs.OplogRename), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "shop")
			d.assertCollections(t, "archive", "orders_2023", "other")
			d.assertDocs(t, "archive.orders_2023", `{"_id": 1}`, `{"_id": 2}`)
		})
	})

	t.Run("dropDatabase", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "shop.orders", `{"_id": 1}`)
		d.seed(t, d.dst, "shop.carts", `{"_id": 1}`)
		d.seed(t, d.dst, "archive.other", `{"_id": 1}`)
		d.applyTwice(t, parseOplog(t, realdocs.OplogDropDatabase), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "shop")
			d.assertCollections(t, "archive", "other")
		})
	})
}

func TestRealDocDDLFromAChangeStream(t *testing.T) {
	ctx := context.Background()
	t.Run("create", func(t *testing.T) {
		d := newRealDocs(t)
		d.applyTwice(t, parseChangeStream(t, realdocs.ChangeStreamCreate), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "test", "names")
		})
	})

	t.Run("createIndexes and dropIndexes", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "test.authors", `{"_id": 1, "name": "Ursula"}`)
		d.step(t, "createIndexes", parseChangeStream(t, realdocs.ChangeStreamCreateIndexes), func(t *testing.T, _ batchCounts) {
			d.assertIndexes(t, "test.authors", `{"key": {"_id": 1}, "name": "_id_"}`, `{"key": {"name": 1}, "name": "name_1"}`)
		})
		d.step(t, "dropIndexes", parseChangeStream(t, realdocs.ChangeStreamDropIndexes), func(t *testing.T, _ batchCounts) {
			d.assertIndexes(t, "test.authors", `{"key": {"_id": 1}, "name": "_id_"}`)
		})
	})

	t.Run("modify and shardCollection are warnings", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "test.authors", `{"_id": 1, "name": "Ursula", "age": 88}`)
		events := parseChangeStream(t,
			realdocs.ChangeStreamModifyIndex, realdocs.ChangeStreamModifyValidator, realdocs.ChangeStreamShardCollection)
		for _, ev := range events {
			var warn *ddlWarning
			if err := d.a.applyDDL(ctx, ev); !errors.As(err, &warn) {
				t.Fatalf("applyDDL(%s of %s) = %v, want a *ddlWarning", ev.Op, ev.NS, err)
			}
		}
		d.applyTwice(t, events, func(t *testing.T, _ batchCounts) {
			d.assertWarnings(t,
				"the destination does not support collMod, so collMod on test.authors was not applied",
				`a source event fleetsync does not apply was skipped: shardCollection on test.authors: {"shardKey": {"age": "hashed"},"unique": false,"numInitialChunks": {"$numberLong":"0"},"presplitHashedZones": false}`)
			d.assertDocs(t, "test.authors", `{"_id": 1, "name": "Ursula", "age": 88}`)
		})
	})

	t.Run("rename", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "engineering.users", `{"_id": 1, "name": "Alice"}`, `{"_id": 2, "name": "Bob"}`)
		d.applyTwice(t, parseChangeStream(t, realdocs.ChangeStreamRename), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "engineering", "people")
			d.assertDocs(t, "engineering.people", `{"_id": 1, "name": "Alice"}`, `{"_id": 2, "name": "Bob"}`)
		})
	})

	t.Run("rename that replaced the target", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "engineering.users", `{"_id": 1, "name": "Alice"}`)
		d.seed(t, d.dst, "engineering.people", `{"_id": 1, "name": "Alice (old)"}`, `{"_id": 9, "name": "Mallory"}`)
		d.applyTwice(t, parseChangeStream(t, realdocs.ChangeStreamRenameReplacingTarget), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "engineering", "people")
			d.assertDocs(t, "engineering.people", `{"_id": 1, "name": "Alice"}`)
		})
	})

	t.Run("drop", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "engineering.users", `{"_id": 1}`)
		d.seed(t, d.dst, "engineering.people", `{"_id": 1}`)
		d.applyTwice(t, parseChangeStream(t, realdocs.ChangeStreamDrop), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "engineering", "people")
		})
	})

	t.Run("dropDatabase", func(t *testing.T) {
		d := newRealDocs(t)
		d.seed(t, d.dst, "engineering.users", `{"_id": 1}`)
		d.seed(t, d.dst, "engineering.people", `{"_id": 1}`)
		d.seed(t, d.dst, "test.names", `{"_id": 1}`)
		d.applyTwice(t, parseChangeStream(t, realdocs.ChangeStreamDropDatabase), func(t *testing.T, _ batchCounts) {
			d.assertCollections(t, "engineering")
			d.assertCollections(t, "test", "names")
		})
	})
}

// A create sends the source collection's options, without the _id index spec the source logged.
// The sandbox stores no options, so the command is checked on the wire; and it cannot create capped
// collections at all, so for the two capped fixtures the test checks that the refusal is an error
// that stops the batch (not a warning that would lose the collection), then creates the same
// collection without capped and size.
func TestRealDocCreateSendsTheSourceOptions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, ns, sent, sentUncapped string
		ev                           changeevent.Event
	}{
		{
			name: "oplog", ns: "shop.audit", ev: parseOplog(t, realdocs.OplogCreateCappedWithValidator)[0],
			sent: `{"create": "audit", "capped": true, "size": {"$numberLong": "1048576"},
				"validator": {"action": {"$exists": true}}, "validationLevel": "moderate"}`,
			sentUncapped: `{"create": "audit", "validator": {"action": {"$exists": true}}, "validationLevel": "moderate"}`,
		},
		{
			name: "change stream", ns: "test.log", ev: parseChangeStream(t, realdocs.ChangeStreamCreateWithOptions)[0],
			sent: `{"create": "log", "capped": true, "size": {"$numberLong": "1048576"},
				"collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
					"alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}`,
			sentUncapped: `{"create": "log",
				"collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
					"alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newRealDocs(t)
			a, sent := d.recordingDestination(t)
			for round := 1; round <= 2; round++ {
				err := a.applyDDL(ctx, tc.ev)
				var warn *ddlWarning
				if err == nil || errors.As(err, &warn) || !strings.Contains(err.Error(), "create of "+tc.ns) {
					t.Errorf("round %d: the sandbox's refusal of a capped collection gave %v; want an error naming the create of %s", round, err, tc.ns)
				}
			}
			uncapped := tc.ev
			uncapped.Options = withoutFields(t, tc.ev.Options, "capped", "size")
			for round := 1; round <= 2; round++ {
				if err := a.applyDDL(ctx, uncapped); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			want := []string{canonicalJSON(t, realDoc(t, tc.sent), false), canonicalJSON(t, realDoc(t, tc.sent), false),
				canonicalJSON(t, realDoc(t, tc.sentUncapped), false), canonicalJSON(t, realDoc(t, tc.sentUncapped), false)}
			if got := sent(); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("create commands sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			ns := mustNamespace(t, tc.ns)
			names, err := a.cfg.Destination.Database(ns.DB).ListCollectionNames(ctx, bson.D{})
			if err != nil || len(names) != 1 || names[0] != ns.Coll {
				t.Errorf("collections of %s: %v, %v; want [%s]", ns.DB, names, err, ns.Coll)
			}
		})
	}
}

// A batch that writes to a collection and then renames it, re-applied by the next applier (the
// first one applied it and died before its checkpoint): the first round moves the collection,
// with the documents the copy left in it, to the new name; in the second the insert finds no
// collection under the old name and creates one holding only the inserted document, the update
// matches nothing there, and the rename, which always drops its target, replaces the complete
// collection with that one. The documents that came from the copy are gone from the destination
// while the source still has them, and nothing later in the stream brings them back.
// An applier that dies after applying a batch with writes to a collection, then its rename, and
// before its final checkpoint: the next applier resumes from the last checkpoint the first one
// wrote. The applier checkpoints around every DDL event, so what is replayed never includes the
// writes to the old name (which would re-create it, and a replayed rename, which replaces its
// target, would then put that fresh collection in place of the renamed one and lose the copied
// documents).
func TestRealDocRenameReappliedAfterWritesToTheOldName(t *testing.T) {
	d := newRealDocs(t)
	d.seed(t, d.dst, "engineering.users",
		`{"_id": {"$oid": "58a4eb4a30c75625e00d2820"}, "name": "Alice", "userName": "alice123",
		  "email": "alice@example.com", "phoneNumber": "+1 555 0100", "team": "replication", "vacation_time": [1, 2]}`,
		`{"_id": {"$oid": "599af247bb69cd89961c986e"}, "name": "Bob", "userName": "bob42"}`)
	events := parseChangeStream(t,
		realdocs.ChangeStreamInsert, realdocs.ChangeStreamUpdateTruncatedArrays, realdocs.ChangeStreamRename)
	check := func(t *testing.T) {
		d.assertCollections(t, "engineering", "people")
		d.assertDocsAnyOrder(t, "engineering.people",
			`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}`,
			`{"_id": {"$oid": "58a4eb4a30c75625e00d2820"}, "name": "Alice", "userName": "alice123",
			  "email": "alice@10gen.com", "team": "replication", "vacation_time": [1, 2]}`,
			`{"_id": {"$oid": "599af247bb69cd89961c986e"}, "name": "Bob", "userName": "bob42"}`)
	}
	var checkpoints []int // index of the last event each checkpoint covers
	d.a.boundary = func(_ context.Context, i int, _ changeevent.Event, _ batchCounts) error {
		checkpoints = append(checkpoints, i)
		return nil
	}
	if _, err := d.a.applyBatch(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	check(t)
	if fmt.Sprint(checkpoints) != "[1 2]" {
		t.Fatalf("checkpoints after events %v, want [1 2]: right before the rename and right after it", checkpoints)
	}
	// Replay from before the rename, as if the checkpoint after it had not been written: only the
	// rename is replayed, and it finds its work done.
	if _, err := d.a.applyBatch(context.Background(), events[len(events)-1:]); err != nil && !sandboxRenameOfMissingSource(err) {
		t.Fatal(err)
	}
	check(t)
}

func TestRealDocDropForgetsDeferredIndexChanges(t *testing.T) {
	d := newRealDocs(t)
	events := parseOplog(t,
		realdocs.OplogCreate, realdocs.OplogCommitIndexBuild, realdocs.OplogDrop, realdocs.OplogCreate, opCreateIndexesEmailNotUnique)
	d.applyTwice(t, events, func(t *testing.T, _ batchCounts) {
		d.assertIndexes(t, "shop.orders", `{"key": {"_id": 1}, "name": "_id_"}`, `{"key": {"email": 1}, "name": "email_1"}`)
		d.assertDeferred(t, "shop.orders", map[string]string{})
	})
}

// realDocs is a sync in its apply phase (newRig) with an applier that holds the applier lease and
// is fed batches directly: no reader, no Keeper.
type realDocs struct {
	*rig
	a *applier
}

func newRealDocs(t *testing.T) *realDocs {
	t.Helper()
	r := newRig(t)
	l, err := r.store.Acquire(context.Background(), "t", "realdocs", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return &realDocs{rig: r, a: newTestApplier(t, r, l)}
}

// newTestApplier builds the applier Run builds, holding lease l for its checkpoint and warnings.
func newTestApplier(t *testing.T, r *rig, l lease.Lease) *applier {
	return &applier{
		cfg: Config{Source: r.src, Destination: r.dst, Meta: r.meta, Mode: ModeOplog, Lanes: 4, BatchEvents: 100,
			Log: zaptest.NewLogger(t)},
		ckpt: &checkpointer{coll: r.meta.Collection(metadata.CollCheckpoints), syncID: r.meta.SyncID, lease: l},
	}
}

// applyTwice applies events as one batch, then again as the next applier would after a takeover,
// and checks the destination after each round, in subtests "applied_once" and "applied_twice".
func (d *realDocs) applyTwice(t *testing.T, events []changeevent.Event, check func(t *testing.T, n batchCounts)) {
	t.Helper()
	for round, name := range []string{"applied once", "applied twice"} {
		n, err := d.a.applyBatch(context.Background(), events)
		if err != nil && round == 1 && len(events) == 1 && events[0].Op == changeevent.Rename && sandboxRenameOfMissingSource(err) {
			t.Logf("%s: %v (the sandbox's answer to a rename whose source is gone; see sandboxRenameOfMissingSource)", name, err)
			n, err = batchCounts{ddl: 1}, nil
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Run(name, func(t *testing.T) { check(t, n) })
	}
}

// step is applyTwice in a subtest of its own, for tests that apply several batches in turn.
func (d *realDocs) step(t *testing.T, name string, events []changeevent.Event, check func(t *testing.T, n batchCounts)) {
	t.Helper()
	t.Run(name, func(t *testing.T) { d.applyTwice(t, events, check) })
}

// sandboxRenameOfMissingSource recognises mongoJavaServerRenameOfMissingSourceHasNoCode: the sandbox
// answers a renameCollection whose source does not exist with "source namespace does not exist" and
// no error code, where MongoDB answers NamespaceNotFound (26), which applyDDL takes as "renamed
// already". A second application of a lone rename fails on the sandbox only; the test accepts
// exactly that answer and checks that nothing changed.
func sandboxRenameOfMissingSource(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 0 && ce.Message == "source namespace does not exist"
}

// recordingDestination returns a copy of the applier whose destination is a fresh sandbox server,
// and a function listing the create commands sent to it so far (canonical Extended JSON, without
// the driver's $db, lsid and other $-fields).
func (d *realDocs) recordingDestination(t *testing.T) (*applier, func() []string) {
	t.Helper()
	var (
		mu   sync.Mutex
		sent []bson.Raw
	)
	monitor := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "create" {
			mu.Lock()
			sent = append(sent, append(bson.Raw(nil), e.Command...))
			mu.Unlock()
		}
	}}
	ctx := context.Background()
	client, err := mongo.Connect(ctx, options.Client().ApplyURI(sandboxtest.Server(t, false)).SetMonitor(monitor))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(ctx) })
	a := *d.a
	a.cfg.Destination = client
	return &a, func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, cmd := range sent {
			var body bson.D
			elems, _ := cmd.Elements()
			for _, e := range elems {
				if !strings.HasPrefix(e.Key(), "$") && e.Key() != "lsid" {
					body = append(body, bson.E{Key: e.Key(), Value: e.Value()})
				}
			}
			raw, err := bson.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, canonicalJSON(t, raw, false))
		}
		return out
	}
}

// realDoc reads a document written in relaxed Extended JSON, keeping its field order (as
// internal/changeevent's tests read these fixtures).
func realDoc(t testing.TB, s string) bson.Raw {
	t.Helper()
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &doc); err != nil {
		t.Fatalf("test document is not Extended JSON: %v\n%s", err, s)
	}
	return doc
}

func parseOplog(t testing.TB, entries ...string) []changeevent.Event {
	t.Helper()
	var out []changeevent.Event
	for _, e := range entries {
		evs, err := changeevent.FromOplog(realDoc(t, e))
		if err != nil {
			t.Fatalf("FromOplog: %v\n%s", err, e)
		}
		out = append(out, evs...)
	}
	return out
}

func parseChangeStream(t testing.TB, docs ...string) []changeevent.Event {
	t.Helper()
	var out []changeevent.Event
	for _, doc := range docs {
		ev, err := changeevent.FromChangeStream(realDoc(t, doc))
		if err != nil {
			t.Fatalf("FromChangeStream: %v\n%s", err, doc)
		}
		out = append(out, ev)
	}
	return out
}

func mustNamespace(t testing.TB, s string) namespace.Namespace {
	t.Helper()
	ns, err := namespace.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// seed writes documents straight into a cluster: the state before the batch (what the copy or
// earlier events left), or the source's current documents for refreshes.
func (d *realDocs) seed(t *testing.T, c *mongo.Client, ns string, docs ...string) {
	t.Helper()
	n := mustNamespace(t, ns)
	for _, doc := range docs {
		if _, err := c.Database(n.DB).Collection(n.Coll).InsertOne(context.Background(), realDoc(t, doc)); err != nil {
			t.Fatalf("seeding %s: %v", ns, err)
		}
	}
}

// docs reads ns from c: canonical Extended JSON by the canonical JSON of the _id, with each
// document's fields sorted (recursively) when anyOrder.
func (d *realDocs) docs(t *testing.T, c *mongo.Client, ns string, anyOrder bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	n := mustNamespace(t, ns)
	cur, err := c.Database(n.DB).Collection(n.Coll).Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(ctx)
	var raws []bson.Raw
	for cur.Next(ctx) {
		raws = append(raws, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return byID(t, raws, anyOrder)
}

func docsByID(t *testing.T, docs []string, anyOrder bool) map[string]string {
	t.Helper()
	var raws []bson.Raw
	for _, doc := range docs {
		raws = append(raws, realDoc(t, doc))
	}
	return byID(t, raws, anyOrder)
}

func byID(t *testing.T, raws []bson.Raw, anyOrder bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, raw := range raws {
		id, err := bson.Marshal(bson.D{{Key: "_id", Value: raw.Lookup("_id")}})
		if err != nil {
			t.Fatal(err)
		}
		out[canonicalJSON(t, id, false)] = canonicalJSON(t, raw, anyOrder)
	}
	return out
}

func sameDocs(a, b map[string]string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b) // fmt prints maps in key order
}

// canonicalJSON prints doc as canonical Extended JSON (every type spelled out), its fields sorted
// at every level when anyOrder.
func canonicalJSON(t testing.TB, doc bson.Raw, anyOrder bool) string {
	t.Helper()
	var v any = doc
	if anyOrder {
		v = sortedFields(doc)
	}
	out, err := bson.MarshalExtJSON(v, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func sortedFields(doc bson.Raw) bson.D {
	elems, _ := doc.Elements()
	out := make(bson.D, 0, len(elems))
	for _, e := range elems {
		out = append(out, bson.E{Key: e.Key(), Value: sortedValue(e.Value())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func sortedValue(v bson.RawValue) any {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return sortedFields(v.Document())
	case bson.TypeArray:
		values, _ := v.Array().Values()
		out := bson.A{}
		for _, x := range values {
			out = append(out, sortedValue(x))
		}
		return out
	}
	return v
}

// withoutFields returns doc less the named top-level fields.
func withoutFields(t testing.TB, doc bson.Raw, names ...string) bson.Raw {
	t.Helper()
	var out bson.D
	elems, _ := doc.Elements()
	for _, e := range elems {
		drop := false
		for _, n := range names {
			drop = drop || e.Key() == n
		}
		if !drop {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	raw, err := bson.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (d *realDocs) assertDocs(t *testing.T, ns string, want ...string) {
	t.Helper()
	d.assertDocsIn(t, ns, false, want)
}

// assertDocsAnyOrder is assertDocs ignoring field order, for documents written by a replace:
// mongoJavaServerKeepsFieldOrderOnReplace (the sandbox keeps the stored order where MongoDB takes
// the replacement's).
func (d *realDocs) assertDocsAnyOrder(t *testing.T, ns string, want ...string) {
	t.Helper()
	d.assertDocsIn(t, ns, true, want)
}

func (d *realDocs) assertDocsIn(t *testing.T, ns string, anyOrder bool, want []string) {
	t.Helper()
	got, wantDocs := d.docs(t, d.dst, ns, anyOrder), docsByID(t, want, anyOrder)
	for id, w := range wantDocs {
		if g, ok := got[id]; !ok {
			t.Errorf("%s: document %s is missing; want %s", ns, id, w)
		} else if g != w {
			t.Errorf("%s: document %s is\n  %s\nwant\n  %s", ns, id, g, w)
		}
	}
	for id, g := range got {
		if _, ok := wantDocs[id]; !ok {
			t.Errorf("%s: document %s should not be there: %s", ns, id, g)
		}
	}
}

// assertCollections checks the destination database's collections, by name.
func (d *realDocs) assertCollections(t *testing.T, db string, want ...string) {
	t.Helper()
	got, err := d.dst.Database(db).ListCollectionNames(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("collections of %s: %q, want %q", db, got, want)
	}
}

// assertIndexes checks ns's indexes on the destination: each spec without its version v, fields in
// any order (the sandbox lists key, name, ..., v; MongoDB v, key, name, ...).
func (d *realDocs) assertIndexes(t *testing.T, ns string, want ...string) {
	t.Helper()
	n := mustNamespace(t, ns)
	cur, err := d.dst.Database(n.DB).Collection(n.Coll).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []bson.Raw
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	var got, wantSpecs []string
	for _, spec := range specs {
		got = append(got, canonicalJSON(t, withoutFields(t, spec, "v", "ns"), true))
	}
	for _, w := range want {
		wantSpecs = append(wantSpecs, canonicalJSON(t, realDoc(t, w), true))
	}
	sort.Strings(got)
	sort.Strings(wantSpecs)
	if strings.Join(got, "\n") != strings.Join(wantSpecs, "\n") {
		t.Errorf("indexes of %s:\n%s\nwant:\n%s", ns, strings.Join(got, "\n"), strings.Join(wantSpecs, "\n"))
	}
}

// assertDeferred checks the index settings the catalog holds for commit to restore on ns, by
// index name: "unique" or "expireAfterSeconds N".
func (d *realDocs) assertDeferred(t *testing.T, ns string, want map[string]string) {
	t.Helper()
	entries, err := d.meta.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range entries {
		if e.DB+"."+e.Coll != ns {
			continue
		}
		for _, c := range e.Deferred {
			var what []string
			if c.Unique {
				what = append(what, "unique")
			}
			if c.ExpireAfterSeconds != nil {
				what = append(what, fmt.Sprintf("expireAfterSeconds %d", *c.ExpireAfterSeconds))
			}
			if _, twice := got[c.Index]; twice {
				t.Errorf("the catalog records index %s of %s twice: %+v", c.Index, ns, e.Deferred)
			}
			got[c.Index] = strings.Join(what, ", ")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deferred index changes of %s in the catalog: %v, want %v", ns, got, want)
	}
}

// putCatalog records ns in the catalog as the coordinator does, with the given deferred changes.
func (d *realDocs) putCatalog(t *testing.T, ns string, deferred ...metadata.DeferredIndexChange) {
	t.Helper()
	n := mustNamespace(t, ns)
	err := d.meta.PutCatalogEntry(context.Background(), metadata.CatalogEntry{
		ID: metadata.CatalogID(d.meta.SyncID, ns), Sync: d.meta.SyncID, DB: n.DB, Coll: n.Coll, Type: "collection",
		Indexes: []bson.Raw{realDoc(t, `{"v": 2, "key": {"_id": 1}, "name": "_id_"}`)}, Deferred: deferred,
		Partitioned: true,
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (d *realDocs) assertNoCatalogEntry(t *testing.T, ns string) {
	t.Helper()
	entries, err := d.meta.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.DB+"."+e.Coll == ns || e.ID == metadata.CatalogID(d.meta.SyncID, ns) {
			t.Errorf("the catalog still has an entry for %s: %+v", ns, e)
		}
	}
}

// warnings returns the warnings recorded in the checkpoint.
func (d *realDocs) warnings(t *testing.T) []string {
	t.Helper()
	ck, _, err := ReadCheckpoint(context.Background(), d.meta)
	if err != nil {
		t.Fatal(err)
	}
	return ck.Warnings.Messages()
}

// assertWarnings checks the warnings recorded in the checkpoint, in order.
func (d *realDocs) assertWarnings(t *testing.T, want ...string) {
	t.Helper()
	if got := d.warnings(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings in the checkpoint:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Oplog entries that internal/changeevent's tests do not have, built here in the shape of the ones
// in package realdocs (same fields, same provenance), each for one index setting no real fixture
// carries.
const (
	// realdocs.OplogCreateIndexes's entry for db.orders.createIndex({createdAt: 1},
	// {expireAfterSeconds: 3600}) on an empty collection: a TTL index.
	opCreateIndexesTTL = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"createIndexes": "orders", "v": 2, "key": {"createdAt": 1}, "name": "createdAt_1", "expireAfterSeconds": 3600},
		"ts": {"$timestamp": {"t": 1700000028, "i": 2}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:22Z"}
	}`

	// realdocs.OplogCollModIndex's entry for db.runCommand({collMod: "orders", index: {name:
	// "createdAt_1", expireAfterSeconds: 7200}}): o2 holds the value it replaced.
	opCollModTTL = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"collMod": "orders", "index": {"name": "createdAt_1", "expireAfterSeconds": 7200}},
		"o2": {"collectionOptions_old": {"uuid": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}}},
		       "indexOptions_old": {"expireAfterSeconds": 3600}},
		"ts": {"$timestamp": {"t": 1700000031, "i": 2}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:25Z"}
	}`

	// realdocs.OplogCreateIndexes's entry for db.orders.createIndex({email: 1}) on the re-created,
	// empty collection: email_1 again, this time not unique.
	opCreateIndexesEmailNotUnique = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
		"o": {"createIndexes": "orders", "v": 2, "key": {"email": 1}, "name": "email_1"},
		"ts": {"$timestamp": {"t": 1700000040, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:34Z"}
	}`
)
