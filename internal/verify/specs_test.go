package verify

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// These documents are listCollections and listIndexes results as MongoDB 7.0 returns them. The
// sandbox server stores no collection options, so option comparison is proven on real shapes here and
// against real clusters by the end-to-end suite.

func mustDoc(t *testing.T, extJSON string) bson.Raw {
	t.Helper()
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(extJSON), false, &doc); err != nil {
		t.Fatalf("%s: %v", extJSON, err)
	}
	return doc
}

// collectionFromListCollections builds a catalog entry from one listCollections result document.
func collectionFromListCollections(t *testing.T, extJSON string) catalog.Collection {
	doc := mustDoc(t, extJSON)
	return catalog.Collection{
		NS:      namespace.Namespace{DB: "app", Coll: doc.Lookup("name").StringValue()},
		Type:    doc.Lookup("type").StringValue(),
		Options: doc.Lookup("options").Document(),
	}
}

const (
	ordersWithValidator = `{"name": "orders", "type": "collection", "options": {"validator": {"$jsonSchema": {"bsonType": "object", "required": ["total"], "properties": {"total": {"bsonType": "decimal"}}}}, "validationLevel": "strict", "validationAction": "error"}, "info": {"readOnly": false, "uuid": {"$binary": {"base64": "x3m1ZXbyQ0WxYpXpGAlU5g==", "subType": "04"}}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`
	ordersModerate      = `{"name": "orders", "type": "collection", "options": {"validator": {"$jsonSchema": {"bsonType": "object", "required": ["total"], "properties": {"total": {"bsonType": "decimal"}}}}, "validationLevel": "moderate", "validationAction": "error"}, "info": {"readOnly": false, "uuid": {"$binary": {"base64": "AAAAZXbyQ0WxYpXpGAlU5g==", "subType": "04"}}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`
	ordersPlain         = `{"name": "orders", "type": "collection", "options": {}, "info": {"readOnly": false, "uuid": {"$binary": {"base64": "AAAAZXbyQ0WxYpXpGAlU5g==", "subType": "04"}}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`
	ordersCapped        = `{"name": "orders", "type": "collection", "options": {"capped": true, "size": 1048576, "max": 1000}, "info": {"readOnly": false, "uuid": {"$binary": {"base64": "AAAAZXbyQ0WxYpXpGAlU5g==", "subType": "04"}}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`
	ordersView          = `{"name": "orders", "type": "view", "options": {"viewOn": "orders_raw", "pipeline": [{"$match": {"status": "A"}}]}, "info": {"readOnly": true}}`
	frenchCollation     = `{"name": "people", "type": "collection", "options": {"collation": {"locale": "fr", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}, "info": {"readOnly": false, "uuid": {"$binary": {"base64": "x3m1ZXbyQ0WxYpXpGAlU5g==", "subType": "04"}}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`
	germanCollation     = `{"name": "people", "type": "collection", "options": {"collation": {"locale": "de", "caseLevel": false, "caseFirst": "off", "strength": 3, "numericOrdering": false, "alternate": "non-ignorable", "maxVariable": "punct", "normalization": false, "backwards": false, "version": "57.1"}}, "info": {"readOnly": false, "uuid": {"$binary": {"base64": "x3m1ZXbyQ0WxYpXpGAlU5g==", "subType": "04"}}}, "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}`
	weatherTimeseries   = `{"name": "weather", "type": "timeseries", "options": {"timeseries": {"timeField": "timestamp", "metaField": "metadata", "granularity": "seconds", "bucketMaxSpanSeconds": 3600}}, "info": {"readOnly": false}}`
	weatherHours        = `{"name": "weather", "type": "timeseries", "options": {"timeseries": {"timeField": "timestamp", "metaField": "metadata", "granularity": "hours", "bucketMaxSpanSeconds": 2592000}}, "info": {"readOnly": false}}`
)

func TestCollectionSpecDifferences(t *testing.T) {
	cases := []struct {
		name     string
		src, dst string
		want     []string // substrings, one per expected difference; none means equal
	}{
		{"same options, different UUIDs", ordersWithValidator, ordersWithValidator, nil},
		{"UUID and info are not options", ordersPlain, strings.Replace(ordersPlain, "AAAA", "BBBB", 1), nil},
		{"validation level", ordersWithValidator, ordersModerate, []string{`option validationLevel is "strict" on source, "moderate" on destination`}},
		{"validator dropped", ordersWithValidator, ordersPlain, []string{"option validationAction", "option validationLevel", "option validator is"}},
		{"capped lost", ordersCapped, ordersPlain, []string{"option capped is true on source, absent on destination", "option max", "option size"}},
		{"view became a collection", ordersView, ordersPlain, []string{"type is view on source, collection on destination", "option pipeline", "option viewOn"}},
		{"collation locale", frenchCollation, germanCollation, []string{"option collation is"}},
		{"time-series granularity", weatherTimeseries, weatherHours, []string{"option timeseries is"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diffs := compareCollectionSpecs(collectionFromListCollections(t, tc.src), collectionFromListCollections(t, tc.dst))
			assertDiffs(t, diffs, tc.want)
		})
	}
}

func TestIndexSpecDifferences(t *testing.T) {
	idIndex := `{"v": 2, "key": {"_id": 1}, "name": "_id_"}`
	cases := []struct {
		name     string
		src, dst []string
		want     []string
	}{
		{"identical", []string{idIndex, `{"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}`},
			[]string{idIndex, `{"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}`}, nil},
		{"index version and ns are not behaviour", []string{`{"v": 1, "key": {"a": 1}, "name": "a_1", "ns": "app.c", "background": true}`},
			[]string{`{"v": 2, "key": {"a": 1}, "name": "a_1"}`}, nil},
		{"TTL as int32 and int64 is the same", []string{`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`},
			[]string{`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": {"$numberLong": "3600"}}`}, nil},
		{"unique false equals absent", []string{`{"v": 2, "key": {"a": 1}, "name": "a_1", "unique": false}`},
			[]string{`{"v": 2, "key": {"a": 1}, "name": "a_1"}`}, nil},
		{"unique lost", []string{`{"v": 2, "key": {"email": 1}, "name": "email_1", "unique": true}`},
			[]string{`{"v": 2, "key": {"email": 1}, "name": "email_1"}`}, []string{"index email_1: unique is true on source, absent on destination"}},
		{"TTL changed", []string{`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`},
			[]string{`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 2147483647}`}, []string{"index t_1: expireAfterSeconds is 3600 on source, 2147483647 on destination"}},
		{"compound key order matters", []string{`{"v": 2, "key": {"a": 1, "b": -1}, "name": "ab"}`},
			[]string{`{"v": 2, "key": {"b": -1, "a": 1}, "name": "ab"}`}, []string{"index ab: key is"}},
		{"hidden", []string{`{"v": 2, "key": {"h": 1}, "name": "h_1", "hidden": true}`},
			[]string{`{"v": 2, "key": {"h": 1}, "name": "h_1"}`}, []string{"index h_1: hidden is true"}},
		{"partial filter", []string{`{"v": 2, "key": {"p": 1}, "name": "p_1", "partialFilterExpression": {"p": {"$gt": 1}}}`},
			[]string{`{"v": 2, "key": {"p": 1}, "name": "p_1", "partialFilterExpression": {"p": {"$gt": 2}}}`}, []string{"index p_1: partialFilterExpression"}},
		{"missing and extra", []string{idIndex, `{"v": 2, "key": {"a": 1}, "name": "a_1"}`},
			[]string{idIndex, `{"v": 2, "key": {"b": "text"}, "name": "b_text"}`},
			[]string{`index a_1 {"a":1} missing on destination`, `index b_text {"b":"text"} extra on destination`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var src, dst []bson.Raw
			for _, s := range tc.src {
				src = append(src, mustDoc(t, s))
			}
			for _, s := range tc.dst {
				dst = append(dst, mustDoc(t, s))
			}
			diffs, _ := compareIndexes(src, dst)
			assertDiffs(t, diffs, tc.want)
		})
	}
}

func TestEqualIgnoringFieldOrder(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{`{"_id": 1, "a": 1, "b": {"x": 1, "y": 2}}`, `{"_id": 1, "b": {"y": 2, "x": 1}, "a": 1}`, true},
		{`{"_id": 1, "arr": [{"x": 1, "y": 2}]}`, `{"_id": 1, "arr": [{"y": 2, "x": 1}]}`, true},
		{`{"_id": 1, "arr": [1, 2]}`, `{"_id": 1, "arr": [2, 1]}`, false},
		{`{"_id": 1, "a": 1}`, `{"_id": 1, "a": {"$numberLong": "1"}}`, false},
		{`{"_id": 1, "a": 1}`, `{"_id": 1, "a": 1, "b": null}`, false},
		{`{"_id": 1, "a": 1}`, `{"_id": 1, "b": 1}`, false},
	}
	for _, tc := range cases {
		if got := equalIgnoringFieldOrder(mustDoc(t, tc.a), mustDoc(t, tc.b)); got != tc.want {
			t.Errorf("%s vs %s: %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// assertDiffs checks that diffs has one entry per want, each containing its want.
func assertDiffs(t *testing.T, diffs, want []string) {
	t.Helper()
	if len(diffs) != len(want) {
		t.Fatalf("got %d differences %q, want %d", len(diffs), diffs, len(want))
	}
	for i, w := range want {
		if !strings.Contains(diffs[i], w) {
			t.Errorf("difference %d is %q, want it to contain %q", i, diffs[i], w)
		}
	}
}

// Number types in index options: listIndexes documents as MongoDB 7.0 returns them for indexes built
// by mongosh (int32), by a driver given an int64, and by the legacy shell (doubles). The servers
// treat them as equal, so they are no difference, but each is listed as a warning.
func TestIndexNumberTypesAreWarningsNotDifferences(t *testing.T) {
	cases := []struct {
		name     string
		src, dst string
		warnings []string
	}{
		{"same types", `{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`,
			`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`, nil},
		{"TTL int32 and int64", `{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`,
			`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": {"$numberLong": "3600"}}`,
			[]string{"index t_1: expireAfterSeconds is 3600 (int32) on source, 3600 (int64) on destination; equal to the servers"}},
		{"TTL double", `{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": {"$numberDouble": "3600.0"}}`,
			`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`,
			[]string{"index t_1: expireAfterSeconds is 3600.0 (double) on source, 3600 (int32) on destination"}},
		{"key pattern from the legacy shell", `{"v": 2, "key": {"a": {"$numberDouble": "1.0"}, "b": {"$numberDouble": "-1.0"}}, "name": "a_1_b_-1"}`,
			`{"v": 2, "key": {"a": 1, "b": -1}, "name": "a_1_b_-1"}`,
			[]string{`index a_1_b_-1: key is {"a":{"$numberDouble":"1.0"},"b":{"$numberDouble":"-1.0"}} on source, {"a":{"$numberInt":"1"},"b":{"$numberInt":"-1"}} on destination`}},
		{"partial filter bound", `{"v": 2, "key": {"p": 1}, "name": "p_1", "partialFilterExpression": {"p": {"$gt": 1}}}`,
			`{"v": 2, "key": {"p": 1}, "name": "p_1", "partialFilterExpression": {"p": {"$gt": {"$numberLong": "1"}}}}`,
			[]string{`index p_1: partialFilterExpression is {"p":{"$gt":{"$numberInt":"1"}}} on source, {"p":{"$gt":{"$numberLong":"1"}}} on destination`}},
		{"a different value is a difference, not a warning", `{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 3600}`,
			`{"v": 2, "key": {"t": 1}, "name": "t_1", "expireAfterSeconds": {"$numberLong": "7200"}}`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diffs, warnings := compareIndexes([]bson.Raw{mustDoc(t, tc.src)}, []bson.Raw{mustDoc(t, tc.dst)})
			if tc.name == "a different value is a difference, not a warning" {
				assertDiffs(t, diffs, []string{"index t_1: expireAfterSeconds is 3600 on source, 7200 on destination"})
			} else if len(diffs) != 0 {
				t.Fatalf("differences %q; want none", diffs)
			}
			assertDiffs(t, warnings, tc.warnings)
		})
	}
}
