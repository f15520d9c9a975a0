// Package catalog reads what a cluster holds: its user collections and views, with their options and
// index specifications, as listDatabases, listCollections and listIndexes report them.
package catalog

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Collection types as listCollections reports them.
const (
	TypeCollection = "collection"
	TypeView       = "view"
	TypeTimeseries = "timeseries"
)

// Collection is one user namespace.
type Collection struct {
	NS      namespace.Namespace
	Type    string   // TypeCollection, TypeView or TypeTimeseries
	Options bson.Raw // listCollections' "options" (validator, collation, viewOn, ...), never nil
	// UUID is listCollections' info.uuid: the collection's identity, kept by a rename within its
	// database and new for a collection created again under the same name. Empty where the server
	// reports none (views; servers before 3.6).
	UUID primitive.Binary
}

// HasDocuments reports whether documents can be read from it; a view's contents are derived.
func (c Collection) HasDocuments() bool { return c.Type != TypeView }

// ListCollections returns every user namespace of the cluster that filter selects, sorted by
// namespace.
func ListCollections(ctx context.Context, client *mongo.Client, filter namespace.Filter) ([]Collection, error) {
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listDatabases: %w", err)
	}
	var out []Collection
	for _, db := range dbs {
		if !filter.MaySelectDatabase(db) {
			continue
		}
		colls, err := listDatabase(ctx, client.Database(db), filter)
		if err != nil {
			return nil, err
		}
		out = append(out, colls...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NS.String() < out[j].NS.String() })
	return out, nil
}

func listDatabase(ctx context.Context, db *mongo.Database, filter namespace.Filter) ([]Collection, error) {
	cur, err := db.ListCollections(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("listCollections on %s: %w", db.Name(), err)
	}
	defer cur.Close(ctx)
	var out []Collection
	for cur.Next(ctx) {
		var spec struct {
			Name    string   `bson:"name"`
			Type    string   `bson:"type"`
			Options bson.Raw `bson:"options"`
			Info    struct {
				UUID primitive.Binary `bson:"uuid"`
			} `bson:"info"`
		}
		if err := cur.Decode(&spec); err != nil {
			return nil, fmt.Errorf("listCollections on %s: %w", db.Name(), err)
		}
		ns := namespace.Namespace{DB: db.Name(), Coll: spec.Name}
		if !filter.Selected(ns) {
			continue
		}
		if spec.Type == "" {
			spec.Type = TypeCollection // servers before 3.4 omit it
		}
		if spec.Options == nil {
			spec.Options = emptyDocument
		}
		out = append(out, Collection{NS: ns, Type: spec.Type, Options: spec.Options, UUID: spec.Info.UUID})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("listCollections on %s: %w", db.Name(), err)
	}
	return out, nil
}

var emptyDocument = bson.Raw{5, 0, 0, 0, 0}

// ListIndexes returns the index specifications of a collection, sorted by name.
func ListIndexes(ctx context.Context, client *mongo.Client, ns namespace.Namespace) ([]bson.Raw, error) {
	cur, err := client.Database(ns.DB).Collection(ns.Coll).Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listIndexes on %s: %w", ns, err)
	}
	defer cur.Close(ctx)
	var specs []bson.Raw
	for cur.Next(ctx) {
		specs = append(specs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("listIndexes on %s: %w", ns, err)
	}
	sort.Slice(specs, func(i, j int) bool {
		return specs[i].Lookup("name").StringValue() < specs[j].Lookup("name").StringValue()
	})
	return specs, nil
}

// NameOfUUID returns the name of the collection of db whose listCollections UUID is uuid; found is
// false when no collection of db has it (dropped, or renamed into another database). It is how a
// reader that cannot send collectionUUID (MongoDB before 6.0) follows a collection through renames.
func NameOfUUID(ctx context.Context, db *mongo.Database, uuid primitive.Binary) (name string, found bool, err error) {
	colls, err := listDatabase(ctx, db, namespace.Filter{})
	if err != nil {
		return "", false, err
	}
	for _, c := range colls {
		if c.UUID.Subtype == uuid.Subtype && string(c.UUID.Data) == string(uuid.Data) {
			return c.NS.Coll, true, nil
		}
	}
	return "", false, nil
}
