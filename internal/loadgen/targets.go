package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// poolLoadLimit is how many existing _ids are read per collection at the start: enough targets to
// spread updates over, read quickly even from a large collection.
const poolLoadLimit = 20_000

// resolveNamespaces returns the collections to write to: the requested ones, each of which must be a
// collection on the server, or every user collection. Views, time-series and capped collections are
// left out of the default, since they do not take these writes.
func resolveNamespaces(ctx context.Context, client *mongo.Client, requested []namespace.Namespace) ([]namespace.Namespace, error) {
	colls, err := catalog.ListCollections(ctx, client, namespace.Filter{})
	if err != nil {
		return nil, err
	}
	writable := func(c catalog.Collection) bool {
		return c.Type == catalog.TypeCollection && !isCapped(c.Options)
	}
	if len(requested) == 0 {
		var out []namespace.Namespace
		for _, c := range colls {
			if writable(c) {
				out = append(out, c.NS)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("the server has no user collections to write to; seed some data first or name collections to write to")
		}
		return out, nil
	}
	var out []namespace.Namespace
	for _, ns := range requested {
		i := slices.IndexFunc(colls, func(c catalog.Collection) bool { return c.NS == ns })
		switch {
		case i < 0:
			return nil, fmt.Errorf("%s is not a collection on the server", ns)
		case !writable(colls[i]):
			return nil, fmt.Errorf("%s is a %s collection, which the load generator does not write to", ns, describe(colls[i]))
		case !slices.Contains(out, ns):
			out = append(out, ns)
		}
	}
	return out, nil
}

func isCapped(opts bson.Raw) bool {
	v, err := opts.LookupErr("capped")
	return err == nil && v.Type == bsontype.Boolean && v.Boolean()
}

func describe(c catalog.Collection) string {
	if isCapped(c.Options) {
		return "capped"
	}
	return c.Type
}

// loadTargets reads what the planner needs to know of each collection.
func loadTargets(ctx context.Context, client *mongo.Client, nss []namespace.Namespace) ([]target, error) {
	targets := make([]target, 0, len(nss))
	for _, ns := range nss {
		t, err := loadTarget(ctx, client, ns)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", ns, err)
		}
		targets = append(targets, t)
	}
	return targets, nil
}

func loadTarget(ctx context.Context, client *mongo.Client, ns namespace.Namespace) (target, error) {
	t := target{ns: ns}
	coll := client.Database(ns.DB).Collection(ns.Coll)
	// In _id order, so that the same data always gives the same pool and hence the same plan.
	byID := bson.D{{Key: "_id", Value: 1}}
	cur, err := coll.Find(ctx, bson.D{}, options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}}).SetSort(byID).SetLimit(poolLoadLimit))
	if err != nil {
		return t, fmt.Errorf("reading _ids: %w", err)
	}
	var kinds [numIDKinds]bool
	for cur.Next(ctx) {
		id := cur.Current.Lookup("_id")
		id.Value = slices.Clone(id.Value) // the cursor reuses its buffer
		t.ids = append(t.ids, id)
		if k, ok := kindOf(id); ok {
			kinds[k] = true
		}
	}
	if err := cur.Err(); err != nil {
		cur.Close(ctx)
		return t, fmt.Errorf("reading _ids: %w", err)
	}
	cur.Close(ctx)
	for k, present := range kinds {
		if present {
			t.idKinds = append(t.idKinds, idKind(k))
		}
	}
	if len(t.idKinds) == 0 {
		t.idKinds = []idKind{idObjectID}
	}

	for _, k := range t.idKinds {
		n, err := lastMinted(ctx, coll, k)
		if err != nil {
			return t, err
		}
		t.nextSeq = max(t.nextSeq, n+1)
	}

	specs, err := catalog.ListIndexes(ctx, client, ns)
	if err != nil {
		return t, err
	}
	t.uniqueFields = uniqueFields(specs)

	var sample bson.Raw
	err = coll.FindOne(ctx, bson.D{}, options.FindOne().SetSort(byID)).Decode(&sample)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return t, fmt.Errorf("reading a sample document: %w", err)
	}
	t.unsetFields = unsetFields(sample, t.uniqueFields)
	return t, nil
}

// lastMinted returns the largest sequence number of a minted _id of kind k in coll, or -1.
func lastMinted(ctx context.Context, coll *mongo.Collection, k idKind) (int64, error) {
	var doc bson.Raw
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: mintedRange(k)}}, options.FindOne().
		SetSort(bson.D{{Key: "_id", Value: -1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("finding earlier %s _ids of the load generator: %w", k, err)
	}
	n, ok := seqOf(k, doc.Lookup("_id"))
	if !ok {
		return -1, nil
	}
	return n, nil
}

// uniqueFields lists the key paths of unique indexes, except _id and paths under it.
func uniqueFields(specs []bson.Raw) []string {
	var out []string
	for _, spec := range specs {
		if u, err := spec.LookupErr("unique"); err != nil || !truthy(u) {
			continue
		}
		key, ok := spec.Lookup("key").DocumentOK()
		if !ok {
			continue
		}
		keys, err := key.Elements()
		if err != nil {
			continue
		}
		for _, e := range keys {
			path := e.Key()
			if path == "_id" || strings.HasPrefix(path, "_id.") || slices.Contains(out, path) {
				continue
			}
			out = append(out, path)
		}
	}
	return out
}

// truthy reads an index option the way the server does: tools write unique as true, 1 or 1.0.
func truthy(v bson.RawValue) bool {
	switch v.Type {
	case bsontype.Boolean:
		return v.Boolean()
	case bsontype.Int32:
		return v.Int32() != 0
	case bsontype.Int64:
		return v.Int64() != 0
	case bsontype.Double:
		return v.Double() != 0
	}
	return false
}

// unsetFields lists the top-level fields of sample that $unset may remove: not _id, not a field a
// unique index covers (two documents without it would both index null and collide), and none of the
// generator's own fields but the status.
func unsetFields(sample bson.Raw, unique []string) []string {
	out := []string{fieldStatus}
	elems, _ := sample.Elements()
	for _, e := range elems {
		f := e.Key()
		if f == "_id" || f == fieldStatus || slices.Contains(ownFields, f) || slices.ContainsFunc(unique, func(u string) bool {
			return u == f || strings.HasPrefix(u, f+".")
		}) {
			continue
		}
		out = append(out, f)
	}
	return out
}
