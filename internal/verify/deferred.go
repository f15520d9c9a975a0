package verify

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/metadata"
)

// deferredIndexChanges reads, from a fleetsync metadata database on the destination, the index
// settings a sync leaves out until commit: namespace → index name → change. A destination without
// such a database has none.
func deferredIndexChanges(ctx context.Context, destination *mongo.Client, metadataDB string) (map[string]map[string]metadata.DeferredIndexChange, error) {
	cur, err := destination.Database(metadataDB).Collection(metadata.CollCatalog).Find(ctx,
		bson.D{{Key: "deferred.0", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil {
		return nil, fmt.Errorf("reading fleetsync's catalog in %s on the destination: %w", metadataDB, err)
	}
	var entries []metadata.CatalogEntry
	if err := cur.All(ctx, &entries); err != nil {
		return nil, fmt.Errorf("reading fleetsync's catalog in %s on the destination: %w", metadataDB, err)
	}
	out := map[string]map[string]metadata.DeferredIndexChange{}
	for _, e := range entries {
		ns := e.DB + "." + e.Coll
		if out[ns] == nil {
			out[ns] = map[string]metadata.DeferredIndexChange{}
		}
		for _, d := range e.Deferred {
			out[ns][d.Index] = d
		}
	}
	return out, nil
}

// restoreDeferred returns the destination's index specs as they will be after commit, and a note per
// index whose settings the sync left out.
func restoreDeferred(dst []bson.Raw, deferred map[string]metadata.DeferredIndexChange) ([]bson.Raw, []string, error) {
	if len(deferred) == 0 {
		return dst, nil, nil
	}
	out := make([]bson.Raw, len(dst))
	var notes []string
	for i, spec := range dst {
		name := spec.Lookup("name").StringValue()
		change, ok := deferred[name]
		if !ok {
			out[i] = spec
			continue
		}
		restored, err := metadata.RestoreIndexSpec(spec, change)
		if err != nil {
			return nil, nil, fmt.Errorf("index %s: %w", name, err)
		}
		out[i] = restored
		note := "index " + name + ":"
		if change.Unique {
			note += " unique"
		}
		if change.ExpireAfterSeconds != nil {
			note += fmt.Sprintf(" expireAfterSeconds %d", *change.ExpireAfterSeconds)
		}
		notes = append(notes, note+" restored at commit")
	}
	sort.Strings(notes)
	return out, notes, nil
}
