package sandbox_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// replacePath is one way the Go driver replaces a document; it returns the document as the server
// reports it after the replacement when that path reports one (findAndModify), else nil.
type replacePath struct {
	name    string
	replace func(ctx context.Context, coll *mongo.Collection, filter, doc bson.D, upsert bool) (bson.Raw, error)
}

var replacePaths = []replacePath{
	{"replaceOne", func(ctx context.Context, coll *mongo.Collection, filter, doc bson.D, upsert bool) (bson.Raw, error) {
		_, err := coll.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(upsert))
		return nil, err
	}},
	{"update command", func(ctx context.Context, coll *mongo.Collection, filter, doc bson.D, upsert bool) (bson.Raw, error) {
		// The driver's UpdateOne refuses a replacement, so the command is sent as written.
		var reply struct {
			WriteErrors []bson.Raw `bson:"writeErrors"`
		}
		err := coll.Database().RunCommand(ctx, bson.D{{Key: "update", Value: coll.Name()}, {Key: "updates", Value: bson.A{
			bson.D{{Key: "q", Value: filter}, {Key: "u", Value: doc}, {Key: "upsert", Value: upsert}, {Key: "multi", Value: false}},
		}}}).Decode(&reply)
		if err == nil && len(reply.WriteErrors) > 0 {
			err = fmt.Errorf("write errors: %v", reply.WriteErrors)
		}
		return nil, err
	}},
	{"findAndModify", func(ctx context.Context, coll *mongo.Collection, filter, doc bson.D, upsert bool) (bson.Raw, error) {
		return coll.FindOneAndReplace(ctx, filter, doc,
			options.FindOneAndReplace().SetUpsert(upsert).SetReturnDocument(options.After)).Raw()
	}},
	{"bulk write", func(ctx context.Context, coll *mongo.Collection, filter, doc bson.D, upsert bool) (bson.Raw, error) {
		_, err := coll.BulkWrite(ctx, []mongo.WriteModel{
			mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(doc).SetUpsert(upsert),
		})
		return nil, err
	}},
}

// A replaced document reads back in the replacement's field order with _id first, as on MongoDB
// (workaround mongoJavaServerKeepsFieldOrderOnReplace), whichever way the driver replaces it: also
// when the replacement only reorders the fields, and when a replace-upsert inserts it.
func TestSandboxStoresReplacementsInTheirFieldOrder(t *testing.T) {
	ctx := context.Background()
	db := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("d")
	stored := bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}, {Key: "s", Value: bson.D{{Key: "x", Value: 1}, {Key: "y", Value: 2}}}}
	byID := bson.D{{Key: "_id", Value: 1}}
	cases := []struct {
		name        string
		seed        bool
		filter, doc bson.D
		want        string
		upserts     []bool // the upsert settings to replace with
	}{
		{name: "only reordered", seed: true, filter: byID, upserts: []bool{false, true},
			doc:  bson.D{{Key: "b", Value: 2}, {Key: "s", Value: bson.D{{Key: "y", Value: 2}, {Key: "x", Value: 1}}}, {Key: "a", Value: 1}},
			want: "_id b s{y x} a"},
		{name: "changed, _id not first", seed: true, filter: bson.D{{Key: "a", Value: 1}}, upserts: []bool{false, true},
			doc:  bson.D{{Key: "c", Value: 3}, {Key: "b", Value: 2}, {Key: "_id", Value: 1}, {Key: "a", Value: 4}},
			want: "_id c b a"},
		{name: "upserted by _id", filter: byID, upserts: []bool{true},
			doc:  bson.D{{Key: "b", Value: 2}, {Key: "a", Value: 1}},
			want: "_id b a"},
		{name: "upserted by another field", filter: bson.D{{Key: "k", Value: "x"}}, upserts: []bool{true},
			doc:  bson.D{{Key: "b", Value: 2}, {Key: "a", Value: 1}},
			want: "_id b a"},
	}
	n := 0
	for _, path := range replacePaths {
		for _, c := range cases {
			for _, upsert := range c.upserts {
				t.Run(fmt.Sprintf("%s/%s/upsert=%t", path.name, c.name, upsert), func(t *testing.T) {
					n++
					coll := db.Collection(fmt.Sprintf("c%d", n))
					if c.seed {
						if _, err := coll.InsertOne(ctx, stored); err != nil {
							t.Fatal(err)
						}
					}
					returned, err := path.replace(ctx, coll, c.filter, c.doc, upsert)
					if err != nil {
						t.Fatalf("replacing with %v: %v", c.doc, err)
					}
					if returned != nil {
						if got := fieldOrder(t, returned); got != c.want {
							t.Errorf("the server returned the new document as %s, want %s", got, c.want)
						}
					}
					got, err := coll.FindOne(ctx, bson.D{}).Raw()
					if err != nil {
						t.Fatal(err)
					}
					if got := fieldOrder(t, got); got != c.want {
						t.Errorf("replaced by %v, the document reads back as %s, want %s", c.doc, got, c.want)
					}
				})
			}
		}
	}

	t.Run("findAndModify with a projection", func(t *testing.T) {
		coll := db.Collection("projected")
		if _, err := coll.InsertOne(ctx, stored); err != nil {
			t.Fatal(err)
		}
		doc := bson.D{{Key: "b", Value: 2}, {Key: "s", Value: bson.D{{Key: "x", Value: 1}}}, {Key: "a", Value: 1}}
		got, err := coll.FindOneAndReplace(ctx, byID, doc, options.FindOneAndReplace().
			SetReturnDocument(options.After).SetProjection(bson.D{{Key: "a", Value: 1}, {Key: "s", Value: 1}})).Raw()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fieldOrder(t, got), "_id s{x} a"; got != want {
			t.Errorf("the server returned %s, want %s", got, want)
		}
	})
}

// An update with operators keeps the stored order, updates existing fields in place and appends
// new ones, as on MongoDB; the workaround leaves it alone.
func TestSandboxUpdateWithOperatorsAppendsNewFields(t *testing.T) {
	ctx := context.Background()
	coll := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("d").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	byID := bson.D{{Key: "_id", Value: 1}}
	if _, err := coll.UpdateOne(ctx, byID, bson.D{{Key: "$set", Value: bson.D{{Key: "c", Value: 3}, {Key: "a", Value: 5}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.BulkWrite(ctx, []mongo.WriteModel{
		mongo.NewUpdateOneModel().SetFilter(byID).SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "d", Value: 4}, {Key: "b", Value: 6}}}}),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := coll.FindOne(ctx, byID).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fieldOrder(t, got), "_id a b c d"; got != want {
		t.Errorf("after $set of a, c, b and d the document reads back as %s, want %s", got, want)
	}
}

// On a source, a replacement is logged in full, also one that only reorders fields: MongoDB counts
// that as a modification, and a destination that missed it would keep the old order.
func TestSandboxOplogLogsReplacementsInFull(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	coll := client.Database("d").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	byID := bson.D{{Key: "_id", Value: 1}}
	reordered := bson.D{{Key: "b", Value: 2}, {Key: "a", Value: 1}}
	res, err := coll.ReplaceOne(ctx, byID, reordered)
	if err != nil {
		t.Fatal(err)
	}
	if res.MatchedCount != 1 || res.ModifiedCount != 1 {
		t.Errorf("a reordering replacement matched %d and modified %d, want 1 and 1", res.MatchedCount, res.ModifiedCount)
	}
	if _, err := coll.ReplaceOne(ctx, byID, reordered); err != nil {
		t.Fatal(err)
	}
	changed := bson.D{{Key: "_id", Value: 1}, {Key: "c", Value: 3}, {Key: "a", Value: 1}}
	if _, err := coll.ReplaceOne(ctx, byID, changed); err != nil {
		t.Fatal(err)
	}

	cur, err := client.Database("local").Collection("oplog.rs").Find(ctx, bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: "d.c"}})
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	for cur.Next(ctx) {
		if id := cur.Current.Lookup("o2", "_id").AsInt64(); id != 1 {
			t.Errorf("an update is logged for _id %d, want 1", id)
		}
		// The server logs the replacement as sent, adding _id at its end when it was left out.
		o := cur.Current.Lookup("o").Document()
		if _, err := o.LookupErr("_id"); err != nil {
			t.Errorf("the logged replacement %s has no _id", o)
		}
		logged = append(logged, strings.TrimSpace(strings.Replace(" "+fieldOrder(t, o)+" ", " _id ", " ", 1)))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	// The second, identical replacement changed nothing and is not logged, as on MongoDB.
	if got, want := strings.Join(logged, " | "), "b a | c a"; got != want {
		t.Errorf("the oplog logs replacements with fields (_id aside) %s, want %s", got, want)
	}
}

// fieldOrder renders a document's field names in stored order, those of embedded documents in
// braces: "_id b s{y x} a".
func fieldOrder(t *testing.T, doc bson.Raw) string {
	t.Helper()
	elems, err := doc.Elements()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(elems))
	for _, e := range elems {
		name := e.Key()
		if sub, ok := e.Value().DocumentOK(); ok {
			name += "{" + fieldOrder(t, sub) + "}"
		}
		names = append(names, name)
	}
	return strings.Join(names, " ")
}
