// Package bsonorder orders BSON values exactly as a MongoDB server does with no collation.
//
// The verifier merge-joins two _id-sorted cursors and the partitioner cuts _id ranges that never
// span BSON types; both are only correct if this order is the server's, so the rules here follow
// the server source (bsontypes.h canonicalizeBSONType, bsonelement.cpp BSONElement::woCompare and
// compareElements, bsonobj.cpp BSONObj::woCompare, compare_numbers.h) rather than the prose
// docs. Compare runs once per document, so the common types are compared straight from the raw
// bytes without allocating.
package bsonorder

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.mongodb.org/mongo-driver/x/bsonx/bsoncore"
)

// The server's canonical type ranks (canonicalizeBSONType). The numbers themselves are kept, not
// just their order, so that they can be logged and compared with server output.
const (
	// rankInvalid is what the server's lookup returns for a type byte it does not know (it then
	// asserts). Such values never come from a server; ranking them first keeps Compare total.
	rankInvalid       = math.MinInt8
	rankMinKey        = -1 // MinKey's own enum value.
	rankUndefined     = 0  // Undefined (and EOO); the server ranks it below null, not with it.
	rankNull          = 5
	rankNumber        = 10 // int32, int64, double and decimal128 compare by value.
	rankString        = 15 // string and symbol compare by value.
	rankObject        = 20
	rankArray         = 25
	rankBinary        = 30
	rankObjectID      = 35
	rankBoolean       = 40
	rankDateTime      = 45
	rankTimestamp     = 47
	rankRegex         = 50
	rankDBPointer     = 55
	rankJavaScript    = 60
	rankCodeWithScope = 65
	rankMaxKey        = 127 // MaxKey's own enum value.
)

// Fixed value sizes, in bytes, of the types read directly here.
const (
	objectIDSize = 12
	int32Size    = 4
	int64Size    = 8
	lengthSize   = 4 // int32 length prefix of strings, documents, binary, code with scope.
)

// TypeRank returns MongoDB's canonical sort rank of a BSON type. Types with the same rank compare
// by value (all numeric types share one rank; string and symbol share one). Values of different
// ranks never compare equal, which is what lets the partitioner keep each range inside one rank.
// Note that, as in the server, Undefined ranks below Null rather than with it.
func TypeRank(t bsontype.Type) int {
	switch t {
	case bsontype.MinKey:
		return rankMinKey
	case 0x00, bsontype.Undefined: // 0x00 is EOO, the type of an absent value.
		return rankUndefined
	case bsontype.Null:
		return rankNull
	case bsontype.Int32, bsontype.Int64, bsontype.Double, bsontype.Decimal128:
		return rankNumber
	case bsontype.String, bsontype.Symbol:
		return rankString
	case bsontype.EmbeddedDocument:
		return rankObject
	case bsontype.Array:
		return rankArray
	case bsontype.Binary:
		return rankBinary
	case bsontype.ObjectID:
		return rankObjectID
	case bsontype.Boolean:
		return rankBoolean
	case bsontype.DateTime:
		return rankDateTime
	case bsontype.Timestamp:
		return rankTimestamp
	case bsontype.Regex:
		return rankRegex
	case bsontype.DBPointer:
		return rankDBPointer
	case bsontype.JavaScript:
		return rankJavaScript
	case bsontype.CodeWithScope:
		return rankCodeWithScope
	case bsontype.MaxKey:
		return rankMaxKey
	}
	return rankInvalid
}

// Compare orders two BSON values as MongoDB does: by TypeRank first, then by value. Returns -1, 0,
// +1.
//
// Compare never panics. Malformed bytes (which a server never sends) sort after every well-formed
// value of the same rank and among themselves by type byte then raw bytes, so Compare remains a
// total order that a merge-join can rely on.
func Compare(a, b bson.RawValue) int {
	ra, rb := TypeRank(a.Type), TypeRank(b.Type)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	return compareSameRank(ra, a, b)
}

// CompareDocuments orders two documents as MongoDB compares embedded documents: element by
// element, each by type rank, then field name, then value; a prefix sorts first.
func CompareDocuments(a, b bson.Raw) int {
	return compareDocuments(a, b)
}

// compareSameRank compares two values already known to share a rank (compareElements).
func compareSameRank(rank int, a, b bson.RawValue) int {
	switch rank {
	case rankMinKey, rankUndefined, rankNull, rankMaxKey:
		return 0 // These types have no value: every MinKey equals every MinKey.
	case rankNumber:
		return compareNumbers(a, b)
	case rankString, rankJavaScript:
		sa, okA := readString(a.Value)
		sb, okB := readString(b.Value)
		if c, bad := malformed(a, okA, b, okB); bad {
			return c
		}
		return bytes.Compare(sa, sb)
	case rankObject, rankArray:
		return compareDocuments(a.Value, b.Value)
	case rankBinary:
		return compareBinary(a, b)
	case rankObjectID:
		okA, okB := len(a.Value) >= objectIDSize, len(b.Value) >= objectIDSize
		if c, bad := malformed(a, okA, b, okB); bad {
			return c
		}
		return bytes.Compare(a.Value[:objectIDSize], b.Value[:objectIDSize])
	case rankBoolean:
		// The server subtracts the raw bytes, so false (0) < true (1).
		okA, okB := len(a.Value) >= 1, len(b.Value) >= 1
		if c, bad := malformed(a, okA, b, okB); bad {
			return c
		}
		return cmp.Compare(a.Value[0], b.Value[0])
	case rankDateTime:
		// Milliseconds since the epoch, signed: dates before 1970 sort first.
		da, okA := readUint64(a.Value)
		db, okB := readUint64(b.Value)
		if c, bad := malformed(a, okA, b, okB); bad {
			return c
		}
		return cmp.Compare(int64(da), int64(db))
	case rankTimestamp:
		// Unsigned; the increment is the low half, so this orders by T then I.
		ta, okA := readUint64(a.Value)
		tb, okB := readUint64(b.Value)
		if c, bad := malformed(a, okA, b, okB); bad {
			return c
		}
		return cmp.Compare(ta, tb)
	case rankRegex:
		return compareRegex(a, b)
	case rankDBPointer:
		return compareDBPointer(a, b)
	case rankCodeWithScope:
		return compareCodeWithScope(a, b)
	}
	// rankInvalid: no meaning to compare, only a stable order.
	return compareRaw(a, b)
}

// malformed orders values when at least one failed to decode (bad is then true): well-formed
// values first, malformed ones by raw bytes.
func malformed(a bson.RawValue, okA bool, b bson.RawValue, okB bool) (c int, bad bool) {
	switch {
	case okA && okB:
		return 0, false
	case okA:
		return -1, true
	case okB:
		return 1, true
	}
	return compareRaw(a, b), true
}

func compareRaw(a, b bson.RawValue) int {
	if c := cmp.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return bytes.Compare(a.Value, b.Value)
}

// compareBinary orders BinData by length, then subtype, then bytes. The length is the outer one,
// so old binary (subtype 2) counts its inner length prefix as data, exactly as the server does; that
// is why this reads the bytes itself instead of using bsoncore.ReadBinary.
func compareBinary(a, b bson.RawValue) int {
	la, okA := readBinaryLength(a.Value)
	lb, okB := readBinaryLength(b.Value)
	if c, bad := malformed(a, okA, b, okB); bad {
		return c
	}
	if la != lb {
		return cmp.Compare(la, lb)
	}
	// Subtype byte followed by the data: one memcmp, as in the server.
	return bytes.Compare(a.Value[lengthSize:lengthSize+1+la], b.Value[lengthSize:lengthSize+1+lb])
}

func readBinaryLength(v []byte) (int, bool) {
	n, ok := readLength(v)
	return n, ok && n >= 0 && len(v) >= lengthSize+1+n
}

// compareRegex orders by pattern, then options, each bytewise (strcmp in the server).
func compareRegex(a, b bson.RawValue) int {
	pa, oa, okA := readRegex(a.Value)
	pb, ob, okB := readRegex(b.Value)
	if c, bad := malformed(a, okA, b, okB); bad {
		return c
	}
	if c := bytes.Compare(pa, pb); c != 0 {
		return c
	}
	return bytes.Compare(oa, ob)
}

func readRegex(v []byte) (pattern, options []byte, ok bool) {
	i := bytes.IndexByte(v, 0)
	if i < 0 {
		return nil, nil, false
	}
	j := bytes.IndexByte(v[i+1:], 0)
	if j < 0 {
		return nil, nil, false
	}
	return v[:i], v[i+1 : i+1+j], true
}

// compareDBPointer follows the server: the value sizes first (so the shorter namespace sorts
// first whatever its bytes), then the namespace bytes, then the ObjectId.
func compareDBPointer(a, b bson.RawValue) int {
	va, okA := readDBPointer(a.Value)
	vb, okB := readDBPointer(b.Value)
	if c, bad := malformed(a, okA, b, okB); bad {
		return c
	}
	if len(va) != len(vb) {
		return cmp.Compare(len(va), len(vb))
	}
	return bytes.Compare(va, vb)
}

// readDBPointer returns the whole value (length, namespace with its NUL, ObjectId).
func readDBPointer(v []byte) ([]byte, bool) {
	n, ok := readLength(v)
	if !ok || n < 1 || len(v) < lengthSize+n+objectIDSize {
		return nil, false
	}
	return v[:lengthSize+n+objectIDSize], true
}

// compareCodeWithScope orders by the code, then by the scope document.
func compareCodeWithScope(a, b bson.RawValue) int {
	ca, sa, okA := readCodeWithScope(a.Value)
	cb, sb, okB := readCodeWithScope(b.Value)
	if c, bad := malformed(a, okA, b, okB); bad {
		return c
	}
	if c := bytes.Compare(ca, cb); c != 0 {
		return c
	}
	return compareDocuments(sa, sb)
}

func readCodeWithScope(v []byte) (code, scope []byte, ok bool) {
	total, ok := readLength(v)
	if !ok || total < 2*lengthSize || total > len(v) {
		return nil, nil, false
	}
	v = v[:total]
	code, ok = readString(v[lengthSize:])
	if !ok {
		return nil, nil, false
	}
	return code, v[2*lengthSize+len(code)+1:], true
}

// compareDocuments is BSONObj::woCompare with field names considered. Iteration stops at the
// first difference, so only the prefix that decides the order needs to be well formed; a
// malformed remainder sorts after any element and, between two of them, by raw bytes.
func compareDocuments(a, b []byte) int {
	ea, okA := documentElements(a)
	eb, okB := documentElements(b)
	switch {
	case !okA && !okB:
		return bytes.Compare(a, b)
	case !okA:
		return 1
	case !okB:
		return -1
	}
	for {
		if len(ea) == 0 || len(eb) == 0 {
			// A document that is a prefix of the other sorts first.
			return cmp.Compare(len(ea), len(eb))
		}
		elemA, restA, okA := bsoncore.ReadElement(ea)
		elemB, restB, okB := bsoncore.ReadElement(eb)
		switch {
		case !okA && !okB:
			return bytes.Compare(ea, eb)
		case !okA:
			return 1
		case !okB:
			return -1
		}
		if c := compareElements(elemA, elemB); c != 0 {
			return c
		}
		ea, eb = restA, restB
	}
}

// compareElements is BSONElement::woCompare: type rank, then field name, then value. Rank before
// name means {b: MinKey} < {a: 1}.
func compareElements(ea, eb bsoncore.Element) int {
	keyA, valA := splitElement(ea)
	keyB, valB := splitElement(eb)
	ra, rb := TypeRank(valA.Type), TypeRank(valB.Type)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	if c := bytes.Compare(keyA, keyB); c != 0 {
		return c
	}
	return compareSameRank(ra, valA, valB)
}

// splitElement takes apart an element that bsoncore.ReadElement has already checked.
func splitElement(e bsoncore.Element) (key []byte, val bson.RawValue) {
	n := bytes.IndexByte(e[1:], 0)
	return e[1 : 1+n], bson.RawValue{Type: bsontype.Type(e[0]), Value: e[2+n:]}
}

// documentElements returns the element bytes between a document's length and its terminator.
func documentElements(doc []byte) ([]byte, bool) {
	n, ok := readLength(doc)
	const minDocSize = lengthSize + 1
	if !ok || n < minDocSize || n > len(doc) || doc[n-1] != 0 {
		return nil, false
	}
	return doc[lengthSize : n-1], true
}

// readString returns a string's bytes without its NUL and without allocating (the bsoncore
// readers return a Go string, which copies). Comparing these with bytes.Compare is the server's
// memcmp over the bytes plus NUL: NUL is the smallest byte, so the two orders agree even for
// strings containing NULs.
func readString(v []byte) ([]byte, bool) {
	n, ok := readLength(v)
	if !ok || n < 1 || len(v) < lengthSize+n {
		return nil, false
	}
	return v[lengthSize : lengthSize+n-1], true
}

func readLength(v []byte) (int, bool) {
	if len(v) < lengthSize {
		return 0, false
	}
	return int(int32(binary.LittleEndian.Uint32(v))), true
}

func readUint64(v []byte) (uint64, bool) {
	if len(v) < int64Size {
		return 0, false
	}
	return binary.LittleEndian.Uint64(v), true
}

// SimpleCollation makes a query compare and sort strings by their bytes, as Compare does. Every
// query whose order or string comparisons must agree with Compare (an _id-ordered scan, an _id
// range, an _id $in) sets it: a collection's default collation (say case-insensitive) would
// otherwise change which strings a range holds and the order a cursor returns them in.
var SimpleCollation = &options.Collation{Locale: "simple"}
