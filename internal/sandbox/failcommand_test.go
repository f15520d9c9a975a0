package sandbox_test

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// The sandbox's failCommand fail point (fault injection sandboxFailCommand) fails exactly the
// chosen commands on the chosen namespace, the chosen number of times, with the code and labels
// given, as MongoDB's does; or drops the connection, which the driver reports as a network error.
func TestSandboxFailCommand(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	orders := client.Database("shop").Collection("orders")
	other := client.Database("shop").Collection("items")

	sandboxtest.FailCommand(t, client, sandboxtest.FailPoint{
		Commands: []string{"insert"}, Namespace: "shop.orders", Code: 189, Labels: []string{"RetryableWriteError"}, Times: 2,
	})
	if _, err := other.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatalf("an insert into another namespace failed: %v", err)
	}
	if err := orders.FindOne(ctx, bson.D{}).Err(); !errors.Is(err, mongo.ErrNoDocuments) {
		t.Fatalf("a find on the namespace: %v, want no documents", err)
	}
	for i := range 2 {
		_, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 189 || !ce.HasErrorLabel("RetryableWriteError") {
			t.Fatalf("insert %d: %v (%T), want a command error with code 189 and the RetryableWriteError label", i, err, err)
		}
	}
	if _, err := orders.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatalf("the third insert, after the fail point's 2 times: %v", err)
	}
	if n := sandboxtest.FailPointCount(t, client); n != 2 {
		t.Fatalf("the fail point fired %d times, want 2", n)
	}

	// Twice: the driver retries a read once after a network error.
	sandboxtest.FailCommand(t, client, sandboxtest.FailPoint{Commands: []string{"find"}, CloseConnection: true, Times: 2})
	if err := orders.FindOne(ctx, bson.D{}).Err(); !mongo.IsNetworkError(err) {
		t.Fatalf("a find whose connection was closed: %v, want a network error", err)
	}
}
