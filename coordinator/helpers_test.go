package coordinator_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/metadata"
)

// register creates sync "default" in meta, as the first node of a fleet does.
func register(t *testing.T, ctx context.Context, meta *metadata.DB) {
	t.Helper()
	if _, err := meta.Register(ctx, metadata.Identity{Hosts: []string{"s:1"}}, metadata.Identity{Hosts: []string{"d:1"}}); err != nil {
		t.Fatal(err)
	}
}

// setSync sets fields of sync "default", as a coordinator would have left them.
func setSync(t *testing.T, ctx context.Context, meta *metadata.DB, set bson.D) {
	t.Helper()
	if _, err := meta.Syncs().UpdateOne(ctx, bson.D{{Key: "_id", Value: "default"}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		t.Fatal(err)
	}
}
