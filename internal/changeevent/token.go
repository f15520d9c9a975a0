package changeevent

import (
	"encoding/binary"
	"encoding/hex"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// A resume token's _data is the hex of a KeyString (the server's order-preserving key encoding)
// whose first value is the event's cluster time: one type byte, then the timestamp as 8 big-endian
// bytes, seconds before increment. Reading just that prefix orders tokens without the server.
const (
	keyStringTimestamp = 0x82               // the KeyString type byte of a BSON Timestamp
	tokenTimeBytes     = 9                  // that byte, then T and I as 4 big-endian bytes each
	tokenTimeHexLen    = 2 * tokenTimeBytes // the hex digits holding them
)

// TokenTime returns the cluster time a change stream resume token ({_data: "<hex>"}, as servers
// write it since 4.0) encodes. It reports false for anything else, including the BinData tokens of
// 3.6: the caller then cannot order by token and must keep the event's clusterTime.
func TokenTime(token bson.Raw) (primitive.Timestamp, bool) {
	v, err := token.LookupErr("_data")
	if err != nil {
		return primitive.Timestamp{}, false
	}
	s, ok := v.StringValueOK()
	if !ok || len(s) < tokenTimeHexLen {
		return primitive.Timestamp{}, false
	}
	var b [tokenTimeBytes]byte
	if _, err := hex.Decode(b[:], []byte(s[:tokenTimeHexLen])); err != nil || b[0] != keyStringTimestamp {
		return primitive.Timestamp{}, false
	}
	return primitive.Timestamp{
		T: binary.BigEndian.Uint32(b[1:5]),
		I: binary.BigEndian.Uint32(b[5:9]),
	}, true
}
