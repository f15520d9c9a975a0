package changeevent

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// MongoDB documents no reference page for oplog entries; the entries below have the shape a 6.0 or
// 7.0 server writes to local.oplog.rs, as db.getSiblingDB("local").oplog.rs.find() prints them in
// relaxed Extended JSON. Each names where its shape comes from in the server's source:
// src/mongo/db/repl/oplog_entry.idl (the common fields ts, t, v, wall, ui, lsid, txnNumber, stmtId,
// prevOpTime), src/mongo/db/op_observer/op_observer_impl.cpp (what each write and command logs),
// src/mongo/db/update/document_diff_serialization.h (the $v:2 diff) and jstests that assert on
// oplog contents.
type oplogCase struct {
	name  string
	entry string
	want  []Event
}

var oplogCases = []oplogCase{
	{
		// OpObserverImpl::onInserts: o is the document, o2 its document key (5.3+).
		name: "insert",
		entry: `{
			"op": "i", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "items": [{"sku": "A-1", "qty": 2}], "status": "new"},
			"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000001, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-14T22:13:21Z"}
		}`,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000001, 1),
			DocumentKey:  ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "items": [{"sku": "A-1", "qty": 2}], "status": "new"}`),
		}},
	},
	{
		// A retryable insert into a collection sharded on {customerId: 1}: o2 holds the shard
		// key and _id; the session fields are not part of the event.
		name: "insert into a sharded collection, retryable",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "3"},
			"op": "i", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"_id": {"$oid": "6553f1000000000000000002"}, "customerId": 9, "status": "new"},
			"o2": {"customerId": 9, "_id": {"$oid": "6553f1000000000000000002"}},
			"stmtId": 0,
			"ts": {"$timestamp": {"t": 1700000002, "i": 4}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-14T22:13:22Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 0, "i": 0}}, "t": {"$numberLong": "-1"}}
		}`,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000002, 4),
			DocumentKey:  ejson(`{"customerId": 9, "_id": {"$oid": "6553f1000000000000000002"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "6553f1000000000000000002"}, "customerId": 9, "status": "new"}`),
		}},
	},
	{
		// Before 5.3 an insert had no o2; the key is the document's _id.
		name: "insert without o2",
		entry: `{
			"op": "i", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"_id": 17, "status": "new"},
			"ts": {"$timestamp": {"t": 1700000003, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-14T22:13:23Z"}
		}`,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000003, 1),
			DocumentKey:  ejson(`{"_id": 17}`),
			FullDocument: ejson(`{"_id": 17, "status": "new"}`),
		}},
	},
	{
		// OpObserverImpl::onDelete: o is the document key.
		name: "delete",
		entry: `{
			"op": "d", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000004, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-14T22:13:24Z"}
		}`,
		want: []Event{{
			Op: Delete, NS: ns("shop.orders"), ClusterTime: ts(1700000004, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
		}},
	},
	{
		// {$set: {status: "paid", paidAt: ...}} on a document with a status but no paidAt: the
		// existing field is updated in place (u), the new one appended (i).
		name: "update, $v:2",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"$v": 2, "diff": {"u": {"status": "paid"}, "i": {"paidAt": {"$date": "2023-11-14T22:13:25Z"}}}},
			"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000005, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-14T22:13:25Z"}
		}`,
		want: []Event{{
			Op: Update, NS: ns("shop.orders"), ClusterTime: ts(1700000005, 1),
			DocumentKey: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			Update:      &UpdateDescription{Set: setOf(`{"status": "paid", "paidAt": {"$date": "2023-11-14T22:13:25Z"}}`)},
		}},
	},
	{
		// A pipeline update that touched every kind of section: coupon removed, status and
		// shippedAt set at the top, two fields of the embedded address, and the items array cut
		// to two elements while element 0's qty and all of element 1 changed.
		name: "update, $v:2 with nested and array sub-diffs",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"$v": 2, "diff": {
				"d": {"coupon": false},
				"u": {"status": "shipped"},
				"i": {"shippedAt": {"$date": "2023-11-15T08:00:00Z"}},
				"saddress": {"u": {"zip": "10115"}, "i": {"floor": 3}},
				"sitems": {"a": true, "l": 2, "s0": {"u": {"qty": 5}}, "u1": {"sku": "C-3", "qty": 1}}
			}},
			"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000006, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:00Z"}
		}`,
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
		// {$push: {items: {...}}} onto a two-element array: an array diff setting index 2.
		name: "update, $v:2 push",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"$v": 2, "diff": {"sitems": {"a": true, "u2": {"sku": "D-4", "qty": 1}}}},
			"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000007, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:01Z"}
		}`,
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
		// 4.4 logged updates as $v:1 $set/$unset, with positional paths already resolved.
		name: "update, $v:1",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"$v": 1, "$set": {"status": "paid", "address.city": "Berlin", "items.1.qty": 3}, "$unset": {"coupon": true}},
			"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000009, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:03Z"}
		}`,
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
		// 3.6 and 4.0 wrote no $v.
		name: "update without $v",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"$set": {"qty": 4}},
			"o2": {"_id": 17},
			"ts": {"$timestamp": {"t": 1700000010, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:04Z"}
		}`,
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
		// $inc is not idempotent: applied twice it counts twice. MongoDB never logs it, some
		// MongoDB-compatible servers do.
		name: "update with $inc is a refresh",
		entry: `{
			"op": "u", "ns": "shop.stock",
			"o": {"$inc": {"qty": -1}, "$set": {"updatedBy": "web"}},
			"o2": {"_id": "A-1"},
			"ts": {"$timestamp": {"t": 1700000012, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:06Z"}
		}`,
		want: []Event{{
			Op: Update, NS: ns("shop.stock"), ClusterTime: ts(1700000012, 1),
			DocumentKey: ejson(`{"_id": "A-1"}`),
		}},
	},
	{
		// replaceOne, or an update whose diff would be larger than the document: o is the whole
		// new document.
		name: "replacement",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "cancelled"},
			"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
			"ts": {"$timestamp": {"t": 1700000013, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:07Z"}
		}`,
		want: []Event{{
			Op: Replace, NS: ns("shop.orders"), ClusterTime: ts(1700000013, 1),
			DocumentKey:  ejson(`{"_id": {"$oid": "6553f1000000000000000001"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "cancelled"}`),
		}},
	},
	{
		// A replacement without _id (older or foreign oplogs): the _id comes from o2, first.
		name: "replacement without _id",
		entry: `{
			"op": "u", "ns": "shop.orders",
			"o": {"customerId": 7, "status": "cancelled"},
			"o2": {"_id": 17},
			"ts": {"$timestamp": {"t": 1700000014, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:08Z"}
		}`,
		want: []Event{{
			Op: Replace, NS: ns("shop.orders"), ClusterTime: ts(1700000014, 1),
			DocumentKey:  ejson(`{"_id": 17}`),
			FullDocument: ejson(`{"_id": 17, "customerId": 7, "status": "cancelled"}`),
		}},
	},
	{
		// An unprepared transaction's commit (OpObserverImpl::onUnpreparedTransactionCommit):
		// one applyOps on admin.$cmd whose inner entries have no ts of their own.
		name: "transaction",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "5"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"applyOps": [
				{"op": "i", "ns": "shop.orders", "ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
				 "o": {"_id": 21, "sku": "A-1", "qty": 1}, "o2": {"_id": 21}},
				{"op": "u", "ns": "shop.stock", "ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
				 "o": {"$v": 2, "diff": {"u": {"qty": 8}}}, "o2": {"_id": "A-1"}},
				{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}},
				 "o": {"_id": {"$oid": "6553f1000000000000000009"}}}
			]},
			"ts": {"$timestamp": {"t": 1700000015, "i": 2}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:09Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 0, "i": 0}}, "t": {"$numberLong": "-1"}}
		}`,
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
		// A transaction too large for one entry: every entry but the last says partialTxn,
		// and each is read as it comes.
		name: "part of a large transaction",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "6"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"applyOps": [
				{"op": "i", "ns": "shop.orders", "ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
				 "o": {"_id": 31}, "o2": {"_id": 31}}
			], "partialTxn": true},
			"ts": {"$timestamp": {"t": 1700000016, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:10Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 0, "i": 0}}, "t": {"$numberLong": "-1"}}
		}`,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000016, 1),
			DocumentKey: ejson(`{"_id": 31}`), FullDocument: ejson(`{"_id": 31}`),
		}},
	},
	{
		// The last entry of that large transaction: count is the number of operations in all
		// its entries.
		name: "end of a large transaction",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "6"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"applyOps": [
				{"op": "i", "ns": "shop.orders", "ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
				 "o": {"_id": 32}, "o2": {"_id": 32}}
			], "count": {"$numberLong": "2"}},
			"ts": {"$timestamp": {"t": 1700000016, "i": 2}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:10Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 1700000016, "i": 1}}, "t": {"$numberLong": "1"}}
		}`,
		want: []Event{{
			Op: Insert, NS: ns("shop.orders"), ClusterTime: ts(1700000016, 2),
			DocumentKey: ejson(`{"_id": 32}`), FullDocument: ejson(`{"_id": 32}`),
		}},
	},
	{
		// A prepared transaction (a cross-shard one, on each shard): the applyOps with prepare
		// holds the writes...
		name: "prepare of a prepared transaction",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "7"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"applyOps": [
				{"op": "u", "ns": "shop.stock", "ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
				 "o": {"$v": 2, "diff": {"u": {"qty": 7}}}, "o2": {"_id": "A-1"}}
			], "prepare": true},
			"ts": {"$timestamp": {"t": 1700000017, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:11Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 0, "i": 0}}, "t": {"$numberLong": "-1"}}
		}`,
		want: []Event{{
			Op: Update, NS: ns("shop.stock"), ClusterTime: ts(1700000017, 1),
			DocumentKey: ejson(`{"_id": "A-1"}`),
			Update:      &UpdateDescription{Set: setOf(`{"qty": 7}`)},
		}},
	},
	{
		// ...and its commit (logCommitOrAbortForPreparedTransaction) adds nothing.
		name: "commit of a prepared transaction",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "7"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"commitTransaction": 1, "commitTimestamp": {"$timestamp": {"t": 1700000017, "i": 5}}},
			"ts": {"$timestamp": {"t": 1700000017, "i": 6}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:11Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 1700000017, "i": 1}}, "t": {"$numberLong": "1"}}
		}`,
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
		// DDL inside a transaction (4.4+): the create and the index are inner command entries
		// on the database's $cmd.
		name: "transaction creating a collection and an index",
		entry: `{
			"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
			"txnNumber": {"$numberLong": "9"},
			"op": "c", "ns": "admin.$cmd",
			"o": {"applyOps": [
				{"op": "c", "ns": "shop.$cmd", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}},
				 "o": {"create": "returns", "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}},
				{"op": "c", "ns": "shop.$cmd", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}},
				 "o": {"createIndexes": "returns", "v": 2, "key": {"orderId": 1}, "name": "orderId_1"}},
				{"op": "i", "ns": "shop.returns", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}},
				 "o": {"_id": 1, "orderId": 21}, "o2": {"_id": 1}}
			]},
			"ts": {"$timestamp": {"t": 1700000018, "i": 7}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:12Z"},
			"prevOpTime": {"ts": {"$timestamp": {"t": 0, "i": 0}}, "t": {"$numberLong": "-1"}}
		}`,
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
		// A batched multi-delete (6.0+, OpObserverImpl::onBatchedWriteCommit): an applyOps
		// without session fields. An inner entry marked fromMigrate (range deletion after a
		// chunk moved) is skipped on its own.
		name: "batched write with a migration delete inside",
		entry: `{
			"op": "c", "ns": "admin.$cmd",
			"o": {"applyOps": [
				{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}}, "o": {"_id": 1}},
				{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}}, "o": {"_id": 2}, "fromMigrate": true},
				{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}}, "o": {"_id": 3}}
			]},
			"ts": {"$timestamp": {"t": 1700000019, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:13Z"}
		}`,
		want: []Event{
			{Op: Delete, NS: ns("shop.carts"), ClusterTime: ts(1700000019, 1), DocumentKey: ejson(`{"_id": 1}`)},
			{Op: Delete, NS: ns("shop.carts"), ClusterTime: ts(1700000019, 1), DocumentKey: ejson(`{"_id": 3}`)},
		},
	},
	{
		// OpObserverImpl::onCreateCollection: the create command with the collection's options
		// and its _id index.
		name: "create",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"create": "orders", "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
			"ts": {"$timestamp": {"t": 1700000020, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:14Z"}
		}`,
		want: []Event{{Op: Create, NS: ns("shop.orders"), ClusterTime: ts(1700000020, 1), Options: ejson(`{}`)}},
	},
	{
		name: "create a capped collection with a validator",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
			"o": {"create": "audit", "capped": true, "size": {"$numberLong": "1048576"},
			      "validator": {"action": {"$exists": true}}, "validationLevel": "moderate",
			      "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
			"ts": {"$timestamp": {"t": 1700000021, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:15Z"}
		}`,
		want: []Event{{
			Op: Create, NS: ns("shop.audit"), ClusterTime: ts(1700000021, 1),
			Options: ejson(`{"capped": true, "size": {"$numberLong": "1048576"},
				"validator": {"action": {"$exists": true}}, "validationLevel": "moderate"}`),
		}},
	},
	{
		// OpObserverImpl::onDropCollection: o2 counts the records dropped.
		name: "drop",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"drop": "orders"}, "o2": {"numRecords": 12},
			"ts": {"$timestamp": {"t": 1700000022, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:16Z"}
		}`,
		want: []Event{{Op: Drop, NS: ns("shop.orders"), ClusterTime: ts(1700000022, 1)}},
	},
	{
		// OpObserverImpl::preRenameCollection: logged on the source database's $cmd, with
		// stayTemp always and dropTarget only when a collection was replaced.
		name: "renameCollection",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"renameCollection": "shop.orders", "to": "archive.orders_2023", "stayTemp": false},
			"ts": {"$timestamp": {"t": 1700000023, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:17Z"}
		}`,
		want: []Event{{Op: Rename, NS: ns("shop.orders"), To: ns("archive.orders_2023"), ClusterTime: ts(1700000023, 1)}},
	},
	{
		name: "renameCollection replacing the target",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"renameCollection": "shop.orders_tmp", "to": "shop.orders", "stayTemp": false,
			      "dropTarget": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}}},
			"o2": {"numRecords": 3},
			"ts": {"$timestamp": {"t": 1700000024, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:18Z"}
		}`,
		want: []Event{{
			Op: Rename, NS: ns("shop.orders_tmp"), To: ns("shop.orders"), DropTarget: true,
			ClusterTime: ts(1700000024, 1),
		}},
	},
	{
		// OpObserverImpl::onDropDatabase, after one drop entry per collection.
		name: "dropDatabase",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"o": {"dropDatabase": 1},
			"ts": {"$timestamp": {"t": 1700000025, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:19Z"}
		}`,
		want: []Event{{Op: DropDatabase, NS: namespace.Namespace{DB: "shop"}, ClusterTime: ts(1700000025, 1)}},
	},
	{
		// An index built on an empty collection (or in a transaction): one entry per index,
		// the spec inline.
		name: "createIndexes",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"createIndexes": "orders", "v": 2, "key": {"sku": 1}, "name": "sku_1"},
			"ts": {"$timestamp": {"t": 1700000026, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:20Z"}
		}`,
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
		name: "commitIndexBuild",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"commitIndexBuild": "orders", "indexBuildUUID": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
			      "indexes": [{"v": 2, "key": {"customerId": 1, "createdAt": -1}, "name": "customerId_1_createdAt_-1"},
			                  {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}]},
			"ts": {"$timestamp": {"t": 1700000028, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:22Z"}
		}`,
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
		// OpObserverImpl::onDropIndex: one entry per index, o2 the dropped spec.
		name: "dropIndexes",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"dropIndexes": "orders", "index": "sku_1"},
			"o2": {"v": 2, "key": {"sku": 1}, "name": "sku_1"},
			"ts": {"$timestamp": {"t": 1700000030, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:24Z"}
		}`,
		want: []Event{{Op: DropIndexes, NS: ns("shop.orders"), ClusterTime: ts(1700000030, 1), IndexNames: []string{"sku_1"}}},
	},
	{
		// OpObserverImpl::onCollMod: o is the command (index normalised to its name), o2 the
		// options it replaced.
		name: "collMod of an index",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"collMod": "orders", "index": {"name": "sku_1", "hidden": true}},
			"o2": {"collectionOptions_old": {"uuid": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}}},
			       "indexOptions_old": {"hidden": false}},
			"ts": {"$timestamp": {"t": 1700000031, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:25Z"}
		}`,
		want: []Event{{
			Op: CollMod, NS: ns("shop.orders"), ClusterTime: ts(1700000031, 1),
			Options: ejson(`{"index": {"name": "sku_1", "hidden": true}}`),
		}},
	},
	{
		name: "collMod of the validator",
		entry: `{
			"op": "c", "ns": "shop.$cmd",
			"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
			"o": {"collMod": "orders", "validator": {"$jsonSchema": {"required": ["customerId"]}}, "validationAction": "warn"},
			"o2": {"collectionOptions_old": {"uuid": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}}}},
			"ts": {"$timestamp": {"t": 1700000032, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
			"wall": {"$date": "2023-11-15T08:00:26Z"}
		}`,
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
