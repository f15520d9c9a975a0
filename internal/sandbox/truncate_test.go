package sandbox_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/clusterclock"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// sandboxtest.TruncateOplog stands for a capped oplog rolling over (mongoJavaServerOplogNeverTruncated):
// the entries before the given ts are gone, the rest stay in order, and later writes are logged
// after them, with the server's clock going on from where it was.
func TestTruncateOplogDropsTheOldestEntries(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	coll := client.Database("d").Collection("c")
	for i := range 10 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	before := entriesAfter(t, client, primitive.Timestamp{})
	if len(before) != 11 { // the collection's create, then 10 inserts
		t.Fatalf("the oplog holds %d entries, want 11", len(before))
	}
	tt, ti := before[4].Lookup("ts").Timestamp()
	cut := primitive.Timestamp{T: tt, I: ti}
	if n := sandboxtest.TruncateOplog(t, client, cut); n != 4 {
		t.Fatalf("TruncateOplog removed %d entries, want 4", n)
	}
	after := entriesAfter(t, client, primitive.Timestamp{})
	if len(after) != 7 {
		t.Fatalf("the oplog holds %d entries after truncation, want 7", len(after))
	}
	if ot, oi := after[0].Lookup("ts").Timestamp(); (primitive.Timestamp{T: ot, I: oi}) != cut {
		t.Fatalf("the oldest entry left has ts %v, want %v", primitive.Timestamp{T: ot, I: oi}, cut)
	}
	last, err := clusterclock.Now(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 10}}); err != nil {
		t.Fatal(err)
	}
	next := entriesAfter(t, client, last)
	if len(next) != 1 {
		t.Fatalf("%d entries after the truncation's newest, want the one insert", len(next))
	}
	if nt, ni := next[0].Lookup("ts").Timestamp(); !last.Before(primitive.Timestamp{T: nt, I: ni}) {
		t.Fatalf("a write after the truncation has ts %v, not after %v", primitive.Timestamp{T: nt, I: ni}, last)
	}
}
