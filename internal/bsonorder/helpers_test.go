package bsonorder

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// val encodes x with the driver, exactly as it would arrive from a server, and returns the value.
func val(tb testing.TB, x any) bson.RawValue {
	tb.Helper()
	raw, err := bson.Marshal(bson.D{{Key: "v", Value: x}})
	if err != nil {
		tb.Fatalf("marshal %#v: %v", x, err)
	}
	return bson.Raw(raw).Lookup("v")
}

// doc encodes d as a document.
func doc(tb testing.TB, d bson.D) bson.Raw {
	tb.Helper()
	raw, err := bson.Marshal(d)
	if err != nil {
		tb.Fatalf("marshal %v: %v", d, err)
	}
	return raw
}

func dec(tb testing.TB, s string) primitive.Decimal128 {
	tb.Helper()
	d, err := primitive.ParseDecimal128(s)
	if err != nil {
		tb.Fatalf("decimal %q: %v", s, err)
	}
	return d
}

func oid(b byte) primitive.ObjectID {
	var id primitive.ObjectID
	for i := range id {
		id[i] = b
	}
	return id
}

// pairCase is one ordered pair; every case is also checked reversed.
type pairCase struct {
	name string
	a, b any
	want int
}

func checkPairs(t *testing.T, cases []pairCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := val(t, tc.a), val(t, tc.b)
			if got := Compare(a, b); got != tc.want {
				t.Errorf("Compare(%v, %v) = %d, want %d", a, b, got, tc.want)
			}
			if got := Compare(b, a); got != -tc.want {
				t.Errorf("Compare(%v, %v) = %d, want %d", b, a, got, -tc.want)
			}
		})
	}
}
