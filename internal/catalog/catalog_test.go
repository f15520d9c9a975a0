package catalog_test

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

func TestListCollectionsReturnsOnlyUserNamespacesInOrder(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	for _, ns := range []string{"zoo.b", "app.orders", "app.empty", namespace.DefaultMetadataDB + ".leases", "config.x", "custom_meta.state"} {
		n, _ := namespace.Parse(ns)
		if err := client.Database(n.DB).CreateCollection(ctx, n.Coll); err != nil {
			t.Fatal(err)
		}
	}
	got := names(t, client, namespace.Filter{})
	if want := []string{"app.empty", "app.orders", "custom_meta.state", "zoo.b"}; !slices.Equal(got, want) {
		t.Fatalf("user namespaces %v, want %v", got, want)
	}
	// With another metadata database, the default name is user data and the custom one is not.
	got = names(t, client, namespace.Filter{MetadataDB: "custom_meta"})
	if want := []string{"app.empty", "app.orders", namespace.DefaultMetadataDB + ".leases", "zoo.b"}; !slices.Equal(got, want) {
		t.Fatalf("with a custom metadata database: %v, want %v", got, want)
	}
}

func TestListIndexesSortedByName(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	coll := client.Database("app").Collection("c")
	_, err := coll.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "z", Value: 1}}},
		{Keys: bson.D{{Key: "a", Value: 1}}, Options: options.Index().SetUnique(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := catalog.ListIndexes(ctx, client, namespace.Namespace{DB: "app", Coll: "c"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range specs {
		got = append(got, s.Lookup("name").StringValue())
	}
	if want := []string{"_id_", "a_1", "z_1"}; !slices.Equal(got, want) {
		t.Fatalf("indexes %v, want %v", got, want)
	}
	if !specs[1].Lookup("unique").Boolean() {
		t.Fatal("the unique option was not returned")
	}
}

func names(t *testing.T, client *mongo.Client, f namespace.Filter) []string {
	t.Helper()
	colls, err := catalog.ListCollections(context.Background(), client, f)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range colls {
		if c.Type != catalog.TypeCollection || c.Options == nil {
			t.Fatalf("%s: type %q, options %v", c.NS, c.Type, c.Options)
		}
		out = append(out, c.NS.String())
	}
	return out
}
