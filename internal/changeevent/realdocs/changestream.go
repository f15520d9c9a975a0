package realdocs

// Change stream events, as a 6.0 or 7.0 server sends them to a change stream cursor: the examples
// of MongoDB's "Change Events" reference pages, completed and, where a page has no example, built
// as the package comment says. Each says which page (or which server code) it comes from.

const (
	// change-events/insert: the example on a collection sharded on {userName, _id}.
	ChangeStreamInsert = `{
		"_id": {"_data": "82642AD66B000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "insert",
		"clusterTime": {"$timestamp": {"t": 1680529003, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:36:43Z"},
		"ns": {"db": "engineering", "coll": "users"},
		"documentKey": {"userName": "alice123", "_id": {"$oid": "599af247bb69cd89961c986d"}},
		"fullDocument": {"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}
	}`

	// change-events/update: the fullDocument: updateLookup example, which (with expanded
	// events) carries an empty disambiguatedPaths. The looked-up fullDocument is not the
	// update's result and is not carried.
	ChangeStreamUpdateTruncatedArrays = `{
		"_id": {"_data": "82642AD673000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "update",
		"clusterTime": {"$timestamp": {"t": 1680529011, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:36:51Z"},
		"ns": {"db": "engineering", "coll": "users"},
		"documentKey": {"_id": {"$oid": "58a4eb4a30c75625e00d2820"}},
		"updateDescription": {
			"updatedFields": {"email": "alice@10gen.com"},
			"removedFields": ["phoneNumber"],
			"truncatedArrays": [{"field": "vacation_time", "newSize": 36}],
			"disambiguatedPaths": {}
		},
		"fullDocument": {
			"_id": {"$oid": "58a4eb4a30c75625e00d2820"}, "name": "Alice", "userName": "alice123",
			"email": "alice@10gen.com", "team": "replication"
		}
	}`

	// showRawUpdateDescription (internal; mongosync opens streams with it) sends the oplog
	// entry's o as rawUpdateDescription, read like the oplog's.
	ChangeStreamRawUpdateDescription = `{
		"_id": {"_data": "82642AD673000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "update",
		"clusterTime": {"$timestamp": {"t": 1680529011, "i": 1}},
		"ns": {"db": "engineering", "coll": "users"},
		"documentKey": {"_id": {"$oid": "58a4eb4a30c75625e00d2820"}},
		"rawUpdateDescription": {"$v": 2, "diff": {"d": {"phoneNumber": false}, "u": {"email": "alice@10gen.com"}, "svacation_time": {"a": true, "l": 36}}}
	}`

	// change-events/update, "Array Updates": the second $push, reported on the new index.
	// (The page's documentKey shows only student_id; a server always includes _id.)
	ChangeStreamUpdateArrayElement = `{
		"_id": {"_data": "82642AD674000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "update",
		"clusterTime": {"$timestamp": {"t": 1680529012, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:36:52Z"},
		"ns": {"db": "communication_chat", "coll": "students"},
		"documentKey": {"_id": {"$oid": "642ad66b5dc4b11bea5f4319"}},
		"updateDescription": {"updatedFields": {"scores.1": 0.94}, "removedFields": [], "truncatedArrays": []}
	}`

	// change-events/update, "Path Disambiguation": a field named "home.town".
	ChangeStreamUpdateDottedField = `{
		"_id": {"_data": "82642AD675000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "update",
		"clusterTime": {"$timestamp": {"t": 1680529013, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:36:53Z"},
		"ns": {"db": "engineering", "coll": "people"},
		"documentKey": {"_id": 1},
		"updateDescription": {
			"updatedFields": {"home.town": "London"},
			"removedFields": [],
			"truncatedArrays": [],
			"disambiguatedPaths": {"home.town": ["home.town"]}
		}
	}`

	// change-events/update, "Path Disambiguation": field "0" of element 0 of residences.
	ChangeStreamUpdateBelowNumericField = `{
		"_id": {"_data": "82642AD676000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "update",
		"clusterTime": {"$timestamp": {"t": 1680529014, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:36:54Z"},
		"ns": {"db": "engineering", "coll": "people"},
		"documentKey": {"_id": 1},
		"updateDescription": {
			"updatedFields": {"residences.0.0": "London"},
			"removedFields": [],
			"truncatedArrays": [],
			"disambiguatedPaths": {"residences.0.0": ["residences", 0, "0"]}
		}
	}`

	// change-events/replace.
	ChangeStreamReplace = `{
		"_id": {"_data": "82642AD67C000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "replace",
		"clusterTime": {"$timestamp": {"t": 1680529020, "i": 1}},
		"ns": {"db": "engineering", "coll": "users"},
		"documentKey": {"_id": {"$oid": "599af247bb69cd89961c986d"}},
		"fullDocument": {"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}
	}`

	// change-events/delete.
	ChangeStreamDelete = `{
		"_id": {"_data": "82642AD686000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"},
		"operationType": "delete",
		"clusterTime": {"$timestamp": {"t": 1680529030, "i": 1}},
		"ns": {"db": "engineering", "coll": "users"},
		"documentKey": {"_id": {"$oid": "599af247bb69cd89961c986d"}}
	}`

	// change-events/drop.
	ChangeStreamDrop = `{
		"_id": {"_data": "82642AD690000000012B042C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED7104"},
		"operationType": "drop",
		"clusterTime": {"$timestamp": {"t": 1680529040, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:37:20Z"},
		"ns": {"db": "engineering", "coll": "users"}
	}`

	// change-events/rename, without expanded events: no word on a replaced target.
	ChangeStreamRename = `{
		"_id": {"_data": "82642AD69A000000012B042C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED7104"},
		"operationType": "rename",
		"clusterTime": {"$timestamp": {"t": 1680529050, "i": 1}},
		"ns": {"db": "engineering", "coll": "users"},
		"to": {"db": "engineering", "coll": "people"}
	}`

	// change-events/rename, "Expanded Event Information" (6.0+): operationDescription
	// holds to and, when the rename replaced a collection, dropTarget, that collection's
	// UUID. Built as change_stream_event_transform.cpp builds it from the oplog entry.
	ChangeStreamRenameReplacingTarget = `{
		"_id": {"_data": "82642AD69B000000012B042C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED7104"},
		"operationType": "rename",
		"clusterTime": {"$timestamp": {"t": 1680529051, "i": 1}},
		"collectionUUID": {"$binary": {"base64": "XcSxG+pfQxmo58r0aBbtcQ==", "subType": "04"}},
		"wallTime": {"$date": "2023-04-03T13:37:31Z"},
		"ns": {"db": "engineering", "coll": "users"},
		"to": {"db": "engineering", "coll": "people"},
		"operationDescription": {
			"to": {"db": "engineering", "coll": "people"},
			"dropTarget": {"$binary": {"base64": "wdDGpTseTw6aVS8aO3ydEA==", "subType": "04"}}
		}
	}`

	// change-events/dropDatabase: ns names only the database.
	ChangeStreamDropDatabase = `{
		"_id": {"_data": "82642AD6A4000000012B0229296E04"},
		"operationType": "dropDatabase",
		"clusterTime": {"$timestamp": {"t": 1680529060, "i": 1}},
		"wallTime": {"$date": "2023-04-03T13:37:40Z"},
		"ns": {"db": "engineering"}
	}`

	// change-events/create.
	ChangeStreamCreate = `{
		"_id": {"_data": "8262A3AFD3000000182B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"},
		"operationType": "create",
		"clusterTime": {"$timestamp": {"t": 1654894547, "i": 24}},
		"collectionUUID": {"$binary": {"base64": "mARqGrZJTlucdWdZQiHOGQ==", "subType": "04"}},
		"wallTime": {"$date": "2022-06-10T20:55:47.947Z"},
		"ns": {"db": "test", "coll": "names"},
		"operationDescription": {"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}
	}`

	// A create with options: operationDescription is the oplog's create command minus
	// its name (change_stream_event_transform.cpp), here db.createCollection("log",
	// {capped: true, size: 1048576, collation: {locale: "fr"}}).
	ChangeStreamCreateWithOptions = `{
		"_id": {"_data": "8262A3B008000000022B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"},
		"operationType": "create",
		"clusterTime": {"$timestamp": {"t": 1654894600, "i": 2}},
		"collectionUUID": {"$binary": {"base64": "mARqGrZJTlucdWdZQiHOGQ==", "subType": "04"}},
		"wallTime": {"$date": "2022-06-10T20:56:40Z"},
		"ns": {"db": "test", "coll": "log"},
		"operationDescription": {
			"capped": true,
			"size": {"$numberLong": "1048576"},
			"collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
				"alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"},
			"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_", "collation": {"locale": "fr"}}
		},
		"nsType": "collection"
	}`

	// change-events/createIndexes.
	ChangeStreamCreateIndexes = `{
		"_id": {"_data": "82626C31EB000000012B042C0100296E5A100406BCED377CC8426796AAA58A422153D804"},
		"operationType": "createIndexes",
		"clusterTime": {"$timestamp": {"t": 1651257835, "i": 1}},
		"collectionUUID": {"$binary": {"base64": "BrztN3zIQmeWqqWKQiFT2A==", "subType": "04"}},
		"wallTime": {"$date": "2022-04-29T18:43:55.160Z"},
		"ns": {"db": "test", "coll": "authors"},
		"operationDescription": {"indexes": [{"v": 2, "key": {"name": 1}, "name": "name_1"}]}
	}`

	// change-events/dropIndexes.
	ChangeStreamDropIndexes = `{
		"_id": {"_data": "82626C322C000000012B042C0100296E5A100406BCED377CC8426796AAA58A422153D804"},
		"operationType": "dropIndexes",
		"clusterTime": {"$timestamp": {"t": 1651257900, "i": 1}},
		"collectionUUID": {"$binary": {"base64": "BrztN3zIQmeWqqWKQiFT2A==", "subType": "04"}},
		"wallTime": {"$date": "2022-04-29T18:45:00Z"},
		"ns": {"db": "test", "coll": "authors"},
		"operationDescription": {"indexes": [{"v": 2, "key": {"name": 1}, "name": "name_1"}]}
	}`

	// change-events/modify: an index hidden with collMod.
	ChangeStreamModifyIndex = `{
		"_id": {"_data": "8262A3714F000000012B042C0100296E5A100447D6BAACEEAA488B98AE893F3ABAAF2504"},
		"operationType": "modify",
		"clusterTime": {"$timestamp": {"t": 1654878543, "i": 1}},
		"collectionUUID": {"$binary": {"base64": "R9a6rO6qSIuYrok/OrqvJQ==", "subType": "04"}},
		"wallTime": {"$date": "2022-06-10T16:29:03.704Z"},
		"ns": {"db": "test", "coll": "authors"},
		"operationDescription": {"index": {"name": "age_1", "hidden": true}},
		"stateBeforeChange": {
			"collectionOptions": {"uuid": {"$binary": {"base64": "R9a6rO6qSIuYrok/OrqvJQ==", "subType": "04"}}},
			"indexOptions": {"hidden": false}
		}
	}`

	// A modify that sets a validator: operationDescription is the collMod command minus
	// its name (change_stream_event_transform.cpp).
	ChangeStreamModifyValidator = `{
		"_id": {"_data": "8262A37188000000012B042C0100296E5A100447D6BAACEEAA488B98AE893F3ABAAF2504"},
		"operationType": "modify",
		"clusterTime": {"$timestamp": {"t": 1654878600, "i": 1}},
		"collectionUUID": {"$binary": {"base64": "R9a6rO6qSIuYrok/OrqvJQ==", "subType": "04"}},
		"wallTime": {"$date": "2022-06-10T16:30:00Z"},
		"ns": {"db": "test", "coll": "authors"},
		"operationDescription": {
			"validator": {"$jsonSchema": {"bsonType": "object", "required": ["name"]}},
			"validationLevel": "strict",
			"validationAction": "error"
		},
		"stateBeforeChange": {"collectionOptions": {"uuid": {"$binary": {"base64": "R9a6rO6qSIuYrok/OrqvJQ==", "subType": "04"}}}}
	}`

	// change-events/shardCollection.
	ChangeStreamShardCollection = `{
		"_id": {"_data": "8262A3B104000000342B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"},
		"operationType": "shardCollection",
		"clusterTime": {"$timestamp": {"t": 1654894852, "i": 52}},
		"collectionUUID": {"$binary": {"base64": "mARqGrZJTlucdWdZQiHOGQ==", "subType": "04"}},
		"wallTime": {"$date": "2022-06-10T21:00:52.854Z"},
		"ns": {"db": "test", "coll": "authors"},
		"operationDescription": {"shardKey": {"age": "hashed"}, "unique": false, "numInitialChunks": {"$numberLong": "0"}, "presplitHashedZones": false}
	}`
)
