package coordinator_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// Commit puts back the unique and TTL settings the sync left out. The sandbox has no collMod, so this
// is the rebuild path (the collMod path runs in e2e/lifecycle_test.go); a second run finds everything
// restored and changes nothing; and a uniqueness the documents violate fails with the index rebuilt
// as it was.
func TestRestoreDeferredRebuildsIndexesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dst := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	meta := metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	people := dst.Database("crm").Collection("people")
	dupes := dst.Database("crm").Collection("dupes")
	for _, c := range []*mongo.Collection{people, dupes} {
		if _, err := c.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}}, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "b"}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dupes.InsertOne(ctx, bson.D{{Key: "_id", Value: 3}, {Key: "email", Value: "a"}}); err != nil {
		t.Fatal(err)
	}
	// The destination as the sync built it: unique left out, TTL at the maximum.
	ttl := int64(3600)
	for _, c := range []*mongo.Collection{people, dupes} {
		if _, err := c.Indexes().CreateMany(ctx, []mongo.IndexModel{
			{Keys: bson.D{{Key: "email", Value: 1}}},
			{Keys: bson.D{{Key: "seen", Value: 1}}, Options: options.Index().SetExpireAfterSeconds(2147483647)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, coll := range []string{"people", "dupes"} {
		e := metadata.CatalogEntry{ID: metadata.CatalogID("default", "crm."+coll), Sync: "default", DB: "crm", Coll: coll,
			Deferred: []metadata.DeferredIndexChange{{Index: "email_1", Unique: true}, {Index: "seen_1", ExpireAfterSeconds: &ttl}, {Index: "gone_1", Unique: true}}}
		if coll == "dupes" {
			e.Deferred = e.Deferred[:1]
		}
		if err := meta.PutCatalogEntry(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	first, err := coordinator.RestoreDeferred(ctx, meta, dst, dst, zap.NewNop())
	// Entries go in namespace order: crm.dupes fails before crm.people is touched.
	if err == nil || !strings.Contains(err.Error(), "restoring unique on index email_1 of crm.dupes") || len(first) != 0 {
		t.Fatalf("a uniqueness the documents violate: %v (restored %v)", err, first)
	}
	if spec := indexSpec(t, dst, "crm.dupes", "email_1"); spec == nil || spec.Lookup("unique").Type != 0 {
		t.Fatalf("after the failed rebuild, crm.dupes email_1 is %v; want it back, not unique", spec)
	}
	// The user fixes the data; commit again.
	if _, err := dupes.DeleteOne(ctx, bson.D{{Key: "_id", Value: 3}}); err != nil {
		t.Fatal(err)
	}
	restored, err := coordinator.RestoreDeferred(ctx, meta, dst, dst, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// gone_1 no longer exists on the destination (dropped on the source meanwhile): skipped.
	want := "crm.dupes email_1: unique (rebuilt); crm.people email_1: unique (rebuilt); crm.people seen_1: expireAfterSeconds 3600 (rebuilt)"
	if got := strings.Join(restored, "; "); got != want {
		t.Fatalf("second run restored %q", got)
	}
	if spec := indexSpec(t, dst, "crm.people", "email_1"); !spec.Lookup("unique").Boolean() {
		t.Fatalf("crm.people email_1: %v", spec)
	}
	if spec := indexSpec(t, dst, "crm.people", "seen_1"); spec.Lookup("expireAfterSeconds").AsInt64() != ttl {
		t.Fatalf("crm.people seen_1: %v", spec)
	}
	entries, err := meta.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.Deferred) != 0 {
			t.Fatalf("%s still lists deferred settings after the restore: %+v", e.ID, e.Deferred)
		}
	}
	if again, err := coordinator.RestoreDeferred(ctx, meta, dst, dst, zap.NewNop()); err != nil || len(again) != 0 {
		t.Fatalf("a third run: %v, %v; want nothing to do", again, err)
	}
}

func indexSpec(t *testing.T, client *mongo.Client, ns, name string) bson.Raw {
	t.Helper()
	n, _ := namespace.Parse(ns)
	specs, err := catalog.ListIndexes(context.Background(), client, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Lookup("name").StringValue() == name {
			return s
		}
	}
	return nil
}
