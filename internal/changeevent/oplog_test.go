package changeevent

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// MongoDB documents no reference page for oplog entries; the entries of these tests have the shape
// a 6.0 or 7.0 server writes to local.oplog.rs, as db.getSiblingDB("local").oplog.rs.find() prints
// them in relaxed Extended JSON. Each names where its shape comes from in the server's source:
// src/mongo/db/repl/oplog_entry.idl (the common fields ts, t, v, wall, ui, lsid, txnNumber, stmtId,
// prevOpTime), src/mongo/db/op_observer/op_observer_impl.cpp (what each write and command logs),
// src/mongo/db/update/document_diff_serialization.h (the $v:2 diff) and jstests that assert on
// oplog contents. Those the applier's tests apply too (applier/realdocs_test.go) are kept once,
// with their comments, in package realdocs; the others are written here.
type oplogCase struct {
	name  string
	entry string
	want  []Event
}

var oplogCases = []oplogCase{
	{
		name:  "insert",
		entry: realdocs.OplogInsert,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000001, 1),
			DocumentKey:  ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "items": [{"sku": "A-1", "qty": 2}], "status": "new"}`),
		}},
	},
	{
		name:  "insert into a sharded collection, retryable",
		entry: realdocs.OplogInsertShardedRetryable,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000002, 4),
			DocumentKey:  ejson(`{"customerId": 9, "_id": {"$oid": "6553f1000000000000000002"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "6553f1000000000000000002"}, "customerId": 9, "status": "new"}`),
		}},
	},
	{
		name:  "insert without o2",
		entry: realdocs.OplogInsertWithoutO2,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000003, 1),
			DocumentKey:  ejson(`{"_id": 17}`),
			FullDocument: ejson(`{"_id": 17, "status": "new"}`),
		}},
	},
	{
		name:  "delete",
		entry: realdocs.OplogDelete,
		want: []Event{{
			Op: Delete, NS: ns("shop.orders"), ClusterTime: ts(1700000004, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
		}},
	},
	{
		name:  "update, $v:2",
		entry: realdocs.OplogV2DiffSet,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000005, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			Update:      &UpdateDescription{Set: setOf(`{"status": "paid", "paidAt": {"$date": "2023-11-14T22:13:25Z"}}`)},
		}},
	},
	{
		name:  "update, $v:2 with nested and array sub-diffs",
		entry: realdocs.OplogV2DiffNested,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000006, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			Update: &UpdateDescription{
				Truncate: []ArrayTruncation{{Path: "items", NewSize: 2}},
				Set: setOf(`{"status": "shipped", "shippedAt": {"$date": "2023-11-15T08:00:00Z"},
					"address.zip": "10115", "address.floor": 3, "items.0.qty": 5, "items.1": {"sku": "C-3", "qty": 1}}`),
				Unset: []string{"coupon"},
			},
		}},
	},
	{
		name:  "update, $v:2 push",
		entry: realdocs.OplogV2DiffPush,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000007, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			Update:      &UpdateDescription{Set: setOf(`{"items.2": {"sku": "D-4", "qty": 1}}`)},
		}},
	},
	{
		// A $setField pipeline update of a field named "price.usd" (5.0+ allows the name): no
		// update path can say it.
		name: "update, $v:2 of a dotted field name is a refresh",
		entry: `{
			"op": "u", "ns": "shop.products",
			"ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
			"o": {"$v": 2, "diff": {"u": {"price.usd": 10}}},
			"o2": {"_id": "A-1"},
			"ts": {"$timestamp": {"t": 1700000008, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:02Z"}
		}`,
		want: []Event{{
			Op: Update, NS: ns("shop.products"), ClusterTime: ts(1700000008, 1),
			DocumentKey: ejson(`{"_id": "A-1"}`),
		}},
	},
	{
		name:  "update, $v:1",
		entry: realdocs.OplogV1SetUnset,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000009, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			Update: &UpdateDescription{
				Set:   setOf(`{"status": "paid", "address.city": "Berlin", "items.1.qty": 3}`),
				Unset: []string{"coupon"},
			},
		}},
	},
	{
		name:  "update without $v",
		entry: realdocs.OplogUpdateWithoutV,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000010, 1),
			DocumentKey: ejson(`{"_id": 17}`),
			Update:      &UpdateDescription{Set: setOf(`{"qty": 4}`)},
		}},
	},
	{
		// Servers resolve positional paths before logging; an entry that still has one (a
		// hand-made or foreign oplog) does not say which element changed.
		name: "update, $v:1 with a positional path is a refresh",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"o": {"$v": 1, "$set": {"items.$.qty": 3}},
			"o2": {"_id": 17},
			"ts": {"$timestamp": {"t": 1700000011, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:05Z"}
		}`,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000011, 1),
			DocumentKey: ejson(`{"_id": 17}`),
		}},
	},
	{
		name:  "update with $inc is a refresh",
		entry: realdocs.OplogUpdateInc,
		want: []Event{{
			Op: Update, NS: ns("shop.stock"), ClusterTime: ts(1700000012, 1),
			DocumentKey: ejson(`{"_id": "A-1"}`),
		}},
	},
	{
		name:  "replacement",
		entry: realdocs.OplogReplacement,
		want: []Event{{
			Op: Replace, NS: ns("shop.orders"), ClusterTime: ts(1700000013, 1),
			DocumentKey:  ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "cancelled"}`),
		}},
	},
	{
		name:  "replacement without _id",
		entry: realdocs.OplogReplacementWithoutID,
		want: []Event{{
			Op: Replace, NS: ns("shop.orders"), ClusterTime: ts(1700000014, 1),
			DocumentKey:  ejson(`{"_id": 17}`),
			FullDocument: ejson(`{"_id": 17, "customerId": 7, "status": "cancelled"}`),
		}},
	},
	{
		name:  "transaction",
		entry: realdocs.OplogTransaction,
		want: []Event{
			{
				Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000015, 2),
				DocumentKey:  ejson(`{"_id": 21}`),
				FullDocument: ejson(`{"_id": 21, "sku": "A-1", "qty": 1}`),
			},
			{
				Op: Update, NS: ns("shop.stock"), ClusterTime: ts(1700000015, 2),
				DocumentKey: ejson(`{"_id": "A-1"}`),
				Update:      &UpdateDescription{Set: setOf(`{"qty": 8}`)},
			},
			{
				Op: Delete, NS: ns("shop.carts"), ClusterTime: ts(1700000015, 2),
				DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000009"}}`),
			},
		},
	},
	{
		name:  "part of a large transaction",
		entry: realdocs.OplogLargeTransactionPart,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000016, 1),
			DocumentKey: ejson(`{"_id": 31}`), FullDocument: ejson(`{"_id": 31}`),
		}},
	},
	{
		name:  "end of a large transaction",
		entry: realdocs.OplogLargeTransactionEnd,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000016, 2),
			DocumentKey: ejson(`{"_id": 32}`), FullDocument: ejson(`{"_id": 32}`),
		}},
	},
	{
		name:  "prepare of a prepared transaction",
		entry: realdocs.OplogPrepare,
		want: []Event{{
			Op: Update, NS: ns("shop.stock"), ClusterTime: ts(1700000017, 1),
			DocumentKey: ejson(`{"_id": "A-1"}`),
			Update:      &UpdateDescription{Set: setOf(`{"qty": 7}`)},
		}},
	},
	{
		name:  "commit of a prepared transaction",
		entry: realdocs.OplogCommitPrepared,
	},
	{
		// An abort after prepare: the prepare's events never happened, and the applier must
		// hear about it.
		name: "abort of a prepared transaction",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "8"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"abortTransaction": 1},
			"ts": {"$timestamp": {"t": 1700000018, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:12Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 1700000017, "i": 9}}, "t": {"$numberLong": "1"}}
		}`,
		want: []Event{{
			Op: Unsupported, ClusterTime: ts(1700000018, 1),
			Description: "abortTransaction: a prepared transaction was aborted, so the events read from its prepare entry " +
				"(an applyOps with prepare: true) never happened; the documents it wrote must be re-copied",
		}},
	},
	{
		name:  "transaction creating a collection and an index",
		entry: realdocs.OplogTransactionWithDDL,
		want: []Event{
			{Op: Create, NS: ns("shop.returns"), ClusterTime: ts(1700000018, 7), Options: ejson(`{}`)},
			{
				Op: CreateIndexes, NS: ns("shop.returns"), ClusterTime: ts(1700000018, 7),
				Indexes: []bson.Raw{ejson(`{"v": 2, "key": {"orderId": 1}, "name": "orderId_1"}`)},
			},
			{
				Op: Insert, NS: ns("shop.returns"), ClusterTime: ts(1700000018, 7),
				DocumentKey: ejson(`{"_id": 1}`), FullDocument: ejson(`{"_id": 1, "orderId": 21}`),
			},
		},
	},
	{
		name:  "batched write with a migration delete inside",
		entry: realdocs.OplogBatchedDeletes,
		want: []Event{
			{Op: Delete, NS: ns("shop.carts"), ClusterTime: ts(1700000019, 1), DocumentKey: ejson(`{"_id": 1}`)},
			{Op: Delete, NS: ns("shop.carts"), ClusterTime: ts(1700000019, 1), DocumentKey: ejson(`{"_id": 3}`)},
		},
	},
	{
		name:  "create",
		entry: realdocs.OplogCreate,
		want:  []Event{{Op: Create, NS: ns("shop.orders"), ClusterTime: ts(1700000020, 1), Options: ejson(`{}`)}},
	},
	{
		name:  "create a capped collection with a validator",
		entry: realdocs.OplogCreateCappedWithValidator,
		want: []Event{{
			Op: Create, NS: ns("shop.audit"), ClusterTime: ts(1700000021, 1),
			Options: ejson(`{"capped": true, "size": {"$numberLong": "1048576"},
				"validator": {"action": {"$exists": true}}, "validationLevel": "moderate"}`),
		}},
	},
	{
		name:  "drop",
		entry: realdocs.OplogDrop,
		want:  []Event{{Op: Drop, NS: ns("shop.orders"), ClusterTime: ts(1700000022, 1)}},
	},
	{
		name:  "renameCollection",
		entry: realdocs.OplogRename,
		want:  []Event{{Op: Rename, NS: ns("shop.orders"), To: ns("archive.orders_2023"), ClusterTime: ts(1700000023, 1)}},
	},
	{
		name:  "renameCollection replacing the target",
		entry: realdocs.OplogRenameReplacingTarget,
		want: []Event{{
			Op: Rename, NS: ns("shop.orders_tmp"), To: ns("shop.orders"), DropTarget: true,
			ClusterTime: ts(1700000024, 1),
		}},
	},
	{
		name:  "dropDatabase",
		entry: realdocs.OplogDropDatabase,
		want:  []Event{{Op: DropDatabase, NS: namespace.Namespace{DB: "shop"}, ClusterTime: ts(1700000025, 1)}},
	},
	{
		name:  "createIndexes",
		entry: realdocs.OplogCreateIndexes,
		want: []Event{{
			Op: CreateIndexes, NS: ns("shop.orders"), ClusterTime: ts(1700000026, 1),
			Indexes: []bson.Raw{ejson(`{"v": 2, "key": {"sku": 1}, "name": "sku_1"}`)},
		}},
	},
	{
		// A two-phase index build (4.4+) logs startIndexBuild, then commitIndexBuild or
		// abortIndexBuild; only the commit creates anything.
		name: "startIndexBuild",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"startIndexBuild": "orders", "indexBuildUUID": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			      "indexes": [{"v": 2, "key": {"customerId": 1, "createdAt": -1}, "name": "customerId_1_createdAt_-1"}]},
			"ts": {"$timestamp": {"t": 1700000027, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:21Z"}
		}`,
	},
	{
		name:  "commitIndexBuild",
		entry: realdocs.OplogCommitIndexBuild,
		want: []Event{{
			Op: CreateIndexes, NS: ns("shop.orders"), ClusterTime: ts(1700000028, 1),
			Indexes: []bson.Raw{
				ejson(`{"v": 2, "key": {"customerId": 1, "createdAt": -1}, "name": "customerId_1_createdAt_-1"}`),
				ejson(`{"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}`),
			},
		}},
	},
	{
		name: "abortIndexBuild",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"abortIndexBuild": "orders", "indexBuildUUID": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			      "indexes": [{"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}],
			      "cause": {"ok": 0, "code": 11000, "codeName": "DuplicateKey", "errmsg": "E11000 duplicate key error"}},
			"ts": {"$timestamp": {"t": 1700000029, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:23Z"}
		}`,
	},
	{
		name:  "dropIndexes",
		entry: realdocs.OplogDropIndexes,
		want:  []Event{{Op: DropIndexes, NS: ns("shop.orders"), ClusterTime: ts(1700000030, 1), IndexNames: []string{"sku_1"}}},
	},
	{
		name:  "collMod of an index",
		entry: realdocs.OplogCollModIndex,
		want: []Event{{
			Op: CollMod, NS: ns("shop.orders"), ClusterTime: ts(1700000031, 1),
			Options: ejson(`{"index": {"name": "sku_1", "hidden": true}}`),
		}},
	},
	{
		name:  "collMod of the validator",
		entry: realdocs.OplogCollModValidator,
		want: []Event{{
			Op: CollMod, NS: ns("shop.orders"), ClusterTime: ts(1700000032, 1),
			Options: ejson(`{"validator": {"$jsonSchema": {"required": ["customerId"]}}, "validationAction": "warn"}`),
		}},
	},
	{
		// OpObserverImpl::onEmptyCapped.
		name: "emptycapped is unsupported",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
			"o": {"emptycapped": "audit"},
			"ts": {"$timestamp": {"t": 1700000033, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:27Z"}
		}`,
		want: []Event{{
			Op: Unsupported, NS: namespace.Namespace{DB: "shop"}, ClusterTime: ts(1700000033, 1),
			Description: `emptycapped command on database shop: {"emptycapped": "audit"}`,
		}},
	},
	{
		// Servers before 4.2 logged convertToCapped as a command of its own.
		name: "convertToCapped is unsupported",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"o": {"convertToCapped": "log", "size": 100000},
			"ts": {"$timestamp": {"t": 1700000034, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:28Z"}
		}`,
		want: []Event{{
			Op: Unsupported, NS: namespace.Namespace{DB: "shop"}, ClusterTime: ts(1700000034, 1),
			Description: `convertToCapped command on database shop: {"convertToCapped": "log","size": {"$numberInt":"100000"}}`,
		}},
	},
	{
		// An op letter this reader does not know (here the "db" op of servers before 3.0,
		// declaring a database).
		name:  "unknown op",
		entry: `{"op": "db", "ns": "shop", "ts": {"$timestamp": {"t": 1700000034, "i": 2}}, "h": {"$numberLong": "0"}, "v": 2}`,
		want:  []Event{{Op: Unsupported, ClusterTime: ts(1700000034, 2), Description: `oplog op "db" on "shop"`}},
	},
	{
		// The primary's periodic no-op (OpObserverImpl::onInternalOpMessage) that keeps the
		// oplog moving on an idle replica set.
		name: "no-op",
		entry: `{
			"op": "n", "ns": "",
			"o": {"msg": "periodic noop"},
			"ts": {"$timestamp": {"t": 1700000035, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:29Z"}
		}`,
	},
	{
		// A chunk migration copying a document to this shard: the cluster as a whole did not
		// change.
		name: "insert from a chunk migration",
		entry: `{
			"op": "i", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"_id": 40, "customerId": 11}, "o2": {"customerId": 11, "_id": 40},
			"fromMigrate": true,
			"ts": {"$timestamp": {"t": 1700000036, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:30Z"}
		}`,
	},
}

func TestFromOplogReadsServerEntries(t *testing.T) {
	for _, tc := range oplogCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromOplog(ejson(tc.entry))
			if err != nil {
				t.Fatalf("FromOplog: %v", err)
			}
			checkEvents(t, got, tc.want)
		})
	}
}

func TestFromOplogCopiesTheCallersBytes(t *testing.T) {
	entry := ejson(oplogCases[5].entry) // the nested diff: values point into the entry
	events, err := FromOplog(entry)
	if err != nil {
		t.Fatal(err)
	}
	want := render(events)
	for i := range entry {
		entry[i] = 0
	}
	if got := render(events); got != want {
		t.Fatalf("the events changed with the caller's buffer:\n%s\nwere:\n%s", got, want)
	}
}

// malformedOplogCases are entries that are not what their format promises, with what the
// error must say.
var malformedOplogCases = []struct {
	name, entry, want string
}{
	{"not BSON", "", "an oplog entry is malformed: it has 0 bytes"},
	{
		"no op",
		`{"ns": "shop.orders", "o": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`an oplog entry is malformed: its field "op" is missing`,
	},
	{
		"no ts",
		`{"op": "i", "ns": "shop.orders", "o": {"_id": 1}}`,
		`an oplog entry is malformed: its field "ts" is missing`,
	},
	{
		"no ns",
		`{"op": "i", "o": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`the oplog entry at Timestamp(1, 1) is malformed: its field "ns" is missing`,
	},
	{
		"ns without a collection",
		`{"op": "d", "ns": "shop", "o": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "ns" is "shop", not a namespace database.collection`,
	},
	{
		"o of the wrong type",
		`{"op": "i", "ns": "shop.orders", "o": "hello", "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o" is a string, not a document`,
	},
	{
		"insert without _id",
		`{"op": "i", "ns": "shop.orders", "o": {"sku": "A-1"}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o" has no _id`,
	},
	{
		"delete without _id",
		`{"op": "d", "ns": "shop.orders", "o": {}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o" has no _id`,
	},
	{
		"update without o2",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": 2, "diff": {"u": {"a": 1}}}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o2" is missing`,
	},
	{
		"$v:2 without a diff",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": 2}, "o2": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.diff" is missing`,
	},
	{
		"$v that is no version",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": "two"}, "o2": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.$v" is "two", not an update format version`,
	},
	{
		"diff section of the wrong type",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": 2, "diff": {"u": 5}}, "o2": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.diff.u" is a number, not a document`,
	},
	{
		"array diff that is not marked true",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": 2, "diff": {"sitems": {"a": false, "u0": 1}}}, "o2": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.diff.sitems.a" is false, but an array diff starts with a: true`,
	},
	{
		"array diff with a bad index",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": 2, "diff": {"sitems": {"a": true, "ux": 1}}}, "o2": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.diff.sitems.ux" names no array index`,
	},
	{
		"array diff with a negative length",
		`{"op": "u", "ns": "shop.orders", "o": {"$v": 2, "diff": {"sitems": {"a": true, "l": -1}}}, "o2": {"_id": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.diff.sitems.l" is {"$numberInt":"-1"}, not an array length`,
	},
	{
		"command without a command",
		`{"op": "c", "ns": "shop.$cmd", "o": {}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o" is empty, so it names no command`,
	},
	{
		"drop naming no collection",
		`{"op": "c", "ns": "shop.$cmd", "o": {"drop": 1}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.drop" is a number, not a string`,
	},
	{
		"rename to nowhere",
		`{"op": "c", "ns": "shop.$cmd", "o": {"renameCollection": "shop.a", "to": "b"}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.to" is "b", not a namespace database.collection`,
	},
	{
		"applyOps that is not an array",
		`{"op": "c", "ns": "admin.$cmd", "o": {"applyOps": {"op": "i"}}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.applyOps" is a document, not an array`,
	},
	{
		"applyOps with an inner entry missing its ns",
		`{"op": "c", "ns": "admin.$cmd", "o": {"applyOps": [
			{"op": "i", "ns": "shop.orders", "o": {"_id": 1}},
			{"op": "d", "o": {"_id": 2}}
		]}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`the oplog entry at Timestamp(1, 1) is malformed: its field "o.applyOps.1.ns" is missing`,
	},
	{
		"commitIndexBuild with a spec that is no document",
		`{"op": "c", "ns": "shop.$cmd", "o": {"commitIndexBuild": "orders", "indexes": ["sku_1"]}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`,
		`its field "o.indexes.0" is a string, not a document`,
	},
}

func TestFromOplogNamesWhatIsMalformed(t *testing.T) {
	for _, tc := range malformedOplogCases {
		t.Run(tc.name, func(t *testing.T) {
			var entry bson.Raw
			if tc.entry != "" {
				entry = ejson(tc.entry)
			}
			events, err := FromOplog(entry)
			var malformed *MalformedError
			if !errors.As(err, &malformed) {
				t.Fatalf("FromOplog = %v, %v; want a *MalformedError", render(events), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestFromOplogRefusesTruncatedBytes(t *testing.T) {
	entry := ejson(oplogCases[0].entry)
	for _, cut := range []int{0, 3, 4, 5, len(entry) / 2, len(entry) - 1} {
		if _, err := FromOplog(entry[:cut]); err == nil {
			t.Errorf("FromOplog accepted the first %d of %d bytes", cut, len(entry))
		}
	}
	// A nested document whose length is a lie passes the driver's one-level check.
	nested := ejson(`{"op": "i", "ns": "a.b", "o": {"_id": 1, "x": {"y": 1}}, "ts": {"$timestamp": {"t": 1, "i": 1}}}`)
	broken := append(bson.Raw(nil), nested...)
	at := strings.Index(string(broken), "y\x00") - 1 - 4 // the length of {y: 1}
	broken[at] += 7
	if _, err := FromOplog(broken); err == nil {
		t.Error("FromOplog accepted an entry whose nested document overruns its parent")
	}
}
