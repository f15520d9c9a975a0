package sandboxtest

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

// TruncateOplog removes every entry older than before from the local.oplog.rs of the server client
// is connected to, and returns how many it removed. It stands for a capped oplog rolling over: a
// real one drops its oldest entries as new ones arrive (and a small one soon), while the sandbox's
// oplog is never truncated and cannot be capped (docs/test-servers.md, mongoJavaServerOplogNeverTruncated).
// Entries from before on stay, in natural order, and new writes are logged after them as before
// (the launcher's sandboxTruncateOplog command does it under the oplog's lock: a plain delete would
// let new entries take the freed slots, ahead of the kept ones in natural order). Sandbox only.
func TruncateOplog(t testing.TB, client *mongo.Client, before primitive.Timestamp) int64 {
	t.Helper()
	var reply struct {
		Removed int64 `bson:"removed"`
	}
	err := client.Database("admin").RunCommand(context.Background(), bson.D{
		{Key: "sandboxTruncateOplog", Value: 1}, {Key: "before", Value: before},
	}).Decode(&reply)
	if err != nil {
		t.Fatalf("truncating the oplog before %v: %v", before, err)
	}
	return reply.Removed
}
