package bsonorder

import "go.mongodb.org/mongo-driver/bson"

// Key is a map key for a value as it was encoded: its type and bytes. Values that Compare finds
// equal across types (int32 5 and int64 5) get different keys, which is what code needs that
// matches a value the server returned to the one it was sent (an _id read back by $in, say).
func Key(v bson.RawValue) string {
	return string(append([]byte{byte(v.Type)}, v.Value...))
}
