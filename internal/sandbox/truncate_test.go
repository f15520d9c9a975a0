package sandbox_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

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

// After a truncation, the oplog's natural order is still its ts order, as a capped collection's is:
// readers take the newest entry from {$natural: -1} (clusterclock.Now, the oplog window) and tail in
// natural order.
func TestTruncatedOplogKeepsNaturalOrder(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	coll := client.Database("d").Collection("c")
	for i := range 20 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	all := entriesAfter(t, client, primitive.Timestamp{})
	tt, ti := all[10].Lookup("ts").Timestamp()
	sandboxtest.TruncateOplog(t, client, primitive.Timestamp{T: tt, I: ti})
	for i := 20; i < 25; i++ {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	newest, err := clusterclock.Now(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	var prev primitive.Timestamp
	for _, e := range naturalOrder(t, client) {
		et, ei := e.Lookup("ts").Timestamp()
		ts := primitive.Timestamp{T: et, I: ei}
		if !prev.Before(ts) {
			t.Fatalf("natural order has %v after %v", ts, prev)
		}
		prev = ts
	}
	if newest != prev {
		t.Fatalf("{$natural: -1} gives %v, the newest entry is %v", newest, prev)
	}
}

// naturalOrder is the whole oplog in {$natural: 1} order.
func naturalOrder(t *testing.T, client *mongo.Client) []bson.Raw {
	t.Helper()
	ctx := context.Background()
	cur, err := client.Database("local").Collection("oplog.rs").Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
