// Package seed generates deterministic, realistic test data for fleetsync and loads it into a cluster.
//
// The data exists to be copied between clusters and compared document by document, so it deliberately
// covers the parts of BSON that migrations get wrong: _ids of every common type (including int32, int64
// and double ids that MongoDB would treat as equal if their values matched), nested documents, arrays of
// sub-documents, Decimal128 money, dates before 1970, binary of subtypes 0 and 4, null versus missing
// fields, non-ASCII strings, and a long tail of large documents. Unique, compound, sparse, partial and
// TTL indexes are created too, because those are what make a copy fail or silently lose data.
//
// Everything is a pure function of Options: the same Seed, Docs and Collections produce byte-identical
// documents on every run and machine, so a test can regenerate the expected data instead of storing it.
package seed

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

const (
	// defaultCollections is one collection per template, the smallest set that covers every case.
	defaultCollections = 6
	// defaultBatchSize keeps an insertMany well below the 48 MB message limit even when every document
	// is at the 16 KB end of the size distribution.
	defaultBatchSize = 1000
	// namespaceExistsCode is the server's error code for creating a collection that already exists.
	namespaceExistsCode = 48
)

// Options says how much data to generate. The zero value plus a Seed is usable.
type Options struct {
	Docs        int   // total documents over all collections (0: create collections and indexes only)
	Collections int   // number of collections (default 6 when 0)
	Seed        int64 // same Seed + same Docs/Collections => byte-identical documents
	BatchSize   int   // insertMany batch (default 1000)
}

// Collection is one planned collection. Documents regenerates its data from the Options alone, so a
// Collection can be planned in one process and verified in another.
type Collection struct {
	DB, Name string
	IDKind   string             // "objectId","int32","int64","string","uuid","mixed"
	Docs     int                // how many documents this collection gets
	Indexes  []mongo.IndexModel // secondary indexes (never _id)
}

// Stats reports what Seed wrote. Bytes is the total BSON size of the inserted documents, i.e. roughly
// what a migration has to move.
type Stats struct {
	Collections, Docs int
	Bytes             int64
}

func (o Options) collections() int {
	if o.Collections <= 0 {
		return defaultCollections
	}
	return o.Collections
}

func (o Options) docs() int {
	return max(o.Docs, 0)
}

func (o Options) batchSize() int {
	if o.BatchSize <= 0 {
		return defaultBatchSize
	}
	return o.BatchSize
}

// Plan lists the collections that opts describes, in a fixed order. Collection i uses template i%6, so
// even a small count covers the important cases first (ObjectId ids with a unique index, int64 ids,
// mixed ids); beyond six the templates repeat with a "_1", "_2", ... suffix. Docs are spread evenly and
// the remainder goes to the first collections.
func Plan(opts Options) []Collection {
	k := opts.collections()
	per, extra := opts.docs()/k, opts.docs()%k
	plan := make([]Collection, k)
	for i := range plan {
		t := &templates[i%len(templates)]
		name := t.name
		if round := i / len(templates); round > 0 {
			name = fmt.Sprintf("%s_%d", t.name, round)
		}
		n := per
		if i < extra {
			n++
		}
		plan[i] = Collection{DB: t.db, Name: name, IDKind: t.idKind, Docs: n, Indexes: t.indexes()}
	}
	return plan
}

// Seed creates every planned collection, fills it, and then builds its indexes. Indexes come after the
// data because that is how a migration tool builds them too, and because it is faster. Collections that
// already exist are reused; documents that already exist fail with a duplicate-key error, so seeding the
// same namespace twice is reported rather than silently doubled.
func Seed(ctx context.Context, client *mongo.Client, opts Options) (Stats, error) {
	var stats Stats
	plan := Plan(opts)
	for i, c := range plan {
		if err := seedCollection(ctx, client, opts, plan, i, &stats); err != nil {
			return stats, fmt.Errorf("seed %s.%s: %w", c.DB, c.Name, err)
		}
		stats.Collections++
	}
	return stats, nil
}

func seedCollection(ctx context.Context, client *mongo.Client, opts Options, plan []Collection, index int, stats *Stats) error {
	c := plan[index]
	db := client.Database(c.DB)
	// Explicit creation makes collections exist even when they get no documents (Docs == 0 or Docs < K).
	if err := db.CreateCollection(ctx, c.Name); err != nil && !isNamespaceExists(err) {
		return fmt.Errorf("create collection: %w", err)
	}
	coll := db.Collection(c.Name)
	// Unordered: the server may apply a batch in parallel, and one bad document does not hide the rest.
	insertOpts := options.InsertMany().SetOrdered(false)
	err := generate(opts, plan, index, c.Docs, func(batch []bson.Raw) error {
		docs := make([]any, len(batch))
		for j, d := range batch {
			docs[j] = d
		}
		if _, err := coll.InsertMany(ctx, docs, insertOpts); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		stats.Docs += len(batch)
		for _, d := range batch {
			stats.Bytes += int64(len(d))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(c.Indexes) > 0 {
		if _, err := coll.Indexes().CreateMany(ctx, c.Indexes); err != nil {
			return fmt.Errorf("create indexes: %w", err)
		}
	}
	return nil
}

// isNamespaceExists recognises "collection already exists" by code, and by message for servers (such as
// test doubles) that use a different code.
func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) && (ce.Code == namespaceExistsCode || ce.Name == "NamespaceExists") {
		return true
	}
	return strings.Contains(err.Error(), "already exists")
}
