package applier

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// A change stream's position (it has a resume token) may stand inside a transaction whose events
// share one ts and were not all read: the oplog reader that continues from it (a capturer or an
// applier of the other kind before it) starts at that ts, not after it, so that none of them is
// skipped.
func TestOplogAfterAChangeStreamPositionStartsAtItsTime(t *testing.T) {
	ctx := context.Background()
	src := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	for i := range 3 {
		if _, err := src.Database("d").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	var second struct {
		TS primitive.Timestamp `bson:"ts"`
	}
	if err := src.Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{{Key: "op", Value: "i"}, {Key: "o._id", Value: 1}},
		options.FindOne()).Decode(&second); err != nil {
		t.Fatal(err)
	}
	token, _ := bson.Marshal(bson.D{{Key: "_data", Value: "82"}})
	r := newOplogRecords(src, Position{TS: second.TS, Token: token}, false)
	defer r.close(ctx)
	recs, _, err := r.nextRecords(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].pos.TS != second.TS {
		t.Fatalf("read %d records from a change stream position at %v; want 2, the first at that time", len(recs), second.TS)
	}
}
