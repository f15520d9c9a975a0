package changeevent

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

func TestTokenTime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token bson.Raw
		want  primitive.Timestamp
		ok    bool
	}{
		{
			// change-events/update, "Array Updates": clusterTime Timestamp({t: 1680529003, i: 1}).
			"a token from the update page",
			ejson(`{"_data": "82642AD66B000000012B022C0100296E5A10045DC4B11BEA5F4319A8E7CAF46816ED71461E5F6964002B060004"}`),
			ts(1680529003, 1), true,
		},
		{"lower-case hex", ejson(`{"_data": "82642ad66b00000007"}`), ts(1680529003, 7), true},
		{"the largest time", ejson(`{"_data": "82FFFFFFFFFFFFFFFF"}`), ts(0xFFFFFFFF, 0xFFFFFFFF), true},
		{
			// 3.6 wrote BinData tokens (and 4.0 did at feature compatibility 3.6).
			"a BinData token",
			ejson(`{"_data": {"$binary": {"base64": "gmQq1msAAAAB", "subType": "00"}}}`),
			primitive.Timestamp{}, false,
		},
		{"another KeyString type first", ejson(`{"_data": "3C642AD66B00000001"}`), primitive.Timestamp{}, false},
		{"too short", ejson(`{"_data": "82642AD66B000000"}`), primitive.Timestamp{}, false},
		{"not hex", ejson(`{"_data": "82642AD66B0000000Z"}`), primitive.Timestamp{}, false},
		{"no _data", ejson(`{"data": "82642AD66B00000001"}`), primitive.Timestamp{}, false},
		{"empty document", ejson(`{}`), primitive.Timestamp{}, false},
		{"nil", nil, primitive.Timestamp{}, false},
		{"garbage", bson.Raw{0xff, 0xff}, primitive.Timestamp{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := TokenTime(tc.token)
			if got != tc.want || ok != tc.ok {
				t.Errorf("TokenTime = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// Tokens compare by time once read: the property an applier relies on to order them.
func TestTokenTimesOrderLikeClusterTimes(t *testing.T) {
	earlier, _ := TokenTime(ejson(`{"_data": "82642AD66B000000022B022C0100296E5A1004"}`))
	later, _ := TokenTime(ejson(`{"_data": "82642AD66C000000012B022C0100296E5A1004"}`))
	if !earlier.Before(later) {
		t.Fatalf("%v is not before %v", earlier, later)
	}
}
