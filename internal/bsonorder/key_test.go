package bsonorder

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

// Key tells values apart by type as well as by bytes: the server's int32 5 and int64 5 are one _id
// to Compare, but a value read back must be matched to the one sent exactly.
func TestKeyIsTypeAndBytes(t *testing.T) {
	raw := func(v any) bson.RawValue {
		typ, data, err := bson.MarshalValue(v)
		if err != nil {
			t.Fatal(err)
		}
		return bson.RawValue{Type: typ, Value: data}
	}
	if Key(raw(int32(5))) == Key(raw(int64(5))) {
		t.Error("int32 5 and int64 5 have the same key")
	}
	if Key(raw("a")) != Key(raw("a")) || Key(raw("a")) == Key(raw("b")) {
		t.Error("keys of strings do not follow their value")
	}
}
