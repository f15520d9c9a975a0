package seed_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// Seeding goes over the wire to a real server; the verifier then proves that the same seed gives the
// same clusters, document for document and index for index, and that another seed does not.
func TestSameSeedGivesEqualClustersAndAnotherSeedDoesNot(t *testing.T) {
	ctx := context.Background()
	opts := seed.Options{Docs: 900, Collections: 7, Seed: 11}
	seeded := func(o seed.Options) *mongo.Client {
		c := sandboxtest.Connect(t, sandboxtest.Server(t, false))
		stats, err := seed.Seed(ctx, c, o)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Docs != o.Docs || stats.Collections != o.Collections || stats.Bytes <= 0 {
			t.Fatalf("stats %+v for %+v", stats, o)
		}
		return c
	}
	a, b := seeded(opts), seeded(opts)
	other := opts
	other.Seed = 12
	c := seeded(other)

	same, err := verify.Run(ctx, a, b, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !same.Equal() || len(same.Namespaces) != 7 || same.DocumentsCompared() != 1800 {
		t.Fatalf("same seed: equal=%v, %d namespaces, %d documents", same.Equal(), len(same.Namespaces), same.DocumentsCompared())
	}
	diff, err := verify.Run(ctx, a, c, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff.Equal() {
		t.Fatal("different seeds gave equal clusters")
	}

	// The indexes the generator promises are on the server: unique, compound, sparse, TTL.
	want := map[string]bool{"unique": false, "compound": false, "sparse": false, "ttl": false}
	for _, coll := range seed.Plan(opts) {
		specs, err := a.Database(coll.DB).Collection(coll.Name).Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range specs {
			var keys bson.D
			_ = bson.Unmarshal(s.KeysDocument, &keys)
			want["unique"] = want["unique"] || (s.Unique != nil && *s.Unique)
			want["compound"] = want["compound"] || len(keys) > 1
			want["sparse"] = want["sparse"] || (s.Sparse != nil && *s.Sparse)
			want["ttl"] = want["ttl"] || s.ExpireAfterSeconds != nil
		}
	}
	for kind, found := range want {
		if !found {
			t.Errorf("no %s index among the seeded collections", kind)
		}
	}
}
