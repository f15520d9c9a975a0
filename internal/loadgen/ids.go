package loadgen

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// idKind is a BSON type the generator can mint new _ids of. A collection gets new _ids of the kinds its
// existing _ids have, so an int64-keyed collection stays int64-keyed.
type idKind uint8

const (
	idObjectID idKind = iota
	idInt32
	idInt64
	idString
	idUUID
	numIDKinds
)

var idKindNames = [numIDKinds]string{"objectId", "int32", "int64", "string", "uuid"}

func (k idKind) String() string { return idKindNames[k] }

// Every _id the generator mints encodes a per-collection sequence number n in a range of values reserved
// for it, one range per kind. Existing data does not use these ranges (see internal/seed: its numeric ids
// stay far below them, its strings have other prefixes, its UUIDs are random), and the largest n already
// in a collection is found with one range query on the _id index, so a second run, with the same seed or
// not, continues the sequence instead of colliding with the first run's documents.
const (
	// int32 ids: int32Base + n, up to MaxInt32 (about 647 million inserts per collection).
	int32Base = 1_500_000_000
	int32Max  = 1<<31 - 1
	// int64 ids: int64Base + n, below 2^53 so that a double can hold them too. The seed's int64 ids
	// are below 2^41; numeric ids of different types compare equal by value, and these ranges keep new
	// int32 and int64 ids apart from each other and from existing ones.
	int64Base = 1 << 52
	int64Max  = 1<<53 - 1
	// string ids: stringPrefix and n as stringDigits zero-padded digits, so that string order is n order.
	stringPrefix = "load-"
	stringDigits = 12
	// uuidPrefix marks minted UUIDs in their first six bytes; bytes 6 and 8 carry the version-4 and
	// RFC 4122 variant bits, and n fills the low 62 bits of bytes 8..15.
	uuidVersion = 0x40
	uuidVariant = 0x80
	uuidNMask   = 1<<62 - 1
)

var (
	uuidPrefix = [6]byte{0x10, 0xad, 0x6e, 0x40, 0x00, 0x00}
	// objectIDTime is the timestamp of every minted ObjectId; n fills the remaining eight bytes (where a
	// driver puts its random process bytes and counter), so ObjectIds of one second order by n.
	objectIDTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
)

// kindOf says which kind an existing _id is, if it is one the generator can mint.
func kindOf(id bson.RawValue) (idKind, bool) {
	switch id.Type {
	case bsontype.ObjectID:
		return idObjectID, true
	case bsontype.Int32:
		return idInt32, true
	case bsontype.Int64:
		return idInt64, true
	case bsontype.String:
		return idString, true
	case bsontype.Binary:
		if sub, data, ok := id.BinaryOK(); ok && sub == bsontype.BinaryUUID && len(data) == 16 {
			return idUUID, true
		}
	}
	return 0, false
}

// mintID returns the _id of kind k with sequence number n.
func mintID(k idKind, n int64) bson.RawValue {
	switch k {
	case idInt32:
		return rawValue(int32(int32Base + n))
	case idInt64:
		return rawValue(int64(int64Base + n))
	case idString:
		return rawValue(fmt.Sprintf("%s%0*d", stringPrefix, stringDigits, n))
	case idUUID:
		return rawValue(mintUUID(uint64(n)))
	default:
		var id primitive.ObjectID
		binary.BigEndian.PutUint32(id[0:4], uint32(objectIDTime.Unix()))
		binary.BigEndian.PutUint64(id[4:12], uint64(n))
		return rawValue(id)
	}
}

func mintUUID(n uint64) primitive.Binary {
	b := make([]byte, 16)
	copy(b, uuidPrefix[:])
	b[6] = uuidVersion
	binary.BigEndian.PutUint64(b[8:16], n&uuidNMask|uuidVariant<<56)
	return primitive.Binary{Subtype: bsontype.BinaryUUID, Data: b}
}

// maxSeq is the largest sequence number n a kind can encode.
func maxSeq(k idKind) int64 {
	switch k {
	case idInt32:
		return int32Max - int32Base
	case idInt64:
		return int64Max - int64Base
	case idString:
		return 999_999_999_999 // stringDigits nines
	case idUUID:
		return uuidNMask
	default:
		return 1<<63 - 1
	}
}

// mintedRange is a filter on _id matching exactly the values mintID can produce for kind k.
func mintedRange(k idKind) bson.D {
	lo, hi := mintID(k, 0), mintID(k, maxSeq(k))
	f := bson.D{{Key: "$gte", Value: lo}, {Key: "$lte", Value: hi}}
	// Numbers compare by value across types: $type keeps an int64 that happens to fall in the int32
	// range (or the reverse) from being read as one of ours.
	switch k {
	case idInt32:
		f = append(f, bson.E{Key: "$type", Value: "int"})
	case idInt64:
		f = append(f, bson.E{Key: "$type", Value: "long"})
	}
	return f
}

// seqOf decodes the sequence number of a minted _id of kind k; ok is false for any other value.
func seqOf(k idKind, id bson.RawValue) (int64, bool) {
	switch k {
	case idInt32:
		v, ok := id.Int32OK()
		return int64(v) - int32Base, ok && v >= int32Base
	case idInt64:
		v, ok := id.Int64OK()
		return v - int64Base, ok && v >= int64Base && v <= int64Max
	case idString:
		s, ok := id.StringValueOK()
		if !ok || !strings.HasPrefix(s, stringPrefix) || len(s) != len(stringPrefix)+stringDigits {
			return 0, false
		}
		n, err := strconv.ParseInt(s[len(stringPrefix):], 10, 64)
		return n, err == nil
	case idUUID:
		sub, b, ok := id.BinaryOK()
		if !ok || sub != bsontype.BinaryUUID || len(b) != 16 || [6]byte(b[:6]) != uuidPrefix {
			return 0, false
		}
		return int64(binary.BigEndian.Uint64(b[8:16]) & uuidNMask), true
	default:
		oid, ok := id.ObjectIDOK()
		if !ok || binary.BigEndian.Uint32(oid[0:4]) != uint32(objectIDTime.Unix()) {
			return 0, false
		}
		n := binary.BigEndian.Uint64(oid[4:12])
		return int64(n), n < 1<<63
	}
}

// idText renders an _id for use inside a string, injectively among the _ids one collection can hold
// at once (int32 5 and int64 5 both render as "n5", but they are the same _id to the server).
func idText(id bson.RawValue) string {
	switch id.Type {
	case bsontype.ObjectID:
		return id.ObjectID().Hex()
	case bsontype.String:
		return "s" + id.StringValue()
	case bsontype.Int32:
		return "n" + strconv.FormatInt(int64(id.Int32()), 10)
	case bsontype.Int64:
		return "n" + strconv.FormatInt(id.Int64(), 10)
	default:
		return "x" + hex.EncodeToString(append([]byte{byte(id.Type)}, id.Value...))
	}
}

// rawValue encodes a Go value the driver knows as a BSON value; the planner keeps _ids in this form so
// that an _id read from the server and one minted here are handled alike.
func rawValue(v any) bson.RawValue {
	t, data, err := bson.MarshalValue(v)
	if err != nil {
		panic(fmt.Sprintf("loadgen: cannot encode %T: %v", v, err)) // only called with the types above
	}
	return bson.RawValue{Type: t, Value: data}
}
