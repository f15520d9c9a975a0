package changeevent

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

// describeDiff runs a $v:2 diff through the oplog parser, as the "diff" of an update entry.
func describeDiff(t *testing.T, diff string) *UpdateDescription {
	t.Helper()
	entry := ejson(`{"op": "u", "ns": "db.c", "o": {"$v": 2, "diff": ` + diff + `}, "o2": {"_id": 1},
		"ts": {"$timestamp": {"t": 1, "i": 1}}}`)
	events, err := FromOplog(entry)
	if err != nil {
		t.Fatalf("FromOplog: %v", err)
	}
	if len(events) != 1 || events[0].Op != Update {
		t.Fatalf("FromOplog gave %s, want one update", render(events))
	}
	return events[0].Update
}

func renderDescription(d *UpdateDescription) string {
	return render([]Event{{Op: Update, Update: d}})
}

// The complex diff: every section, at three levels, with arrays inside arrays. Applying the
// result to the pre-image gives the post-image:
//
//	pre:  {_id: 1, a: 1, b: {c: 1, d: 2, e: {f: 1}}, g: [1, [1, 2, 3], {h: 1, i: 2}, 4, 5], z: 0}
//	post: {_id: 1, a: 2, b: {c: 1, e: {f: 2}, k: "new"}, g: [1, [1, 9], {h: 1, j: 3}, 40], x: [], y: {}}
func TestComplexDiffBecomesExactlyTheseChanges(t *testing.T) {
	got := describeDiff(t, `{
		"d": {"z": false},
		"u": {"a": 2},
		"i": {"x": [], "y": {}},
		"sb": {
			"d": {"d": false},
			"i": {"k": "new"},
			"se": {"u": {"f": 2}}
		},
		"sg": {
			"a": true,
			"l": 4,
			"s1": {"a": true, "l": 2, "u1": 9},
			"s2": {"d": {"i": false}, "i": {"j": 3}},
			"u3": 40
		}
	}`)
	want := &UpdateDescription{
		// Outer arrays first: g is cut before g.1 is.
		Truncate: []ArrayTruncation{{Path: "g", NewSize: 4}, {Path: "g.1", NewSize: 2}},
		// u then i of the top level, then each sub-diff in turn, depth first.
		Set: setOf(`{"a": 2, "x": [], "y": {}, "b.k": "new", "b.e.f": 2, "g.1.1": 9, "g.2.j": 3, "g.3": 40}`),
		// The same walk: z at the top, then b.d, then g.2.i.
		Unset: []string{"z", "b.d", "g.2.i"},
	}
	if g, w := renderDescription(got), renderDescription(want); g != w {
		t.Errorf("the diff became\n%s\nwant\n%s", g, w)
	}
}

// The server's own tests of how a change stream reads a diff
// (src/mongo/db/pipeline/change_stream_document_diff_parser_test.cpp): where the server finds a
// path unambiguous, the oplog parser must give the same paths; where a field name has a dot, it
// must refresh instead.
func TestDiffsAgreeWithTheServersChangeStreamParser(t *testing.T) {
	for _, tc := range []struct {
		name, diff string
		want       *UpdateDescription // nil: refresh
	}{
		{
			"DoesNotDisambiguateIfOnlyArrayIndicesPresent",
			`{"sa": {"a": true, "s0": {"u": {"b": 1}}}}`,
			&UpdateDescription{Set: setOf(`{"a.0.b": 1}`)},
		},
		{
			// A field named "0" of an embedded document: the same path sets it, on the same
			// document shape.
			"DisambiguatesNumericFields",
			`{"sa": {"u": {"0": 1}}}`,
			&UpdateDescription{Set: setOf(`{"a.0": 1}`)},
		},
		{
			"DisambiguatesNumericFieldsFromArrayIndices",
			`{"sa": {"s0": {"a": true, "u0": 1}}}`,
			&UpdateDescription{Set: setOf(`{"a.0.0": 1}`)},
		},
		{
			"DoesNotDisambiguateNumericFieldAtRootOfDocument",
			`{"u": {"0": 1}}`,
			&UpdateDescription{Set: setOf(`{"0": 1}`)},
		},
		{
			"DoesNotDisambiguateNumericFieldWithLeadingZeroes",
			`{"sa": {"u": {"01": 1}}}`,
			&UpdateDescription{Set: setOf(`{"a.01": 1}`)},
		},
		{"DisambiguatesDottedFields", `{"u": {"a.b": 1}, "sc.d.": {"u": {"e": 1}}}`, nil},
		{"DisambiguatesRemovedFields", `{"d": {"a.b": false}, "sc": {"d": {"0": false}}}`, nil},
		{"DisambiguatesTruncatedArrays", `{"sa.b": {"a": true, "l": 5}}`, nil},
		{"DoesNotFullyDisambiguateWithDuplicateFieldsInDiff", `{"u": {"a.b": 2}, "sa": {"u": {"b": 1}}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if g, w := renderDescription(describeDiff(t, tc.diff)), renderDescription(tc.want); g != w {
				t.Errorf("%s became\n%s\nwant\n%s", tc.diff, g, w)
			}
		})
	}
}

func TestDiffsThatNeedARefresh(t *testing.T) {
	for name, diff := range map[string]string{
		// 8.0+ patches part of a BinData value in a b section (time-series buckets, as in
		// jstests/change_streams/timeseries.js): {o: offset, d: bytes}, no value to set.
		"binary patch":                   `{"scontrol": {"u": {"count": 2}}, "sdata": {"b": {"ts": {"o": 10, "d": {"$binary": {"base64": "gA4AAAAAAAAAAA==", "subType": "00"}}}}}}`,
		"field name starting with $":     `{"i": {"$price": 1}}`,
		"sub-diff of a $ field":          `{"s$meta": {"u": {"a": 1}}}`,
		"empty field name":               `{"u": {"": 1}}`,
		"sub-diff of an empty name":      `{"s": {"u": {"a": 1}}}`,
		"dotted name inside an array":    `{"sa": {"a": true, "s0": {"u": {"b.c": 1}}}}`,
		"section from a later server":    `{"u": {"a": 1}, "x": {"b": 1}}`,
		"array entry of an unknown kind": `{"sa": {"a": true, "d0": false}}`,
	} {
		if got := describeDiff(t, diff); got != nil {
			t.Errorf("%s: %s became\n%s\nwant a refresh", name, diff, renderDescription(got))
		}
	}
}

func TestEmptyDiffChangesNothing(t *testing.T) {
	got := describeDiff(t, `{}`)
	if got == nil || len(got.Set)+len(got.Unset)+len(got.Truncate) != 0 {
		t.Fatalf("an empty diff became %s, want an empty description", renderDescription(got))
	}
}

func TestPlainPath(t *testing.T) {
	for path, want := range map[string]bool{
		"a": true, "a.b.0.c": true, "0": true, "a.01": true,
		"": false, "a.": false, ".a": false, "a..b": false, "a.$": false, "a.$[]": false, "a.$[x].b": false, "$a": false,
	} {
		if got := plainPath(path); got != want {
			t.Errorf("plainPath(%q) = %v, want %v", path, got, want)
		}
	}
}

// The values in Set are the diff's own BSON values, ready to marshal into an update.
func TestSetValuesMarshal(t *testing.T) {
	d := describeDiff(t, `{"u": {"n": {"$numberLong": "5"}, "when": {"$date": "2023-11-15T08:00:00Z"}}}`)
	update, err := bson.Marshal(bson.D{{Key: "$set", Value: d.Set}})
	if err != nil {
		t.Fatal(err)
	}
	want := ejson(`{"$set": {"n": {"$numberLong": "5"}, "when": {"$date": "2023-11-15T08:00:00Z"}}}`)
	if bson.Raw(update).String() != want.String() {
		t.Fatalf("marshalled %s, want %s", bson.Raw(update), want)
	}
}
