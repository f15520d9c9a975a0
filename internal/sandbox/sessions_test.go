package sandbox_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/concern"
	"github.com/fleetsync/fleetsync/internal/mongoconn"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// The sandbox says it has sessions, as every MongoDB fleetsync syncs does (workaround
// mongoJavaServerHasNoSessions), so the driver gives fleetsync's causally consistent source reads
// their afterClusterTime, and the server answers them and the lsid every command then carries.
func TestSandboxHasSessionsSoReadsCarryAfterClusterTime(t *testing.T) {
	ctx := context.Background()
	sent := sandboxtest.NewCommands()
	client := sandboxtest.ConnectWith(t, sandboxtest.Server(t, true), mongoconn.Options{Monitor: sent.Monitor()})
	var hello struct {
		Minutes int32 `bson:"logicalSessionTimeoutMinutes"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&hello); err != nil || hello.Minutes <= 0 {
		t.Fatalf("isMaster: logicalSessionTimeoutMinutes %d, %v; want a session timeout", hello.Minutes, err)
	}
	coll := client.Database("shop").Collection("items")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	at := primitive.Timestamp{T: 1700000000, I: 3}
	rctx, end, err := concern.ReadAfter(ctx, client, at)
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	n, err := concern.SourceCollection(client, "shop", "items").CountDocuments(rctx, bson.D{})
	if err != nil || n != 1 {
		t.Fatalf("a causally consistent majority read: %d documents, %v", n, err)
	}
	reads := sent.Sent("aggregate", "shop", "items")
	if len(reads) != 1 {
		t.Fatalf("%d aggregates sent, want 1", len(reads))
	}
	rc := reads[0].Body.Lookup("readConcern")
	if ts, i, ok := rc.Document().Lookup("afterClusterTime").TimestampOK(); !ok || ts != at.T || i != at.I {
		t.Fatalf("the read sent readConcern %s; want afterClusterTime %v", rc, at)
	}
	if _, ok := reads[0].Body.Lookup("lsid").DocumentOK(); !ok {
		t.Fatalf("the read sent no lsid: %s", reads[0].Body)
	}
}
