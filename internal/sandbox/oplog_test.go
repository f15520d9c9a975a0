package sandbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// The sandbox's oplog behaves like a real one where fleetsync's oplog reader depends on it: entries
// appear in ts order even under concurrent writers (workaround mongoJavaServerOplogHoles), and an
// insert the server rejected is not logged (workaround mongoJavaServerLogsFailedInserts).
func TestSandboxOplogIsOrderedAndLogsOnlyWhatHappened(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	oplog := client.Database("local").Collection("oplog.rs")

	// Rejected inserts: a duplicate _id and, unordered in a batch, one duplicate among new ones.
	coll := client.Database("d").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "first"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "rejected"}}); err == nil {
		t.Fatal("a duplicate _id was accepted")
	}
	n, err := oplog.CountDocuments(ctx, bson.D{{Key: "o.v", Value: "rejected"}})
	if err != nil || n != 0 {
		t.Fatalf("the rejected insert is in the oplog %d time(s) (%v)", n, err)
	}

	// Concurrent writers on several collections: natural order must be ts order, with no entry
	// missing.
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.Database("d").Collection(fmt.Sprintf("w%d", w%4))
			for i := range each {
				id := w*each + i
				if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
					t.Error(err)
					return
				}
				if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: i}}}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	cur, err := oplog.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var last primitive.Timestamp
	count := 0
	for cur.Next(ctx) {
		t1, i1 := cur.Current.Lookup("ts").Timestamp()
		ts := primitive.Timestamp{T: t1, I: i1}
		if !last.Before(ts) {
			t.Fatalf("oplog entry %d has ts %v after %v: not in ts order", count, ts, last)
		}
		last = ts
		count++
	}
	// Each collection's implicit create is logged too (mongoJavaServerLogsNoDDL): d.c and w0..w3.
	if want := 5 + 1 + 2*writers*each; count != want {
		t.Fatalf("the oplog holds %d entries, want %d", count, want)
	}
}
