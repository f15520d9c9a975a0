package realdocs

// Oplog entries, as a 6.0 or 7.0 server writes them to local.oplog.rs, built as the package
// comment says. Each names the server code (or the older server) that writes its shape.

const (
	// OpObserverImpl::onInserts: o is the document, o2 its document key (5.3+).
	OplogInsert = `{
		"op": "i", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "items": [{"sku": "A-1", "qty": 2}], "status": "new"},
		"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
		"ts": {"$timestamp": {"t": 1700000001, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-14T22:13:21Z"}
	}`

	// A retryable insert into a collection sharded on {customerId: 1}: o2 holds the shard
	// key and _id; the session fields are not part of the event.
	OplogInsertShardedRetryable = `{
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
	}`

	// Before 5.3 an insert had no o2; the key is the document's _id.
	OplogInsertWithoutO2 = `{
		"op": "i", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"_id": 17, "status": "new"},
		"ts": {"$timestamp": {"t": 1700000003, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-14T22:13:23Z"}
	}`

	// OpObserverImpl::onDelete: o is the document key.
	OplogDelete = `{
		"op": "d", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"_id": {"$oid": "6553f1000000000000000001"}},
		"ts": {"$timestamp": {"t": 1700000004, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-14T22:13:24Z"}
	}`

	// {$set: {status: "paid", paidAt: ...}} on a document with a status but no paidAt: the
	// existing field is updated in place (u), the new one appended (i).
	OplogV2DiffSet = `{
		"op": "u", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"$v": 2, "diff": {"u": {"status": "paid"}, "i": {"paidAt": {"$date": "2023-11-14T22:13:25Z"}}}},
		"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
		"ts": {"$timestamp": {"t": 1700000005, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-14T22:13:25Z"}
	}`

	// A pipeline update that touched every kind of section: coupon removed, status and
	// shippedAt set at the top, two fields of the embedded address, and the items array cut
	// to two elements while element 0's qty and all of element 1 changed.
	OplogV2DiffNested = `{
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
	}`

	// {$push: {items: {...}}} onto a two-element array: an array diff setting index 2.
	OplogV2DiffPush = `{
		"op": "u", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"$v": 2, "diff": {"sitems": {"a": true, "u2": {"sku": "D-4", "qty": 1}}}},
		"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
		"ts": {"$timestamp": {"t": 1700000007, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:01Z"}
	}`

	// 4.4 logged updates as $v:1 $set/$unset, with positional paths already resolved.
	OplogV1SetUnset = `{
		"op": "u", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"$v": 1, "$set": {"status": "paid", "address.city": "Berlin", "items.1.qty": 3}, "$unset": {"coupon": true}},
		"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
		"ts": {"$timestamp": {"t": 1700000009, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:03Z"}
	}`

	// 3.6 and 4.0 wrote no $v.
	OplogUpdateWithoutV = `{
		"op": "u", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"$set": {"qty": 4}},
		"o2": {"_id": 17},
		"ts": {"$timestamp": {"t": 1700000010, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:04Z"}
	}`

	// $inc is not idempotent: applied twice it counts twice. MongoDB never logs it, some
	// MongoDB-compatible servers do.
	OplogUpdateInc = `{
		"op": "u", "ns": "shop.stock",
		"o": {"$inc": {"qty": -1}, "$set": {"updatedBy": "web"}},
		"o2": {"_id": "A-1"},
		"ts": {"$timestamp": {"t": 1700000012, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:06Z"}
	}`

	// replaceOne, or an update whose diff would be larger than the document: o is the whole
	// new document.
	OplogReplacement = `{
		"op": "u", "ns": "shop.orders",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"_id": {"$oid": "6553f1000000000000000001"}, "customerId": 7, "status": "cancelled"},
		"o2": {"_id": {"$oid": "6553f1000000000000000001"}},
		"ts": {"$timestamp": {"t": 1700000013, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:07Z"}
	}`

	// A replacement without _id (older or foreign oplogs): the _id comes from o2, first.
	OplogReplacementWithoutID = `{
		"op": "u", "ns": "shop.orders",
		"o": {"customerId": 7, "status": "cancelled"},
		"o2": {"_id": 17},
		"ts": {"$timestamp": {"t": 1700000014, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:08Z"}
	}`

	// An unprepared transaction's commit (OpObserverImpl::onUnpreparedTransactionCommit):
	// one applyOps on admin.$cmd whose inner entries have no ts of their own.
	OplogTransaction = `{
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
	}`

	// A transaction too large for one entry: every entry but the last says partialTxn,
	// and each is read as it comes.
	OplogLargeTransactionPart = `{
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
	}`

	// The last entry of that large transaction: count is the number of operations in all
	// its entries.
	OplogLargeTransactionEnd = `{
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
	}`

	// A prepared transaction (a cross-shard one, on each shard): the applyOps with prepare
	// holds the writes...
	OplogPrepare = `{
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
	}`

	// ...and its commit (logCommitOrAbortForPreparedTransaction) adds nothing.
	OplogCommitPrepared = `{
		"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
		         "uid": {"$binary": {"base64": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "subType": "00"}}},
		"txnNumber": {"$numberLong": "7"},
		"op": "c", "ns": "admin.$cmd",
		"o": {"commitTransaction": 1, "commitTimestamp": {"$timestamp": {"t": 1700000017, "i": 5}}},
		"ts": {"$timestamp": {"t": 1700000017, "i": 6}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:11Z"},
		"prevOpTime": {"ts": {"$timestamp": {"t": 1700000017, "i": 1}}, "t": {"$numberLong": "1"}}
	}`

	// DDL inside a transaction (4.4+): the create and the index are inner command entries
	// on the database's $cmd.
	OplogTransactionWithDDL = `{
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
	}`

	// A batched multi-delete (6.0+, OpObserverImpl::onBatchedWriteCommit): an applyOps
	// without session fields. An inner entry marked fromMigrate (range deletion after a
	// chunk moved) is skipped on its own.
	OplogBatchedDeletes = `{
		"op": "c", "ns": "admin.$cmd",
		"o": {"applyOps": [
			{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}}, "o": {"_id": 1}},
			{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}}, "o": {"_id": 2}, "fromMigrate": true},
			{"op": "d", "ns": "shop.carts", "ui": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}}, "o": {"_id": 3}}
		]},
		"ts": {"$timestamp": {"t": 1700000019, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:13Z"}
	}`

	// OpObserverImpl::onCreateCollection: the create command with the collection's options
	// and its _id index.
	OplogCreate = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"create": "orders", "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
		"ts": {"$timestamp": {"t": 1700000020, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:14Z"}
	}`

	// OpObserverImpl::onCreateCollection, as for OplogCreate, for a capped collection with a
	// validator: the options stand in the create command beside the collection's name.
	OplogCreateCappedWithValidator = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}},
		"o": {"create": "audit", "capped": true, "size": {"$numberLong": "1048576"},
		      "validator": {"action": {"$exists": true}}, "validationLevel": "moderate",
		      "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}},
		"ts": {"$timestamp": {"t": 1700000021, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:15Z"}
	}`

	// OpObserverImpl::onDropCollection: o2 counts the records dropped.
	OplogDrop = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"drop": "orders"}, "o2": {"numRecords": 12},
		"ts": {"$timestamp": {"t": 1700000022, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:16Z"}
	}`

	// OpObserverImpl::preRenameCollection: logged on the source database's $cmd, with
	// stayTemp always and dropTarget only when a collection was replaced.
	OplogRename = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"renameCollection": "shop.orders", "to": "archive.orders_2023", "stayTemp": false},
		"ts": {"$timestamp": {"t": 1700000023, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:17Z"}
	}`

	// OpObserverImpl::preRenameCollection, as for OplogRename, for a rename that replaced a
	// collection: dropTarget is that collection's UUID, and o2 counts the records dropped with it.
	OplogRenameReplacingTarget = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"renameCollection": "shop.orders_tmp", "to": "shop.orders", "stayTemp": false,
		      "dropTarget": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}}},
		"o2": {"numRecords": 3},
		"ts": {"$timestamp": {"t": 1700000024, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:18Z"}
	}`

	// OpObserverImpl::onDropDatabase, after one drop entry per collection.
	OplogDropDatabase = `{
		"op": "c", "ns": "shop.$cmd",
		"o": {"dropDatabase": 1},
		"ts": {"$timestamp": {"t": 1700000025, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:19Z"}
	}`

	// An index built on an empty collection (or in a transaction): one entry per index,
	// the spec inline.
	OplogCreateIndexes = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"createIndexes": "orders", "v": 2, "key": {"sku": 1}, "name": "sku_1"},
		"ts": {"$timestamp": {"t": 1700000026, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:20Z"}
	}`

	// A two-phase index build (4.4+) logs startIndexBuild, then commitIndexBuild or
	// abortIndexBuild; only the commit creates anything. This is the commit.
	OplogCommitIndexBuild = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"commitIndexBuild": "orders", "indexBuildUUID": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}},
		      "indexes": [{"v": 2, "key": {"customerId": 1, "createdAt": -1}, "name": "customerId_1_createdAt_-1"},
		                  {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}]},
		"ts": {"$timestamp": {"t": 1700000028, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:22Z"}
	}`

	// OpObserverImpl::onDropIndex: one entry per index, o2 the dropped spec.
	OplogDropIndexes = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"dropIndexes": "orders", "index": "sku_1"},
		"o2": {"v": 2, "key": {"sku": 1}, "name": "sku_1"},
		"ts": {"$timestamp": {"t": 1700000030, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:24Z"}
	}`

	// OpObserverImpl::onCollMod: o is the command (index normalised to its name), o2 the
	// options it replaced.
	OplogCollModIndex = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"collMod": "orders", "index": {"name": "sku_1", "hidden": true}},
		"o2": {"collectionOptions_old": {"uuid": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}}},
		       "indexOptions_old": {"hidden": false}},
		"ts": {"$timestamp": {"t": 1700000031, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:25Z"}
	}`

	// OpObserverImpl::onCollMod, as for OplogCollModIndex, for a collMod of the validator: o2
	// holds only the collection's UUID.
	OplogCollModValidator = `{
		"op": "c", "ns": "shop.$cmd",
		"ui": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"o": {"collMod": "orders", "validator": {"$jsonSchema": {"required": ["customerId"]}}, "validationAction": "warn"},
		"o2": {"collectionOptions_old": {"uuid": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}}}},
		"ts": {"$timestamp": {"t": 1700000032, "i": 1}}, "t": {"$numberLong": "1"}, "v": {"$numberLong": "2"},
		"wall": {"$date": "2023-11-15T08:00:26Z"}
	}`
)
