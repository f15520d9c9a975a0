package changeevent

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// The documents of these tests are the examples of MongoDB's "Change Events" reference pages
// (https://www.mongodb.com/docs/manual/reference/change-events/<event>/, 6.0 and 7.0), written in
// relaxed Extended JSON. The pages elide some values as <Resume Token>, <Timestamp>, <ISODate>;
// those are filled in with values of the shape a server sends: a resume token is
// {_data: "82" + clusterTime as 8 hex bytes + ...} (the two real tokens of the update page are
// used as they are), and wallTime matches clusterTime. Where a page has no example for a variant
// (a rename with showExpandedEvents, a create with options), the document is built the way the
// server builds it in src/mongo/db/pipeline/change_stream_event_transform.cpp, and says so.
// Those the applier's tests apply too (applier/realdocs_test.go) are kept once, with their
// comments, in package realdocs; the others are written here.
type changeStreamCase struct {
	name string
	doc  string
	want Event
}

var changeStreamCases = []changeStreamCase{
	{
		name: "insert",
		doc:  realdocs.ChangeStreamInsert,
		want: Event{
			Op: Insert, NS: ns("engineering.users"), ClusterTime: ts(1680529003, 1),
			ResumeToken:  ejson(`{"_data": "82642AD66B000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey:  ejson(`{"userName": "alice123", "_id": {"$oid": "599af247bb69cd89961c986d"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}`),
		},
	},
	{
		name: "update with truncatedArrays",
		doc:  realdocs.ChangeStreamUpdateTruncatedArrays,
		want: Event{
			Op: Update, NS: ns("engineering.users"), ClusterTime: ts(1680529011, 1),
			ResumeToken: ejson(`{"_data": "82642AD673000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey: ejson(`{"_id": {"$oid": "58a4eb4a30c75625e00d2820"}}`),
			Update: &UpdateDescription{
				Truncate: []ArrayTruncation{{Path: "vacation_time", NewSize: 36}},
				Set:      setOf(`{"email": "alice@10gen.com"}`),
				Unset:    []string{"phoneNumber"},
			},
		},
	},
	{
		name: "update of an array element, no expanded events",
		doc:  realdocs.ChangeStreamUpdateArrayElement,
		want: Event{
			Op: Update, NS: ns("communication_chat.students"), ClusterTime: ts(1680529012, 1),
			ResumeToken: ejson(`{"_data": "82642AD674000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey: ejson(`{"_id": {"$oid": "642ad66b5dc4b11bea5f4319"}}`),
			Update:      &UpdateDescription{Set: setOf(`{"scores.1": 0.94}`)},
		},
	},
	{
		name: "update of a dotted field name is a refresh",
		doc:  realdocs.ChangeStreamUpdateDottedField,
		want: Event{
			Op: Update, NS: ns("engineering.people"), ClusterTime: ts(1680529013, 1),
			ResumeToken: ejson(`{"_data": "82642AD675000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey: ejson(`{"_id": 1}`),
		},
	},
	{
		name: "update below a numeric field name is a refresh",
		doc:  realdocs.ChangeStreamUpdateBelowNumericField,
		want: Event{
			Op: Update, NS: ns("engineering.people"), ClusterTime: ts(1680529014, 1),
			ResumeToken: ejson(`{"_data": "82642AD676000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey: ejson(`{"_id": 1}`),
		},
	},
	{
		name: "replace",
		doc:  realdocs.ChangeStreamReplace,
		want: Event{
			Op: Replace, NS: ns("engineering.users"), ClusterTime: ts(1680529020, 1),
			ResumeToken:  ejson(`{"_data": "82642AD67C000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey:  ejson(`{"_id": {"$oid": "599af247bb69cd89961c986d"}}`),
			FullDocument: ejson(`{"_id": {"$oid": "599af247bb69cd89961c986d"}, "userName": "alice123", "name": "Alice"}`),
		},
	},
	{
		name: "delete",
		doc:  realdocs.ChangeStreamDelete,
		want: Event{
			Op: Delete, NS: ns("engineering.users"), ClusterTime: ts(1680529030, 1),
			ResumeToken: ejson(`{"_data": "82642AD686000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey: ejson(`{"_id": {"$oid": "599af247bb69cd89961c986d"}}`),
		},
	},
	{
		name: "drop",
		doc:  realdocs.ChangeStreamDrop,
		want: Event{
			Op: Drop, NS: ns("engineering.users"), ClusterTime: ts(1680529040, 1),
			ResumeToken: ejson(`{"_data": "82642AD690000000012B042C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED7104"}`),
		},
	},
	{
		name: "rename",
		doc:  realdocs.ChangeStreamRename,
		want: Event{
			Op: Rename, NS: ns("engineering.users"), ClusterTime: ts(1680529050, 1),
			ResumeToken: ejson(`{"_data": "82642AD69A000000012B042C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED7104"}`),
			To:          ns("engineering.people"),
		},
	},
	{
		name: "rename that replaced the target",
		doc:  realdocs.ChangeStreamRenameReplacingTarget,
		want: Event{
			Op: Rename, NS: ns("engineering.users"), ClusterTime: ts(1680529051, 1),
			ResumeToken: ejson(`{"_data": "82642AD69B000000012B042C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED7104"}`),
			To:          ns("engineering.people"),
			DropTarget:  true,
		},
	},
	{
		name: "dropDatabase",
		doc:  realdocs.ChangeStreamDropDatabase,
		want: Event{
			Op: DropDatabase, NS: namespace.Namespace{DB: "engineering"}, ClusterTime: ts(1680529060, 1),
			ResumeToken: ejson(`{"_data": "82642AD6A4000000012B0229296E04"}`),
		},
	},
	{
		name: "create",
		doc:  realdocs.ChangeStreamCreate,
		want: Event{
			Op: Create, NS: ns("test.names"), ClusterTime: ts(1654894547, 24),
			ResumeToken: ejson(`{"_data": "8262A3AFD3000000182B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"}`),
			Options:     ejson(`{}`),
		},
	},
	{
		name: "create with options",
		doc:  realdocs.ChangeStreamCreateWithOptions,
		want: Event{
			Op: Create, NS: ns("test.log"), ClusterTime: ts(1654894600, 2),
			ResumeToken: ejson(`{"_data": "8262A3B008000000022B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"}`),
			Options: ejson(`{"capped": true, "size": {"$numberLong": "1048576"},
				"collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false,
					"alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}`),
		},
	},
	{
		name: "createIndexes",
		doc:  realdocs.ChangeStreamCreateIndexes,
		want: Event{
			Op: CreateIndexes, NS: ns("test.authors"), ClusterTime: ts(1651257835, 1),
			ResumeToken: ejson(`{"_data": "82626C31EB000000012B042C0100296E5A100406BCED377CC8426796AAA58A422153D804"}`),
			Indexes:     []bson.Raw{ejson(`{"v": 2, "key": {"name": 1}, "name": "name_1"}`)},
		},
	},
	{
		name: "dropIndexes",
		doc:  realdocs.ChangeStreamDropIndexes,
		want: Event{
			Op: DropIndexes, NS: ns("test.authors"), ClusterTime: ts(1651257900, 1),
			ResumeToken: ejson(`{"_data": "82626C322C000000012B042C0100296E5A100406BCED377CC8426796AAA58A422153D804"}`),
			IndexNames:  []string{"name_1"},
		},
	},
	{
		name: "modify an index",
		doc:  realdocs.ChangeStreamModifyIndex,
		want: Event{
			Op: CollMod, NS: ns("test.authors"), ClusterTime: ts(1654878543, 1),
			ResumeToken: ejson(`{"_data": "8262A3714F000000012B042C0100296E5A100447D6BAACEEAA488B98AE893F3ABAAF2504"}`),
			Options:     ejson(`{"index": {"name": "age_1", "hidden": true}}`),
		},
	},
	{
		name: "modify the validator",
		doc:  realdocs.ChangeStreamModifyValidator,
		want: Event{
			Op: CollMod, NS: ns("test.authors"), ClusterTime: ts(1654878600, 1),
			ResumeToken: ejson(`{"_data": "8262A37188000000012B042C0100296E5A100447D6BAACEEAA488B98AE893F3ABAAF2504"}`),
			Options: ejson(`{"validator": {"$jsonSchema": {"bsonType": "object", "required": ["name"]}},
				"validationLevel": "strict", "validationAction": "error"}`),
		},
	},
	{
		name: "shardCollection is unsupported",
		doc:  realdocs.ChangeStreamShardCollection,
		want: Event{
			Op: Unsupported, NS: ns("test.authors"), ClusterTime: ts(1654894852, 52),
			ResumeToken: ejson(`{"_data": "8262A3B104000000342B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"}`),
			Description: `shardCollection on test.authors: {"shardKey": {"age": "hashed"},"unique": false,"numInitialChunks": {"$numberLong":"0"},"presplitHashedZones": false}`,
		},
	},
	{
		// change-events/refineCollectionShardKey (the page's example has no wallTime).
		name: "refineCollectionShardKey is unsupported",
		doc: `{
			"_id": {"_data": "8262A3B134000000072B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"},
			"operationType": "refineCollectionShardKey",
			"clusterTime": {"$timestamp": {"t": 1654894900, "i": 7}},
			"collectionUUID": {"$binary": {"base64": "mARqGrZJTlucdWdZQiHOGQ==", "subType": "04"}},
			"ns": {"db": "reshard_collection_event", "coll": "coll"},
			"operationDescription": {"shardKey": {"_id": 1, "akey": 1}, "oldShardKey": {"_id": 1}}
		}`,
		want: Event{
			Op: Unsupported, NS: ns("reshard_collection_event.coll"), ClusterTime: ts(1654894900, 7),
			ResumeToken: ejson(`{"_data": "8262A3B134000000072B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"}`),
			Description: `refineCollectionShardKey on reshard_collection_event.coll: {"shardKey": {"_id": {"$numberInt":"1"},"akey": {"$numberInt":"1"}},"oldShardKey": {"_id": {"$numberInt":"1"}}}`,
		},
	},
	{
		// change-events/reshardCollection (6.1+, 6.0.14+): operationDescription is the noop
		// oplog entry's o2 minus reshardCollection.
		name: "reshardCollection is unsupported",
		doc: `{
			"_id": {"_data": "8262A3B170000000012B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"},
			"operationType": "reshardCollection",
			"clusterTime": {"$timestamp": {"t": 1654894960, "i": 1}},
			"collectionUUID": {"$binary": {"base64": "mARqGrZJTlucdWdZQiHOGQ==", "subType": "04"}},
			"wallTime": {"$date": "2022-06-10T21:02:40Z"},
			"ns": {"db": "test", "coll": "authors"},
			"operationDescription": {
				"reshardUUID": {"$binary": {"base64": "fV4rTB86TI62qQ4tT2qLHA==", "subType": "04"}},
				"shardKey": {"name": 1},
				"oldShardKey": {"age": "hashed"},
				"unique": false
			}
		}`,
		want: Event{
			Op: Unsupported, NS: ns("test.authors"), ClusterTime: ts(1654894960, 1),
			ResumeToken: ejson(`{"_data": "8262A3B170000000012B042C0100296E5A100498046A1AB6494E5B9C7567594221CE1904"}`),
			Description: `reshardCollection on test.authors: {"reshardUUID": {"$binary":{"base64":"fV4rTB86TI62qQ4tT2qLHA==","subType":"04"}},"shardKey": {"name": {"$numberInt":"1"}},"oldShardKey": {"age": "hashed"},"unique": false}`,
		},
	},
	{
		// An event type this reader does not know: endOfTransaction (7.2+, streams with
		// showSystemEvents), which has no ns at all (change_stream_event_transform.cpp).
		name: "unknown event type",
		doc: `{
			"_id": {"_data": "82642AD6B8000000032B0229296E04"},
			"operationType": "endOfTransaction",
			"clusterTime": {"$timestamp": {"t": 1680529080, "i": 3}},
			"wallTime": {"$date": "2023-04-03T13:38:00Z"},
			"operationDescription": {"lsid": {"id": {"$binary": {"base64": "L46aG0xdTm+Ke5wNHi86Sw==", "subType": "04"}}}, "txnNumber": {"$numberLong": "4"}}
		}`,
		want: Event{
			Op: Unsupported, ClusterTime: ts(1680529080, 3),
			ResumeToken: ejson(`{"_data": "82642AD6B8000000032B0229296E04"}`),
			Description: `endOfTransaction: {"lsid": {"id": {"$binary":{"base64":"L46aG0xdTm+Ke5wNHi86Sw==","subType":"04"}}},"txnNumber": {"$numberLong":"4"}}`,
		},
	},
	{
		name: "update with a raw update description",
		doc:  realdocs.ChangeStreamRawUpdateDescription,
		want: Event{
			Op: Update, NS: ns("engineering.users"), ClusterTime: ts(1680529011, 1),
			ResumeToken: ejson(`{"_data": "82642AD673000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			DocumentKey: ejson(`{"_id": {"$oid": "58a4eb4a30c75625e00d2820"}}`),
			Update: &UpdateDescription{
				Truncate: []ArrayTruncation{{Path: "vacation_time", NewSize: 36}},
				Set:      setOf(`{"email": "alice@10gen.com"}`),
				Unset:    []string{"phoneNumber"},
			},
		},
	},
}

func TestFromChangeStreamReadsTheDocumentedEvents(t *testing.T) {
	for _, tc := range changeStreamCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromChangeStream(ejson(tc.doc))
			if err != nil {
				t.Fatalf("FromChangeStream: %v", err)
			}
			checkEvents(t, []Event{got}, []Event{tc.want})
			if token, ok := TokenTime(got.ResumeToken); !ok || token != got.ClusterTime {
				t.Errorf("TokenTime(resume token) = %v, %v; the event's clusterTime is %v", token, ok, got.ClusterTime)
			}
		})
	}
}

func TestFromChangeStreamRefusesInvalidate(t *testing.T) {
	// change-events/invalidate.
	doc := ejson(`{
		"_id": {"_data": "82642AD6AE000000012B0229296E04"},
		"operationType": "invalidate",
		"clusterTime": {"$timestamp": {"t": 1680529070, "i": 1}}
	}`)
	_, err := FromChangeStream(doc)
	if !errors.Is(err, ErrInvalidated) {
		t.Fatalf("FromChangeStream(invalidate) = %v, want an error wrapping ErrInvalidated", err)
	}
	if !strings.Contains(err.Error(), "Timestamp(1680529070, 1)") {
		t.Errorf("the error does not say when the stream was invalidated: %v", err)
	}
}

func TestFromChangeStreamCopiesTheCallersBytes(t *testing.T) {
	// A driver cursor reuses its buffer for the next document: the event must not change.
	doc := ejson(changeStreamCases[0].doc)
	ev, err := FromChangeStream(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := render([]Event{ev})
	for i := range doc {
		doc[i] = 0xff
	}
	if got := render([]Event{ev}); got != want {
		t.Fatalf("the event changed with the caller's buffer:\n%s\nwas:\n%s", got, want)
	}
}

func TestFromChangeStreamNamesWhatIsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{
			"not BSON", "", "a change event is malformed: it has 0 bytes",
		},
		{
			"no operationType",
			`{"_id": {"_data": "82"}, "clusterTime": {"$timestamp": {"t": 1, "i": 1}}}`,
			`a change event is malformed: its field "operationType" is missing`,
		},
		{
			"clusterTime of the wrong type",
			`{"_id": {"_data": "82"}, "operationType": "drop", "clusterTime": {"$date": "2023-04-03T13:37:20Z"}, "ns": {"db": "a", "coll": "b"}}`,
			`a drop change event is malformed: its field "clusterTime" is a date, not a timestamp`,
		},
		{
			"no documentKey",
			`{"_id": {"_data": "82"}, "operationType": "delete", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a", "coll": "b"}}`,
			`the delete change event at Timestamp(5, 1) is malformed: its field "documentKey" is missing`,
		},
		{
			"documentKey without _id",
			`{"_id": {"_data": "82"}, "operationType": "delete", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a", "coll": "b"}, "documentKey": {"student_id": 1}}`,
			`its field "documentKey" has no _id`,
		},
		{
			"ns without db",
			`{"_id": {"_data": "82"}, "operationType": "drop", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"coll": "b"}}`,
			`its field "ns.db" is missing`,
		},
		{
			"drop without a collection",
			`{"_id": {"_data": "82"}, "operationType": "drop", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a"}}`,
			`its field "ns.coll" is missing`,
		},
		{
			// The "Array Truncation" example of change-events/update misspells field as fields.
			"truncatedArrays as misspelt on the update page",
			`{"_id": {"_data": "82"}, "operationType": "update", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a", "coll": "b"},
			  "documentKey": {"_id": 2}, "updateDescription": {"updatedFields": {}, "removedFields": [], "truncatedArrays": [{"fields": "scores", "newSize": 2}]}}`,
			`its field "updateDescription.truncatedArrays.0.field" is missing`,
		},
		{
			"removedFields holding a number",
			`{"_id": {"_data": "82"}, "operationType": "update", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a", "coll": "b"},
			  "documentKey": {"_id": 2}, "updateDescription": {"updatedFields": {}, "removedFields": ["a", 7]}}`,
			`its field "updateDescription.removedFields.1" is a number, not a string`,
		},
		{
			"createIndexes without indexes",
			`{"_id": {"_data": "82"}, "operationType": "createIndexes", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a", "coll": "b"},
			  "operationDescription": {}}`,
			`its field "operationDescription.indexes" is missing`,
		},
		{
			"rename with dropTarget of the wrong type",
			`{"_id": {"_data": "82"}, "operationType": "rename", "clusterTime": {"$timestamp": {"t": 5, "i": 1}}, "ns": {"db": "a", "coll": "b"},
			  "to": {"db": "a", "coll": "c"}, "operationDescription": {"to": {"db": "a", "coll": "c"}, "dropTarget": "yes"}}`,
			`its field "operationDescription.dropTarget" is a string, not a UUID or a boolean`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc bson.Raw
			if tc.doc != "" {
				doc = ejson(tc.doc)
			}
			_, err := FromChangeStream(doc)
			var malformed *MalformedError
			if !errors.As(err, &malformed) {
				t.Fatalf("FromChangeStream = %v, want a *MalformedError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestChangeStreamUpdatePathsThatNeedARefresh(t *testing.T) {
	// Without expanded events nothing flags a dotted field name, but a path component that an
	// update would read as an operator, or an empty one, is caught from the path itself.
	for _, path := range []string{"items.$", "a.$[]", "$price", "a..b", ""} {
		doc := ejson(`{"_id": {"_data": "82"}, "operationType": "update", "clusterTime": {"$timestamp": {"t": 5, "i": 1}},
			"ns": {"db": "a", "coll": "b"}, "documentKey": {"_id": 2},
			"updateDescription": {"updatedFields": {"ok": 1}, "removedFields": ["` + path + `"]}}`)
		ev, err := FromChangeStream(doc)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Update != nil {
			t.Errorf("removedFields [%q] gave %+v, want a refresh", path, ev.Update)
		}
	}
}
