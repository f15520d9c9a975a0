package realdocs

// Command replies, as a 6.0 or 7.0 replica set member sends them.

const (
	// ReplyCollectionUUIDMismatch answers {find: "coll_2", collectionUUID: <coll's UUID>} in
	// database "test", where the UUID belongs to collection "coll" (jstests/core/collection_uuid_find.js,
	// requires_fcv_60, asserts db, collectionUUID, expectedCollection and actualCollection). Built as
	// the server builds an error reply: ok, errmsg, code, codeName, then the error's extra info in
	// the order CollectionUUIDMismatchInfo::serialize appends it
	// (src/mongo/db/catalog/collection_uuid_mismatch_info.cpp), then the replica set's $clusterTime
	// and operationTime. errmsg is the one checkCollectionUUIDMismatch gives.
	ReplyCollectionUUIDMismatch = `{
		"ok": 0.0,
		"errmsg": "Collection UUID does not match that specified",
		"code": 361,
		"codeName": "CollectionUUIDMismatch",
		"db": "test",
		"collectionUUID": {"$binary": {"base64": "mARqGrZJTlucdWdZQiHOGQ==", "subType": "04"}},
		"expectedCollection": "coll_2",
		"actualCollection": "coll",
		"$clusterTime": {"clusterTime": {"$timestamp": {"t": 1700000123, "i": 1}},
			"signature": {"hash": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "subType": "00"}}, "keyId": 0}},
		"operationTime": {"$timestamp": {"t": 1700000123, "i": 1}}
	}`

	// ReplyCollectionUUIDMismatchNoCollection is the same reply when no collection of the database
	// has the UUID (dropped; or in another database, which actualCollection never names): the same
	// test asserts actualCollection null, as serialize writes it (appendNull).
	ReplyCollectionUUIDMismatchNoCollection = `{
		"ok": 0.0,
		"errmsg": "Collection UUID does not match that specified",
		"code": 361,
		"codeName": "CollectionUUIDMismatch",
		"db": "test",
		"collectionUUID": {"$binary": {"base64": "BrztN3zIQmeWqqWKQiFT2A==", "subType": "04"}},
		"expectedCollection": "coll",
		"actualCollection": null,
		"$clusterTime": {"clusterTime": {"$timestamp": {"t": 1700000124, "i": 1}},
			"signature": {"hash": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "subType": "00"}}, "keyId": 0}},
		"operationTime": {"$timestamp": {"t": 1700000124, "i": 1}}
	}`
)
