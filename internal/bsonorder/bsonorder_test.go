package bsonorder

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

func TestTypeRank(t *testing.T) {
	// The server's canonicalizeBSONType numbers.
	want := map[bsontype.Type]int{
		bsontype.MinKey:           -1,
		bsontype.Undefined:        0,
		bsontype.Null:             5,
		bsontype.Int32:            10,
		bsontype.Int64:            10,
		bsontype.Double:           10,
		bsontype.Decimal128:       10,
		bsontype.String:           15,
		bsontype.Symbol:           15,
		bsontype.EmbeddedDocument: 20,
		bsontype.Array:            25,
		bsontype.Binary:           30,
		bsontype.ObjectID:         35,
		bsontype.Boolean:          40,
		bsontype.DateTime:         45,
		bsontype.Timestamp:        47,
		bsontype.Regex:            50,
		bsontype.DBPointer:        55,
		bsontype.JavaScript:       60,
		bsontype.CodeWithScope:    65,
		bsontype.MaxKey:           127,
	}
	for typ, rank := range want {
		if got := TypeRank(typ); got != rank {
			t.Errorf("TypeRank(%v) = %d, want %d", typ, got, rank)
		}
	}
	for _, unknown := range []bsontype.Type{0x14, 0x20, 0x80, 0xFE} {
		if got := TypeRank(unknown); got >= TypeRank(bsontype.MinKey) {
			t.Errorf("TypeRank(unknown %#x) = %d, want below MinKey", byte(unknown), got)
		}
	}
}

// TestCompareTypeOrder puts one value of every type in the server's order (the documented order,
// plus Undefined below Null as canonicalizeBSONType has it) and checks every pair.
func TestCompareTypeOrder(t *testing.T) {
	ordered := []any{
		primitive.MinKey{},
		primitive.Undefined{},
		primitive.Null{},
		int32(1 << 30), // a large number still sorts below every string
		"",
		bson.D{},
		bson.A{},
		primitive.Binary{Data: []byte{}},
		primitive.NilObjectID,
		false,
		primitive.DateTime(math.MinInt64),
		primitive.Timestamp{},
		primitive.Regex{},
		primitive.DBPointer{DB: "a", Pointer: primitive.NilObjectID},
		primitive.JavaScript(""),
		primitive.CodeWithScope{Code: "", Scope: bson.D{}},
		primitive.MaxKey{},
	}
	for i := range ordered {
		for j := range ordered {
			a, b := val(t, ordered[i]), val(t, ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := Compare(a, b); got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", a.Type, b.Type, got, want)
			}
		}
	}
}

func TestCompareNumbers(t *testing.T) {
	nan := math.NaN()
	inf := math.Inf(1)
	checkPairs(t, []pairCase{
		{"int32 vs int64 equal", int32(5), int64(5), 0},
		{"int32 vs double equal", int32(5), 5.0, 0},
		{"int64 vs double equal", int64(5), 5.0, 0},
		{"decimal vs int32 equal", dec(t, "5"), int32(5), 0},
		{"decimal trailing zeros", dec(t, "5.00"), int64(5), 0},
		{"decimal exponent form", dec(t, "50E-1"), 5.0, 0},
		{"decimal vs decimal scale", dec(t, "1.0"), dec(t, "1"), 0},
		{"int32 order", int32(-1), int32(2), -1},
		{"int64 vs int32", int64(3), int32(5), -1},
		{"double fraction vs int", 4.5, int32(5), -1},
		{"int64 beyond 2^53 vs double", int64(9007199254740993), 9007199254740992.0, 1},
		{"int64 2^53 vs double equal", int64(9007199254740992), 9007199254740992.0, 0},
		{"negative int64 beyond 2^53", int64(-9007199254740993), -9007199254740992.0, -1},
		{"MaxInt64 vs 2^63", int64(math.MaxInt64), 9223372036854775808.0, -1},
		{"MinInt64 vs -2^63 equal", int64(math.MinInt64), -9223372036854775808.0, 0},
		{"MinInt64 vs below -2^63", int64(math.MinInt64), -9223372036854777856.0, 1},
		{"large int64 vs small fraction", int64(1 << 60), 0.5, 1},
		{"NaN equals NaN", nan, nan, 0},
		{"NaN below -Inf", nan, -inf, -1},
		{"NaN below MinInt64", nan, int64(math.MinInt64), -1},
		{"NaN below int32", nan, int32(math.MinInt32), -1},
		{"-Inf below MinInt64", -inf, int64(math.MinInt64), -1},
		{"+Inf above MaxInt64", inf, int64(math.MaxInt64), 1},
		{"-Inf below -Max", -inf, -math.MaxFloat64, -1},
		{"Inf equals Inf", inf, inf, 0},
		{"-0 equals 0", math.Copysign(0, -1), 0.0, 0},
		{"-0 equals int 0", math.Copysign(0, -1), int32(0), 0},
		{"decimal NaN equals double NaN", dec(t, "NaN"), nan, 0},
		{"decimal NaN equals decimal NaN", dec(t, "NaN"), dec(t, "-NaN"), 0},
		{"decimal NaN below decimal -Inf", dec(t, "NaN"), dec(t, "-Infinity"), -1},
		{"decimal NaN below int", dec(t, "NaN"), int32(0), -1},
		{"double NaN below decimal -Inf", nan, dec(t, "-Infinity"), -1},
		{"decimal Inf equals double Inf", dec(t, "Infinity"), inf, 0},
		{"decimal -Inf equals double -Inf", dec(t, "-Infinity"), -inf, 0},
		{"decimal huge below +Inf", dec(t, "1E+6144"), inf, -1},
		{"decimal huge above MaxFloat64", dec(t, "1E+400"), math.MaxFloat64, 1},
		{"decimal -0 equals 0", dec(t, "-0"), int32(0), 0},
		{"decimal -0 equals double -0", dec(t, "-0.000"), math.Copysign(0, -1), 0},
		{"decimal 0E-6176 equals 0", dec(t, "0E-6176"), 0.0, 0},
		{"decimal tiny above 0", primitive.NewDecimal128(0, 7), 0.0, 1},
		{"decimal tiny below smallest double", primitive.NewDecimal128(0, 7), 5e-324, -1},
		{"decimal tiny negative below -0", dec(t, "-7E-6176"), math.Copysign(0, -1), -1},
		{"decimal tiny below int64", primitive.NewDecimal128(0, 7), int64(3), -1},
		{"decimal 0.1 below double 0.1", dec(t, "0.1"), 0.1, -1}, // double 0.1 is 0.1000000000000000055...
		{"decimal 0.1 truncated to 34 digits", dec(t, "0.1000000000000000055511151231257827"), 0.1, -1},
		{"decimal 0.1 rounded up at 34 digits", dec(t, "0.1000000000000000055511151231257828"), 0.1, 1},
		{"decimal 2.5 equals double", dec(t, "2.5"), 2.5, 0},
		{"decimal 2^53+1 above double 2^53", dec(t, "9007199254740993"), 9007199254740992.0, 1},
		{"decimal MaxInt64 equals int64", dec(t, "9223372036854775807"), int64(math.MaxInt64), 0},
		{"decimal 2^63 above MaxInt64", dec(t, "9223372036854775808"), int64(math.MaxInt64), 1},
		{"decimal MinInt64 equals int64", dec(t, "-9223372036854775808"), int64(math.MinInt64), 0},
		{"decimal negative order", dec(t, "-2"), dec(t, "-1.5"), -1},
		{"decimal magnitude vs digits", dec(t, "99"), dec(t, "1E+2"), -1},
		{"decimal 34 digits", dec(t, "1234567890123456789012345678901234"), dec(t, "1234567890123456789012345678901235"), -1},
		{"decimal aligned digits", dec(t, "1.234567890123456789012345678901234"), dec(t, "1.2345678901234567890123456789012"), 1},
		{"decimal negative double", dec(t, "-1.5"), -1.25, -1},
		{"decimal subnormal double", dec(t, "5E-324"), 5e-324, 1}, // 5e-324 is 4.94...e-324
		{"decimal below max double", dec(t, "1.797693134862315708145274237317043E+308"), math.MaxFloat64, -1},
		{"decimal above max double", dec(t, "1.797693134862315708145274237317044E+308"), math.MaxFloat64, 1},
		// Non-canonical coefficients (above 10^34-1) are zero.
		{"non-canonical decimal is zero", primitive.NewDecimal128(6176<<49|(1<<49-1), math.MaxUint64), int32(0), 0},
		{"large-form decimal is zero", primitive.NewDecimal128(0x3<<61|6176<<47, 1), int32(0), 0},
	})
}

func TestCompareStrings(t *testing.T) {
	checkPairs(t, []pairCase{
		{"binary case order", "Str", "str", -1},
		{"prefix first", "a", "ab", -1},
		{"empty first", "", "a", -1},
		{"equal", "abc", "abc", 0},
		{"utf8 bytes not code points", "\uffff", "\U00010000", -1}, // EF BF BF < F0 90 80 80
		{"non-ascii after ascii", "é", "z", 1},
		{"embedded NUL", "a", "a\x00", -1},
		{"embedded NUL vs higher byte", "a\x00", "a\x01", -1},
		{"symbol equals string", primitive.Symbol("abc"), "abc", 0},
		{"symbol vs string by value", primitive.Symbol("a"), "b", -1},
		{"javascript bytewise", primitive.JavaScript("a"), primitive.JavaScript("b"), -1},
		{"javascript prefix", primitive.JavaScript("f"), primitive.JavaScript("f()"), -1},
	})
}

func TestCompareBinary(t *testing.T) {
	uuid := make([]byte, 16)
	checkPairs(t, []pairCase{
		{"length before subtype", primitive.Binary{Subtype: 5, Data: []byte("a")}, primitive.Binary{Subtype: 0, Data: []byte("aa")}, -1},
		{"length before bytes", primitive.Binary{Data: []byte{0xff}}, primitive.Binary{Data: []byte{0, 0}}, -1},
		{"subtype before bytes", primitive.Binary{Subtype: 0, Data: []byte("z")}, primitive.Binary{Subtype: 4, Data: []byte("a")}, -1},
		{"user subtype is unsigned", primitive.Binary{Subtype: 4, Data: uuid}, primitive.Binary{Subtype: 0x80, Data: uuid}, -1},
		{"length is numeric", primitive.Binary{Data: []byte("zzz")}, primitive.Binary{Data: make([]byte, 257)}, -1},
		{"bytes", primitive.Binary{Data: []byte("ab")}, primitive.Binary{Data: []byte("ac")}, -1},
		{"equal", primitive.Binary{Subtype: 4, Data: uuid}, primitive.Binary{Subtype: 4, Data: uuid}, 0},
		{"empty first", primitive.Binary{Subtype: 9}, primitive.Binary{Data: []byte{0}}, -1},
		// Old binary stores an inner length, which the server counts: "ab" is 6 bytes long.
		{"old binary counts inner length", primitive.Binary{Subtype: 2, Data: []byte("ab")}, primitive.Binary{Data: []byte("abcde")}, 1},
	})
}

func TestCompareOtherTypes(t *testing.T) {
	checkPairs(t, []pairCase{
		{"objectid bytewise", oid(1), oid(2), -1},
		{"objectid high byte first", primitive.ObjectID{0: 1}, primitive.ObjectID{11: 0xff}, 1},
		{"objectid equal", oid(7), oid(7), 0},
		{"bool", false, true, -1},
		{"bool equal", true, true, 0},
		{"date signed", primitive.DateTime(-1), primitive.DateTime(0), -1},
		{"date extremes", primitive.DateTime(math.MinInt64), primitive.DateTime(math.MaxInt64), -1},
		{"timestamp T first", primitive.Timestamp{T: 1, I: 100}, primitive.Timestamp{T: 2, I: 0}, -1},
		{"timestamp T unsigned", primitive.Timestamp{T: 1 << 31}, primitive.Timestamp{T: 1}, 1},
		{"timestamp I unsigned", primitive.Timestamp{T: 1, I: math.MaxUint32}, primitive.Timestamp{T: 1, I: 1}, 1},
		{"timestamp equal", primitive.Timestamp{T: 3, I: 4}, primitive.Timestamp{T: 3, I: 4}, 0},
		{"regex pattern first", primitive.Regex{Pattern: "a", Options: "x"}, primitive.Regex{Pattern: "b", Options: "i"}, -1},
		{"regex pattern prefix", primitive.Regex{Pattern: "a", Options: "z"}, primitive.Regex{Pattern: "ab"}, -1},
		{"regex options", primitive.Regex{Pattern: "a", Options: "i"}, primitive.Regex{Pattern: "a", Options: "m"}, -1},
		{"dbpointer ns length first", primitive.DBPointer{DB: "zz", Pointer: oid(9)}, primitive.DBPointer{DB: "aaa", Pointer: oid(0)}, -1},
		// 3 sorts before 257 even though 257's little-endian length starts with a smaller byte.
		{"dbpointer ns length numeric", primitive.DBPointer{DB: "zz", Pointer: oid(0)}, primitive.DBPointer{DB: strings.Repeat("a", 256), Pointer: oid(0)}, -1},
		{"dbpointer ns bytes", primitive.DBPointer{DB: "ab", Pointer: oid(9)}, primitive.DBPointer{DB: "ac", Pointer: oid(0)}, -1},
		{"dbpointer objectid", primitive.DBPointer{DB: "a", Pointer: oid(1)}, primitive.DBPointer{DB: "a", Pointer: oid(2)}, -1},
		{"code with scope code first",
			primitive.CodeWithScope{Code: "a", Scope: bson.D{{Key: "x", Value: 2}}},
			primitive.CodeWithScope{Code: "b", Scope: bson.D{{Key: "x", Value: 1}}}, -1},
		{"code with scope then scope",
			primitive.CodeWithScope{Code: "a", Scope: bson.D{{Key: "x", Value: 1}}},
			primitive.CodeWithScope{Code: "a", Scope: bson.D{{Key: "x", Value: 2.5}}}, -1},
		{"code with scope numeric scope equal",
			primitive.CodeWithScope{Code: "a", Scope: bson.D{{Key: "x", Value: int32(1)}}},
			primitive.CodeWithScope{Code: "a", Scope: bson.D{{Key: "x", Value: 1.0}}}, 0},
		{"null equals null", primitive.Null{}, primitive.Null{}, 0},
		{"undefined below null", primitive.Undefined{}, primitive.Null{}, -1},
		{"minkey equal", primitive.MinKey{}, primitive.MinKey{}, 0},
		{"maxkey equal", primitive.MaxKey{}, primitive.MaxKey{}, 0},
	})
}

func TestCompareDocuments(t *testing.T) {
	type docCase struct {
		name string
		a, b bson.D
		want int
	}
	for _, tc := range []docCase{
		{"empty equal", bson.D{}, bson.D{}, 0},
		{"empty first", bson.D{}, bson.D{{Key: "a", Value: primitive.MinKey{}}}, -1},
		{"prefix first", bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 0}}, -1},
		{"field order matters", bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}}, bson.D{{Key: "b", Value: 1}, {Key: "a", Value: 1}}, -1},
		{"type rank before field name", bson.D{{Key: "b", Value: primitive.MinKey{}}}, bson.D{{Key: "a", Value: 1}}, -1},
		{"field name before value", bson.D{{Key: "a", Value: 9}}, bson.D{{Key: "b", Value: 1}}, -1},
		{"field name bytewise", bson.D{{Key: "B", Value: 1}}, bson.D{{Key: "a", Value: 1}}, -1},
		{"field name prefix", bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "ab", Value: 1}}, -1},
		{"numbers across types equal", bson.D{{Key: "x", Value: int32(1)}}, bson.D{{Key: "x", Value: 1.0}}, 0},
		{"number before string", bson.D{{Key: "x", Value: 1e300}}, bson.D{{Key: "x", Value: ""}}, -1},
		{"string equals symbol", bson.D{{Key: "x", Value: "s"}}, bson.D{{Key: "x", Value: primitive.Symbol("s")}}, 0},
		{"second field decides", bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 2}}, bson.D{{Key: "a", Value: 1.0}, {Key: "b", Value: 3}}, -1},
		{"nested", bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: 1}}}}, bson.D{{Key: "a", Value: bson.D{{Key: "b", Value: 2}}}}, -1},
		{"undefined below null in field", bson.D{{Key: "a", Value: primitive.Undefined{}}}, bson.D{{Key: "a", Value: nil}}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := doc(t, tc.a), doc(t, tc.b)
			if got := CompareDocuments(a, b); got != tc.want {
				t.Errorf("CompareDocuments(%v, %v) = %d, want %d", a, b, got, tc.want)
			}
			if got := CompareDocuments(b, a); got != -tc.want {
				t.Errorf("CompareDocuments(%v, %v) = %d, want %d", b, a, got, -tc.want)
			}
			// The same documents as values compare the same way.
			if got := Compare(val(t, tc.a), val(t, tc.b)); got != tc.want {
				t.Errorf("Compare as values = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCompareArrays(t *testing.T) {
	checkPairs(t, []pairCase{
		{"element wise", bson.A{1, 2}, bson.A{1, 3}, -1},
		{"prefix first", bson.A{1}, bson.A{1, 0}, -1},
		{"empty first", bson.A{}, bson.A{primitive.MinKey{}}, -1},
		{"first element decides", bson.A{2}, bson.A{1, 5}, 1},
		{"numbers across types", bson.A{int64(1), "x"}, bson.A{1.0, "x"}, 0},
		{"element type rank", bson.A{"a"}, bson.A{bson.D{}}, -1},
		{"nested", bson.A{bson.A{1, 2}}, bson.A{bson.A{1, 3}}, -1},
		{"any object below any array", bson.D{{Key: "z", Value: primitive.MaxKey{}}}, bson.A{}, -1},
		{"many elements", bson.A{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, bson.A{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11}, -1},
	})
}

// TestServerObservedOrder checks the order a real MongoDB wire-protocol server returned for these
// _ids sorted ascending.
func TestServerObservedOrder(t *testing.T) {
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67}
	objectID, err := primitive.ObjectIDFromHex("65a1b2c3d4e5f60718293a4b")
	if err != nil {
		t.Fatal(err)
	}
	observed := []any{
		primitive.MinKey{},
		primitive.Null{},
		primitive.NewDecimal128(0, 7), // 7E-6176
		int64(3),
		4.5,
		int32(5),
		"Str",
		"str",
		bson.D{{Key: "x", Value: 1}},
		primitive.Binary{Subtype: 0, Data: []byte("z")},
		primitive.Binary{Subtype: 4, Data: uuid},
		objectID,
		true,
		primitive.DateTime(1700000000000),
		primitive.Timestamp{T: 1, I: 1},
		primitive.MaxKey{},
	}
	want := make([]bson.RawValue, len(observed))
	for i, x := range observed {
		want[i] = val(t, x)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		got := slices.Clone(want)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, Compare)
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Fatalf("round %d: position %d is %v, want %v", round, i, got[i], want[i])
			}
		}
	}
}

// TestMalformedStaysTotal feeds truncated values: no panic, and the order is still consistent.
func TestMalformedStaysTotal(t *testing.T) {
	good := []bson.RawValue{
		val(t, "abc"), val(t, int32(1)), val(t, 2.5), val(t, bson.D{{Key: "a", Value: 1}}),
		val(t, primitive.Binary{Data: []byte("x")}), val(t, oid(3)), val(t, primitive.Regex{Pattern: "a"}),
		val(t, primitive.DBPointer{DB: "a", Pointer: oid(1)}), val(t, primitive.CodeWithScope{Code: "c", Scope: bson.D{}}),
		val(t, primitive.Timestamp{T: 1}), val(t, primitive.DateTime(1)), val(t, true), val(t, dec(t, "1")),
		val(t, bson.A{1, "x"}),
	}
	var all []bson.RawValue
	for _, v := range good {
		all = append(all, v)
		for n := range len(v.Value) {
			all = append(all, bson.RawValue{Type: v.Type, Value: v.Value[:n]})
		}
	}
	all = append(all, bson.RawValue{Type: 0x42, Value: []byte{1}}, bson.RawValue{Type: 0x42})
	checkTotalOrder(t, all)
	for _, v := range good {
		for n := range len(v.Value) {
			bad := bson.RawValue{Type: v.Type, Value: v.Value[:n]}
			if Compare(v, bad) != -1 {
				t.Errorf("%v truncated to %d bytes does not sort after the whole value", v.Type, n)
			}
		}
	}
}

// TestCompareNoAllocs holds the hot-path promise: the common _id types never allocate.
func TestCompareNoAllocs(t *testing.T) {
	pairs := [][2]any{
		{oid(1), oid(2)},
		{int32(1), int32(2)},
		{int64(1), int64(2)},
		{int64(1 << 60), 1.5e18},
		{1.5, int32(2)},
		{"abc", "abd"},
		{primitive.Binary{Subtype: 4, Data: make([]byte, 16)}, primitive.Binary{Subtype: 4, Data: make([]byte, 16)}},
		{bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}, bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "y"}}},
		{dec(t, "1.5"), int64(2)},
		{"abc", 7},
	}
	for _, p := range pairs {
		a, b := val(t, p[0]), val(t, p[1])
		if allocs := testing.AllocsPerRun(100, func() { Compare(a, b) }); allocs != 0 {
			t.Errorf("Compare(%v, %v) allocates %.1f times", a.Type, b.Type, allocs)
		}
	}
}
