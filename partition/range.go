package partition

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
)

// Range is the part of one collection, by _id, that one partition covers. Unless Whole, it never spans
// two canonical BSON types (bsonorder.TypeRank), because MongoDB orders values of different types by
// type first, and a range query on _id with bounds of one type only matches that type ("type
// bracketing").
//
// Bounds are ordered as bsonorder.Compare orders them, which is MongoDB's order with the simple
// (binary) collation. Split never puts NaN in a bound: NaN is the smallest number, so it always falls
// in the first range of the numbers.
//
// A zero RawValue is an absent bound; the driver omits it when encoding (RawValue is a bson.Zeroer)
// and leaves it zero when the field is missing, so a Range round-trips through a partition document.
type Range struct {
	Whole bool          `bson:"whole,omitempty"` // the whole collection, every _id type (small collections)
	Rank  int           `bson:"rank"`            // bsonorder.TypeRank of every _id in the range, unless Whole
	Min   bson.RawValue `bson:"min,omitempty"`   // inclusive lower bound; absent: from the type's first value
	Max   bson.RawValue `bson:"max,omitempty"`   // exclusive upper bound; absent: through the type's last value
}

// rankInfo describes one canonical type rank: the BSON types that share it, in $type-code form.
type rankInfo struct {
	name  string
	types []bsontype.Type
	// id is false for the ranks whose values MongoDB rejects as an _id (arrays, regular expressions);
	// Split does not look for them.
	id bool
}

// ranks lists every rank in ascending order (a test checks the order against bsonorder).
var ranks = []rankInfo{
	{name: "minKey", types: []bsontype.Type{bsontype.MinKey}, id: true},
	{name: "undefined", types: []bsontype.Type{bsontype.Undefined}, id: true},
	{name: "null", types: []bsontype.Type{bsontype.Null}, id: true},
	{name: "number", types: []bsontype.Type{bsontype.Double, bsontype.Int32, bsontype.Int64, bsontype.Decimal128}, id: true},
	{name: "string", types: []bsontype.Type{bsontype.String, bsontype.Symbol}, id: true},
	{name: "object", types: []bsontype.Type{bsontype.EmbeddedDocument}, id: true},
	{name: "array", types: []bsontype.Type{bsontype.Array}},
	{name: "binary", types: []bsontype.Type{bsontype.Binary}, id: true},
	{name: "objectId", types: []bsontype.Type{bsontype.ObjectID}, id: true},
	{name: "bool", types: []bsontype.Type{bsontype.Boolean}, id: true},
	{name: "date", types: []bsontype.Type{bsontype.DateTime}, id: true},
	{name: "timestamp", types: []bsontype.Type{bsontype.Timestamp}, id: true},
	{name: "regex", types: []bsontype.Type{bsontype.Regex}},
	{name: "dbPointer", types: []bsontype.Type{bsontype.DBPointer}, id: true},
	{name: "javascript", types: []bsontype.Type{bsontype.JavaScript}, id: true},
	{name: "codeWithScope", types: []bsontype.Type{bsontype.CodeWithScope}, id: true},
	{name: "maxKey", types: []bsontype.Type{bsontype.MaxKey}, id: true},
}

var (
	numberRank = bsonorder.TypeRank(bsontype.Double)
	stringRank = bsonorder.TypeRank(bsontype.String)
)

// maxBoundChars keeps String short enough for a log line or a progress table.
const maxBoundChars = 40

// rankByNumber finds a rank's description; ok is false for a rank no BSON type has.
func rankByNumber(rank int) (rankInfo, bool) {
	for _, info := range ranks {
		if bsonorder.TypeRank(info.types[0]) == rank {
			return info, true
		}
	}
	return rankInfo{}, false
}

// typeCodes returns the $type codes of a rank: the type bytes, MinKey's 0xFF being -1.
func typeCodes(rank int) bson.A {
	info, _ := rankByNumber(rank)
	codes := make(bson.A, len(info.types))
	for i, t := range info.types {
		codes[i] = int32(int8(t))
	}
	return codes
}

// rankCondition is an _id condition that holds exactly for the values of rank. Strings are kept in
// their type by bracketing ($gte the empty string, the smallest string) instead of $type [2, 14],
// because the sandbox server rejects the symbol code 14 and bracketing already includes symbols on
// MongoDB, which compares them as strings.
func rankCondition(rank int) bson.D {
	if rank == stringRank {
		return bson.D{{Key: "$gte", Value: ""}}
	}
	return bson.D{{Key: "$type", Value: typeCodes(rank)}}
}

// singleValued reports whether a rank holds one value only (every null equals every null), so that
// "after" any value of it leaves nothing of it to read. Filter says so without a comparison, which for
// undefined MongoDB would refuse ("cannot compare to undefined").
func singleValued(rank int) bool {
	switch rank {
	case bsonorder.TypeRank(bsontype.MinKey), bsonorder.TypeRank(bsontype.Undefined),
		bsonorder.TypeRank(bsontype.Null), bsonorder.TypeRank(bsontype.MaxKey):
		return true
	}
	return false
}

// Filter returns the find filter for the range's documents with _id > after (after absent: all of
// them), in MongoDB's _id order. after is what a worker checkpointed: the last _id it copied.
//
// Non-Whole ranges keep to their type with $type (strings: by bracketing, see rankCondition). Numbers
// need care with NaN, which MongoDB sorts below every number but which no $gt/$lt range matches: the
// filter of the first numeric range names NaN explicitly, and a later range that is open above
// excludes it explicitly, because the sandbox server (wrongly) lets $gt and $gte match NaN.
//
// A Whole range resumed after some _id also needs the _ids of the types above that _id's, which no
// bracketed comparison reaches: those come from an aggregation comparison ($expr), which orders
// values of different types by type, as the _id sort does. It is only asked about the other types, so
// the servers' quirks within a type (NaN again) do not matter. That branch cannot use an index, which
// is acceptable because Whole ranges are small.
//
// The order is the simple collation's: on a collection with another default collation, run the filter
// with bsonorder.SimpleCollation (the worker does), or string ranges will not match what Split planned.
func (r Range) Filter(after bson.RawValue) bson.D {
	if r.Whole {
		return wholeFilter(after)
	}
	return r.boundedFilter(after)
}

func wholeFilter(after bson.RawValue) bson.D {
	if !present(after) {
		return bson.D{}
	}
	rank := bsonorder.TypeRank(after.Type)
	sameRank := Range{Rank: rank}.boundedFilter(after)
	higherRanks := bson.D{
		{Key: "_id", Value: bson.D{{Key: "$not", Value: rankCondition(rank)}}},
		{Key: "$expr", Value: bson.D{{Key: "$gt", Value: bson.A{"$_id", bson.D{{Key: "$literal", Value: after}}}}}},
	}
	return bson.D{{Key: "$or", Value: bson.A{sameRank, higherRanks}}}
}

// boundedFilter is Filter for a range within one rank.
func (r Range) boundedFilter(after bson.RawValue) bson.D {
	lowerOp, lower := "", bson.RawValue{}
	if present(r.Min) {
		lowerOp, lower = "$gte", r.Min
	}
	if present(after) {
		switch afterRank := bsonorder.TypeRank(after.Type); {
		case afterRank > r.Rank:
			return matchNothing()
		case afterRank == r.Rank && singleValued(r.Rank):
			return matchNothing()
		case afterRank == r.Rank && (lowerOp == "" || bsonorder.Compare(after, lower) >= 0):
			lowerOp, lower = "$gt", after
		}
		// A lower rank than the range's: every _id of the range is after it.
	}

	// NaN as a lower bound: "$gte NaN" is every number, "$gt NaN" every number but NaN.
	excludeNaN := false
	if r.Rank == numberRank && lowerOp != "" && isNaN(lower) {
		excludeNaN = lowerOp == "$gt"
		lowerOp = ""
	}

	cond := rankCondition(r.Rank)
	if lowerOp != "" {
		if r.Rank == stringRank {
			cond = bson.D{} // a string bound brackets the type by itself
		}
		cond = append(cond, bson.E{Key: lowerOp, Value: lower})
	}
	if present(r.Max) {
		cond = append(cond, bson.E{Key: "$lt", Value: r.Max})
	}
	if r.Rank == numberRank {
		openBelow := lowerOp == "" && !excludeNaN
		switch {
		case openBelow && present(r.Max):
			return bson.D{{Key: "$or", Value: bson.A{
				bson.D{{Key: "_id", Value: cond}},
				bson.D{{Key: "_id", Value: math.NaN()}},
			}}}
		case !openBelow && !present(r.Max):
			cond = append(cond, bson.E{Key: "$ne", Value: math.NaN()})
		}
	}
	return bson.D{{Key: "_id", Value: cond}}
}

// matchNothing is a filter no document matches, for a resume point past the end of the range.
func matchNothing() bson.D {
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}}
}

// Contains reports whether id falls in the range, by bsonorder in pure Go: what Filter selects on a
// server, for tests and assertions.
func (r Range) Contains(id bson.RawValue) bool {
	if r.Whole {
		return true
	}
	if bsonorder.TypeRank(id.Type) != r.Rank {
		return false
	}
	if present(r.Min) && bsonorder.Compare(id, r.Min) < 0 {
		return false
	}
	return !present(r.Max) || bsonorder.Compare(id, r.Max) < 0
}

// String describes the range for people: "number [5, 900)", "whole collection",
// `string ["m", end]`, "objectId [start, end]".
func (r Range) String() string {
	if r.Whole {
		return "whole collection"
	}
	name := "rank " + strconv.Itoa(r.Rank)
	if info, ok := rankByNumber(r.Rank); ok {
		name = info.name
	}
	lower, upper := "start", "end]"
	if present(r.Min) {
		lower = formatBound(r.Min)
	}
	if present(r.Max) {
		upper = formatBound(r.Max) + ")"
	}
	return fmt.Sprintf("%s [%s, %s", name, lower, upper)
}

// formatBound writes the common _id types plainly and the others as extended JSON, cut to
// maxBoundChars.
func formatBound(v bson.RawValue) string {
	var s string
	switch v.Type {
	case bsontype.Int32:
		s = strconv.FormatInt(int64(v.Int32()), 10)
	case bsontype.Int64:
		s = strconv.FormatInt(v.Int64(), 10)
	case bsontype.Double:
		s = strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case bsontype.Decimal128:
		s = v.Decimal128().String()
	case bsontype.String:
		s = strconv.Quote(v.StringValue())
	case bsontype.ObjectID:
		id := v.ObjectID()
		s = hex.EncodeToString(id[:])
	default:
		s = v.String()
	}
	if len(s) > maxBoundChars {
		cut := maxBoundChars
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // do not split a multi-byte character
		}
		s = strings.TrimSpace(s[:cut]) + "…"
	}
	return s
}

// present reports whether a bound or resume point is set; see Range about zero RawValues.
func present(v bson.RawValue) bool { return v.Type != 0 }

// isNaN reports whether v is a double or decimal NaN (all of which MongoDB treats as one value).
func isNaN(v bson.RawValue) bool {
	switch v.Type {
	case bsontype.Double:
		f, ok := v.DoubleOK()
		return ok && math.IsNaN(f)
	case bsontype.Decimal128:
		d, ok := v.Decimal128OK()
		return ok && d.IsNaN()
	}
	return false
}
