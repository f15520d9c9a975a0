package partition

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// splitTestContext bounds one test's server calls well inside go test's own timeout.
func splitTestContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawOf encodes a Go value as the RawValue a server would send for it.
func rawOf(t testing.TB, v any) bson.RawValue {
	t.Helper()
	if v == nil {
		return bson.RawValue{Type: bsontype.Null}
	}
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return bson.RawValue{Type: typ, Value: data}
}

// idKey identifies an _id by its exact encoding, so that sets of _ids from different queries compare.
func idKey(v bson.RawValue) string { return string(rune(v.Type)) + string(v.Value) }

func decimalOf(t testing.TB, s string) primitive.Decimal128 {
	t.Helper()
	d, err := primitive.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func objectIDOf(t testing.TB, s string) primitive.ObjectID {
	t.Helper()
	id, err := primitive.ObjectIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Split covers every rank an _id can have by walking this table, so a rank missing from it, or out
// of order, would leave documents uncopied or ranges unsorted.
func TestRankTableCoversEveryTypeInServerOrder(t *testing.T) {
	t.Parallel()
	seen := make(map[bsontype.Type]bool)
	prev := math.MinInt
	for _, info := range ranks {
		rank := bsonorder.TypeRank(info.types[0])
		if rank <= prev {
			t.Errorf("%s (rank %d) is not after rank %d", info.name, rank, prev)
		}
		prev = rank
		for _, typ := range info.types {
			if bsonorder.TypeRank(typ) != rank {
				t.Errorf("%s lists %s, whose rank is %d, not %d", info.name, typ, bsonorder.TypeRank(typ), rank)
			}
			seen[typ] = true
		}
	}
	for typ := bsontype.Double; typ <= bsontype.Decimal128; typ++ {
		if !seen[typ] {
			t.Errorf("no rank lists %s", typ)
		}
	}
	for _, typ := range []bsontype.Type{bsontype.MinKey, bsontype.MaxKey} {
		if !seen[typ] {
			t.Errorf("no rank lists %s", typ)
		}
	}
}

func TestContains(t *testing.T) {
	t.Parallel()
	number, str := bsonorder.TypeRank(bsontype.Int32), bsonorder.TypeRank(bsontype.String)
	oidRank := bsonorder.TypeRank(bsontype.ObjectID)
	fiveTo900 := Range{Rank: number, Min: rawOf(t, int32(5)), Max: rawOf(t, int64(900))}
	below900 := Range{Rank: number, Max: rawOf(t, 900.0)}
	from5 := Range{Rank: number, Min: rawOf(t, decimalOf(t, "5"))}
	fromM := Range{Rank: str, Min: rawOf(t, "m")}
	oidLow, oidHigh := objectIDOf(t, "650000000000000000000000"), objectIDOf(t, "660000000000000000000000")
	oids := Range{Rank: oidRank, Min: rawOf(t, oidLow), Max: rawOf(t, oidHigh)}
	trues := Range{Rank: bsonorder.TypeRank(bsontype.Boolean), Min: rawOf(t, true)}
	minKeys := Range{Rank: bsonorder.TypeRank(bsontype.MinKey)}

	tests := []struct {
		name string
		r    Range
		id   any
		want bool
	}{
		{"whole holds a number", Range{Whole: true}, int32(7), true},
		{"whole holds MaxKey", Range{Whole: true}, primitive.MaxKey{}, true},
		{"lower bound is inclusive", fiveTo900, int32(5), true},
		{"lower bound is inclusive across numeric types", fiveTo900, 5.0, true},
		{"just below the lower bound", fiveTo900, 4.999, false},
		{"just below the upper bound", fiveTo900, 899.5, true},
		{"upper bound is exclusive", fiveTo900, int32(900), false},
		{"upper bound is exclusive for an equal decimal", fiveTo900, decimalOf(t, "900.00"), false},
		{"a string that looks like a number is another type", fiveTo900, "6", false},
		{"NaN sorts below every number", fiveTo900, math.NaN(), false},
		{"open below holds NaN", below900, math.NaN(), true},
		{"open below holds -Infinity", below900, math.Inf(-1), true},
		{"open below stays in its type", below900, primitive.MinKey{}, false},
		{"open above holds +Infinity", from5, math.Inf(1), true},
		{"open above has no NaN", from5, math.NaN(), false},
		{"open above stays in its type", from5, "zzz", false},
		{"string bound is inclusive", fromM, "m", true},
		{"string below the bound", fromM, "lzzz", false},
		{"string above the bound", fromM, "键", true},
		{"symbols are strings", fromM, primitive.Symbol("n"), true},
		{"objectId in range", oids, objectIDOf(t, "6500000000000000000000ff"), true},
		{"objectId at the upper bound", oids, oidHigh, false},
		{"bool bound", trues, true, true},
		{"false is below true", trues, false, false},
		{"MinKey rank holds MinKey", minKeys, primitive.MinKey{}, true},
		{"MinKey rank has no null", minKeys, nil, false},
	}
	for _, tt := range tests {
		if got := tt.r.Contains(rawOf(t, tt.id)); got != tt.want {
			t.Errorf("%s: %v.Contains(%v) = %v, want %v", tt.name, tt.r, tt.id, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	number := bsonorder.TypeRank(bsontype.Int64)
	tests := []struct {
		r    Range
		want string
	}{
		{Range{Whole: true}, "whole collection"},
		{Range{Rank: number, Min: rawOf(t, int32(5)), Max: rawOf(t, int64(900))}, "number [5, 900)"},
		{Range{Rank: number, Max: rawOf(t, 2.5)}, "number [start, 2.5)"},
		{Range{Rank: bsonorder.TypeRank(bsontype.String), Min: rawOf(t, "m")}, `string ["m", end]`},
		{Range{Rank: bsonorder.TypeRank(bsontype.ObjectID), Min: rawOf(t, objectIDOf(t, "650000000000000000000001"))},
			"objectId [650000000000000000000001, end]"},
		{Range{Rank: bsonorder.TypeRank(bsontype.MaxKey)}, "maxKey [start, end]"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	long := Range{Rank: bsonorder.TypeRank(bsontype.String), Max: rawOf(t, strings.Repeat("键", 100))}.String()
	if len(long) > 80 || !strings.HasSuffix(long, "…)") {
		t.Errorf("a long bound is not cut short: %q", long)
	}
}

// The Store keeps ranges in partition documents, so a Range must come back from a real server with
// the very bounds it was written with: same BSON type (an int64 bound read back as a double would
// move the boundary), same bytes, and an absent bound still absent (read back as null it would
// select nothing).
func TestRangeRoundTripsThroughServer(t *testing.T) {
	t.Parallel()
	ctx := splitTestContext(t)
	coll := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("fleetsync_internal").Collection("ranges")
	rank := func(v any) int { return bsonorder.TypeRank(rawOf(t, v).Type) }
	ranges := []Range{
		{Whole: true},
		{Rank: rank(1), Min: rawOf(t, int64(5_000_000_000)), Max: rawOf(t, decimalOf(t, "7.5E9"))},
		{Rank: rank(1), Max: rawOf(t, 2.5)},
		{Rank: rank(1), Min: rawOf(t, int32(-7))},
		{Rank: rank(""), Min: rawOf(t, "clé-m")},
		{Rank: rank(primitive.ObjectID{}), Min: rawOf(t, objectIDOf(t, "650000000000000000000001")),
			Max: rawOf(t, objectIDOf(t, "660000000000000000000000"))},
		{Rank: rank(primitive.DateTime(0)), Min: rawOf(t, primitive.DateTime(-86_400_000))},
		{Rank: rank(primitive.Binary{}), Max: rawOf(t, primitive.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0x42}, 16)})},
		{Rank: rank(bson.D{}), Min: rawOf(t, bson.D{{Key: "a", Value: 1}}), Max: rawOf(t, bson.D{{Key: "b", Value: "x"}})},
		{Rank: rank(primitive.Timestamp{}), Min: rawOf(t, primitive.Timestamp{T: 1, I: 2})},
		{Rank: rank(false), Min: rawOf(t, false), Max: rawOf(t, true)},
		{Rank: rank(primitive.MinKey{})},
	}
	type holder struct {
		ID    int   `bson:"_id"`
		Range Range `bson:"range"`
	}
	for i, r := range ranges {
		if _, err := coll.InsertOne(ctx, holder{ID: i, Range: r}); err != nil {
			t.Fatalf("inserting %v: %v", r, err)
		}
	}
	for i, want := range ranges {
		var raw bson.Raw
		if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: i}}).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		var got holder
		if err := bson.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Range.Whole != want.Whole || got.Range.Rank != want.Rank ||
			!sameRaw(got.Range.Min, want.Min) || !sameRaw(got.Range.Max, want.Max) {
			t.Errorf("wrote %v, read back %v (%s)", want, got.Range, raw)
		}
		for key, bound := range map[string]bson.RawValue{"min": want.Min, "max": want.Max} {
			if _, err := raw.LookupErr("range", key); (err == nil) != present(bound) {
				t.Errorf("%v: field range.%s is stored: %v, bound present: %v (%s)", want, key, err == nil, present(bound), raw)
			}
		}
	}
}

func sameRaw(a, b bson.RawValue) bool { return a.Type == b.Type && bytes.Equal(a.Value, b.Value) }

// resumeIDs are _ids of every type an _id may have on the sandbox, with the numeric edge cases that
// MongoDB orders specially (NaN lowest, infinities, -0, int/double/decimal comparing by value).
func resumeIDs(t *testing.T) []any {
	ids := []any{
		primitive.MinKey{}, nil,
		math.NaN(), math.Inf(-1), int64(-5_000_000_000), int32(-3), 0.0, decimalOf(t, "0.5"), int32(1), 2.5,
		int64(3), decimalOf(t, "9.99"), int32(10), 10.5, int64(99), 100.0, decimalOf(t, "1E30"), math.Inf(1),
		"", "a", "l", "m", "mm", "z", "键",
		bson.D{}, bson.D{{Key: "a", Value: 1}},
		// UUIDs only: the sandbox compares binaries of different subtypes as if they were different types
		// (MongoDB orders them by length, then subtype, then bytes), so it cannot run a binary range
		// that spans subtypes.
		primitive.Binary{Subtype: 4, Data: make([]byte, 16)}, primitive.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0x9c}, 16)},
		objectIDOf(t, "640000000000000000000000"), objectIDOf(t, "650000000000000000000000"),
		objectIDOf(t, "650000000000000000000001"), objectIDOf(t, "700000000000000000000000"),
		false, true,
		primitive.DateTime(-86_400_000), primitive.DateTime(1_700_000_000_000),
		primitive.Timestamp{T: 1, I: 1}, primitive.Timestamp{T: 2, I: 0},
		primitive.MaxKey{},
	}
	return ids
}

// A worker that lost its lease is replaced by one that resumes after the checkpoint. Whatever the
// checkpoint (any _id of the collection, one that was deleted meanwhile, the range's bounds, or an
// _id of another type for a Whole range), the server must return exactly the range's _ids after it
// in MongoDB's order: one missing is a document never copied.
func TestFilterAfterReturnsExactlyTheRestOfTheRange(t *testing.T) {
	t.Parallel()
	ctx := splitTestContext(t)
	coll := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("shop").Collection("resume")
	var all []bson.RawValue
	for _, id := range resumeIDs(t) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
			t.Fatalf("inserting _id %v: %v", id, err)
		}
		all = append(all, rawOf(t, id))
	}

	rank := func(v any) int { return bsonorder.TypeRank(rawOf(t, v).Type) }
	number, str, oid := rank(1), rank(""), rank(primitive.ObjectID{})
	ranges := []Range{
		{Whole: true},
		{Rank: number, Max: rawOf(t, int32(0))},
		{Rank: number, Min: rawOf(t, int32(0)), Max: rawOf(t, decimalOf(t, "10"))},
		{Rank: number, Min: rawOf(t, decimalOf(t, "10")), Max: rawOf(t, 99.5)},
		{Rank: number, Min: rawOf(t, 99.5)},
		{Rank: number},
		{Rank: str, Max: rawOf(t, "m")},
		{Rank: str, Min: rawOf(t, "m")},
		{Rank: oid, Max: rawOf(t, objectIDOf(t, "650000000000000000000001"))},
		{Rank: oid, Min: rawOf(t, objectIDOf(t, "650000000000000000000001"))},
		{Rank: rank(false), Min: rawOf(t, true)},
		{Rank: rank(nil)},
		{Rank: rank(primitive.MinKey{})},
		{Rank: rank(primitive.MaxKey{})},
		{Rank: rank(bson.D{})},
		{Rank: rank(primitive.Binary{}), Max: rawOf(t, primitive.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0x50}, 16)})},
		{Rank: rank(primitive.Binary{}), Min: rawOf(t, primitive.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0x50}, 16)})},
		{Rank: rank(primitive.DateTime(0))},
		{Rank: rank(primitive.Timestamp{})},
	}
	// Resume points: none, every _id, and values no document has.
	afters := []bson.RawValue{{}}
	afters = append(afters, all...)
	for _, v := range []any{int32(5), -0.0, decimalOf(t, "NaN"), "ma", "zz", objectIDOf(t, "6f0000000000000000000000")} {
		afters = append(afters, rawOf(t, v))
	}

	for _, r := range ranges {
		for _, after := range afters {
			var want []string
			for _, id := range all {
				if r.Contains(id) && (!present(after) || bsonorder.Compare(id, after) > 0) {
					want = append(want, idKey(id))
				}
			}
			got := idsMatching(t, ctx, coll, r.Filter(after))
			gotKeys := make([]string, len(got))
			for i, id := range got {
				gotKeys[i] = idKey(id)
			}
			slices.Sort(want)
			slices.Sort(gotKeys)
			if !slices.Equal(gotKeys, want) {
				t.Errorf("%v after %v: filter %v returned %s, want %s", r, after, r.Filter(after),
					describeIDs(got), describeKeys(want, all))
			}
		}
	}
}

// idsMatching runs filter and returns the _ids it matches.
func idsMatching(t *testing.T, ctx context.Context, coll *mongo.Collection, filter bson.D) []bson.RawValue {
	t.Helper()
	cur, err := coll.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatalf("find %v: %v", filter, err)
	}
	var docs []struct {
		ID bson.RawValue `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatalf("find %v: %v", filter, err)
	}
	ids := make([]bson.RawValue, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids
}

func describeIDs(ids []bson.RawValue) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func describeKeys(keys []string, all []bson.RawValue) string {
	var ids []bson.RawValue
	for _, id := range all {
		if slices.Contains(keys, idKey(id)) {
			ids = append(ids, id)
		}
	}
	return fmt.Sprintf("%d %s", len(ids), describeIDs(ids))
}
