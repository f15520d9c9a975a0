package e2e

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// On real servers the verifier sees collection options, views and index changes made with collMod,
// which the sandbox server does not store.
func TestVerifyCollectionOptionsViewsAndIndexesOnRealClusters(t *testing.T) {
	src, dst := clusters(t)
	ctx := context.Background()
	db := scratchDB(t, src, dst)
	orders := namespace.Namespace{DB: db, Coll: "orders"}
	view := namespace.Namespace{DB: db, Coll: "open_orders"}
	validator := bson.D{{Key: "$jsonSchema", Value: bson.D{{Key: "bsonType", Value: "object"}, {Key: "required", Value: bson.A{"total"}}}}}
	for _, c := range []*mongo.Client{src, dst} {
		d := c.Database(db)
		must(t, d.CreateCollection(ctx, orders.Coll, options.CreateCollection().SetValidator(validator)))
		must(t, d.CreateView(ctx, view.Coll, orders.Coll, mongo.Pipeline{{{Key: "$match", Value: bson.D{{Key: "open", Value: true}}}}}))
		_, err := d.Collection(orders.Coll).InsertMany(ctx, []any{
			bson.D{{Key: "_id", Value: 1}, {Key: "total", Value: 10}, {Key: "open", Value: true}},
			bson.D{{Key: "_id", Value: 2}, {Key: "total", Value: 20}, {Key: "open", Value: false}},
		})
		must(t, err)
		_, err = d.Collection(orders.Coll).Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "total", Value: 1}}, Options: options.Index().SetUnique(true)})
		must(t, err)
	}
	include := []namespace.Namespace{orders, view}
	report, err := verify.Run(ctx, src, dst, verify.Options{Include: include})
	must(t, err)
	if !report.Equal() {
		t.Fatalf("identical namespaces reported different: %+v", report.Namespaces)
	}

	d := dst.Database(db)
	must(t, d.RunCommand(ctx, bson.D{{Key: "collMod", Value: orders.Coll}, {Key: "validationLevel", Value: "moderate"}}).Err())
	must(t, d.RunCommand(ctx, bson.D{{Key: "collMod", Value: view.Coll}, {Key: "viewOn", Value: orders.Coll},
		{Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "open", Value: false}}}}}}}).Err())
	must(t, d.RunCommand(ctx, bson.D{{Key: "collMod", Value: orders.Coll}, {Key: "index", Value: bson.D{{Key: "name", Value: "total_1"}, {Key: "hidden", Value: true}}}}).Err())

	report, err = verify.Run(ctx, src, dst, verify.Options{Include: include})
	must(t, err)
	got := map[string]string{}
	for _, n := range report.Namespaces {
		got[n.NS.Coll] = strings.Join(append(n.OptionDiffs, n.IndexDiffs...), "; ")
	}
	for coll, want := range map[string][]string{
		orders.Coll: {`option validationLevel is absent on source, "moderate" on destination`, "index total_1: hidden is absent on source, true on destination"},
		view.Coll:   {"option pipeline is"},
	} {
		for _, w := range want {
			if !strings.Contains(got[coll], w) {
				t.Errorf("%s: differences %q do not include %q", coll, got[coll], w)
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
