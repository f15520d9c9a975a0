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
// Entries from before on stay, and new writes are logged after them as before. A sandbox
// server allows the delete; a real one does not, so this is for sandbox tests only.
func TruncateOplog(t testing.TB, client *mongo.Client, before primitive.Timestamp) int64 {
	t.Helper()
	res, err := client.Database("local").Collection("oplog.rs").DeleteMany(context.Background(),
		bson.D{{Key: "ts", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		t.Fatalf("truncating the oplog before %v: %v", before, err)
	}
	return res.DeletedCount
}
