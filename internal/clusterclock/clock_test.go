package clusterclock

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// A ping reply of a MongoDB 7.0 replica set member, as mongosh shows it (the server stamps
// operationTime and $clusterTime on every reply).
const replicaSetPingReply = `{"ok": 1, "$clusterTime": {"clusterTime": {"$timestamp": {"t": 1732262400, "i": 7}},
  "signature": {"hash": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "subType": "00"}}, "keyId": 0}},
  "operationTime": {"$timestamp": {"t": 1732262400, "i": 5}}}`

func TestClusterTimeFromAReplicaSetReply(t *testing.T) {
	var reply bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(replicaSetPingReply), false, &reply); err != nil {
		t.Fatal(err)
	}
	if ts, ok := clusterTime(reply); !ok || ts != (primitive.Timestamp{T: 1732262400, I: 5}) {
		t.Fatalf("clusterTime = %v, %v; want operationTime 1732262400:5", ts, ok)
	}
	withoutOpTime, _ := bson.Marshal(bson.D{{Key: "ok", Value: 1}, {Key: "$clusterTime", Value: bson.D{{Key: "clusterTime", Value: primitive.Timestamp{T: 9, I: 1}}}}})
	if ts, ok := clusterTime(withoutOpTime); !ok || ts != (primitive.Timestamp{T: 9, I: 1}) {
		t.Fatalf("clusterTime without operationTime = %v, %v", ts, ok)
	}
	standalone, _ := bson.Marshal(bson.D{{Key: "ok", Value: 1}})
	if _, ok := clusterTime(standalone); ok {
		t.Fatal("a reply without cluster time gave one")
	}
}

// The sandbox server stamps no cluster time: the clock comes from its oplog, it is taken before a
// write that follows it, and a server without an oplog is refused with the reason.
func TestSourceClockFallsBackToTheOplog(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	empty, err := Now(ctx, src)
	if err != nil || empty != beforeEveryEntry {
		t.Fatalf("empty oplog: %v, %v; want the point before every entry", empty, err)
	}
	if _, err := src.Database("d").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	first, err := Now(ctx, src)
	if err != nil || first.IsZero() {
		t.Fatal(first, err)
	}
	if _, err := src.Database("d").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	second, _ := Now(ctx, src)
	if !first.Before(second) {
		t.Fatalf("clock did not advance past a write: %v then %v", first, second)
	}

	noOplog := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	if _, err := Now(ctx, noOplog); !errors.Is(err, ErrNoClock) {
		t.Fatalf("server without an oplog: %v, want ErrNoClock", err)
	}
}
