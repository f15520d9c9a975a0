package sandbox_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// Dropping indexes of one collection touches no other collection of the database, also when both
// have indexes of the same names, as on MongoDB (workaround mongoJavaServerDropsIndexAcrossCollections):
// by name, by key pattern, by a list of names, all of them ("*"), and by dropping the collection.
// The named collection loses exactly what MongoDB drops: never its _id index.
func TestSandboxDropsIndexesOfTheNamedCollectionOnly(t *testing.T) {
	peopleIndexes := []string{"_id_", "city_1", "email_1", "seen_1"}
	cases := []struct {
		name      string
		drop      func(ctx context.Context, dupes *mongo.Collection) error
		dupesKeep []string // nil: the collection is gone
	}{
		{"by name", func(ctx context.Context, dupes *mongo.Collection) error {
			_, err := dupes.Indexes().DropOne(ctx, "email_1")
			return err
		}, []string{"_id_", "seen_1", "zip_1"}},
		{"by key pattern", func(ctx context.Context, dupes *mongo.Collection) error {
			// The v1 driver drops by name only, so the command is sent as written.
			return dupes.Database().RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: dupes.Name()},
				{Key: "index", Value: bson.D{{Key: "email", Value: 1}}}}).Err()
		}, []string{"_id_", "seen_1", "zip_1"}},
		{"by names", func(ctx context.Context, dupes *mongo.Collection) error {
			return dupes.Database().RunCommand(ctx, bson.D{{Key: "dropIndexes", Value: dupes.Name()},
				{Key: "index", Value: bson.A{"email_1", "zip_1"}}}).Err()
		}, []string{"_id_", "seen_1"}},
		{"all", func(ctx context.Context, dupes *mongo.Collection) error {
			_, err := dupes.Indexes().DropAll(ctx)
			return err
		}, []string{"_id_"}},
		{"collection", func(ctx context.Context, dupes *mongo.Collection) error {
			return dupes.Drop(ctx)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("crm")
			people, dupes := db.Collection("people"), db.Collection("dupes")
			// Both have a unique email_1 and a seen_1; each also has an index the other lacks.
			createIndexes(t, people, "email", "seen", "city")
			createIndexes(t, dupes, "email", "seen", "zip")
			for _, c := range []*mongo.Collection{people, dupes} {
				if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}}); err != nil {
					t.Fatal(err)
				}
			}

			if err := tc.drop(ctx, dupes); err != nil {
				t.Fatalf("dropping on crm.dupes: %v", err)
			}

			if got := indexNames(t, people); !slices.Equal(got, peopleIndexes) {
				t.Fatalf("crm.people has indexes %v after a drop on crm.dupes, want %v", got, peopleIndexes)
			}
			if _, err := people.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "a"}}); !mongo.IsDuplicateKeyError(err) {
				t.Fatalf("crm.people's unique email_1 let a second email a in (%v)", err)
			}
			if tc.dupesKeep == nil {
				names, err := db.ListCollectionNames(ctx, bson.D{})
				if err != nil || !slices.Equal(names, []string{"people"}) {
					t.Fatalf("collections after dropping crm.dupes: %v (%v)", names, err)
				}
				// Created again, it starts with an _id index only.
				if _, err := dupes.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}}); err != nil {
					t.Fatal(err)
				}
				tc.dupesKeep = []string{"_id_"}
			}
			if got := indexNames(t, dupes); !slices.Equal(got, tc.dupesKeep) {
				t.Fatalf("crm.dupes has indexes %v, want %v", got, tc.dupesKeep)
			}
			// Its email_1 is really gone, not only unlisted: a second email a goes in.
			if _, err := dupes.InsertOne(ctx, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "a"}}); err != nil {
				t.Fatalf("crm.dupes still enforces a dropped unique index: %v", err)
			}
			// The server's own bookkeeping agrees: the other collection can still be dropped.
			if err := people.Drop(ctx); err != nil {
				t.Fatalf("dropping crm.people afterwards: %v", err)
			}
		})
	}

	t.Run("_id index", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("crm")
		people, dupes := db.Collection("people"), db.Collection("dupes")
		createIndexes(t, people, "email")
		createIndexes(t, dupes, "email")
		byName := bson.D{{Key: "dropIndexes", Value: "dupes"}, {Key: "index", Value: "_id_"}}
		byKey := bson.D{{Key: "dropIndexes", Value: "dupes"}, {Key: "index", Value: bson.D{{Key: "_id", Value: 1}}}}
		for _, cmd := range []bson.D{byName, byKey} {
			var cmdErr mongo.CommandError
			if err := db.RunCommand(ctx, cmd).Err(); !errors.As(err, &cmdErr) || cmdErr.Code != 72 {
				t.Fatalf("%v: got %v, want MongoDB's InvalidOptions (72) \"cannot drop _id index\"", cmd, err)
			}
		}
		for _, c := range []*mongo.Collection{people, dupes} {
			if got, want := indexNames(t, c), []string{"_id_", "email_1"}; !slices.Equal(got, want) {
				t.Fatalf("crm.%s has indexes %v, want %v", c.Name(), got, want)
			}
		}
	})
}

// createIndexes gives coll an ascending index on each field, named field_1; the first is unique.
func createIndexes(t *testing.T, coll *mongo.Collection, fields ...string) {
	t.Helper()
	models := make([]mongo.IndexModel, len(fields))
	for i, f := range fields {
		models[i] = mongo.IndexModel{Keys: bson.D{{Key: f, Value: 1}}}
		if i == 0 {
			models[i].Options = options.Index().SetUnique(true)
		}
	}
	if _, err := coll.Indexes().CreateMany(context.Background(), models); err != nil {
		t.Fatalf("creating indexes on %s: %v", coll.Name(), err)
	}
}

// indexNames lists coll's indexes by name, sorted.
func indexNames(t *testing.T, coll *mongo.Collection) []string {
	t.Helper()
	specs, err := coll.Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatalf("listing indexes of %s: %v", coll.Name(), err)
	}
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	slices.Sort(names)
	return names
}
