package coordinator_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.uber.org/zap"

	"github.com/fleetsync/fleetsync/coordinator"
	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// sourceIndexes are the source's unique and TTL indexes as a user created them: fields in the
// user's order, expireAfterSeconds an int32 (what the shell and the drivers send).
var sourceIndexes = []bson.D{
	{{Key: "key", Value: bson.D{{Key: "seen", Value: 1}}}, {Key: "expireAfterSeconds", Value: int32(3600)}, {Key: "name", Value: "seen_1"}, {Key: "sparse", Value: true}},
	{{Key: "key", Value: bson.D{{Key: "email", Value: 1}}}, {Key: "unique", Value: true}, {Key: "name", Value: "email_1"}},
}

// syncedPair builds crm.people on a source and a destination as a sync leaves them before commit:
// the same documents, the source's indexes on the source, and on the destination the same indexes
// built the sync's way (unique left out, TTL at its maximum), with the catalog recording what commit
// must restore.
func syncedPair(t *testing.T, ctx context.Context) (src, dst *mongo.Client, meta *metadata.DB) {
	t.Helper()
	src = sandboxtest.Connect(t, sandboxtest.Server(t, true))
	dst = sandboxtest.Connect(t, sandboxtest.Server(t, false))
	meta = metadata.Open(dst, namespace.DefaultMetadataDB, "default")
	for _, c := range []*mongo.Client{src, dst} {
		if _, err := c.Database("crm").Collection("people").InsertMany(ctx, []any{
			bson.D{{Key: "_id", Value: 1}, {Key: "email", Value: "a"}}, bson.D{{Key: "_id", Value: 2}, {Key: "email", Value: "b"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	createIndexes(t, ctx, src, "crm", "people", sourceIndexes...)
	specs, err := catalog.ListIndexes(ctx, src, namespace.Namespace{DB: "crm", Coll: "people"})
	if err != nil {
		t.Fatal(err)
	}
	e := metadata.CatalogEntry{ID: metadata.CatalogID("default", "crm.people"), Sync: "default", DB: "crm", Coll: "people", Indexes: specs}
	for _, spec := range specs {
		built, change, err := metadata.DestinationIndexSpec(spec)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Lookup("name").StringValue() == "_id_" {
			continue
		}
		createIndexes(t, ctx, dst, "crm", "people", built)
		if change != nil {
			e.Deferred = append(e.Deferred, *change)
		}
	}
	if err := meta.PutCatalogEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	return src, dst, meta
}

func createIndexes(t *testing.T, ctx context.Context, client *mongo.Client, db, coll string, specs ...bson.D) {
	t.Helper()
	var a bson.A
	for _, s := range specs {
		a = append(a, s)
	}
	if err := client.Database(db).RunCommand(ctx, bson.D{{Key: "createIndexes", Value: coll}, {Key: "indexes", Value: a}}).Err(); err != nil {
		t.Fatal(err)
	}
}

// assertIndexesExactlyAsSource compares the raw listIndexes documents of ns on both sides: same
// names, and byte for byte the same specs (field order and number types included).
func assertIndexesExactlyAsSource(t *testing.T, ctx context.Context, src, dst *mongo.Client, ns namespace.Namespace) {
	t.Helper()
	want, err := catalog.ListIndexes(ctx, src, ns)
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.ListIndexes(ctx, dst, ns)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]bson.Raw{}
	for _, s := range got {
		byName[s.Lookup("name").StringValue()] = s
	}
	for _, w := range want {
		name := w.Lookup("name").StringValue()
		g, ok := byName[name]
		switch {
		case !ok:
			t.Errorf("index %s of %s is missing on the destination; the source has %s", name, ns, w)
		case !bytes.Equal(g, w):
			t.Errorf("index %s of %s differs:\n source      %s\n destination %s", name, ns, w, g)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s has %d indexes on the destination, %d on the source", ns, len(got), len(want))
	}
}

// A coordinator that dies between dropping an index and building it again: the next one builds it,
// from the catalog's record, and exactly as the source has it (int32 expireAfterSeconds, the
// source's field order), not from what the destination holds (nothing).
func TestRestoreAfterACrashBetweenDropAndRebuildBuildsTheSourcesIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, dst, meta := syncedPair(t, ctx)
	ns := namespace.Namespace{DB: "crm", Coll: "people"}

	killed := errors.New("the coordinator died here")
	dropped := ""
	_, err := coordinator.RestoreDeferredAfterDrop(ctx, meta, src, dst, zap.NewNop(), func(n string, rb metadata.IndexRebuild) error {
		dropped = rb.Index
		return killed
	})
	if !errors.Is(err, killed) || dropped == "" {
		t.Fatalf("the first coordinator: %v, dropped %q; want it stopped right after a drop", err, dropped)
	}
	if spec := indexSpec(t, dst, ns.String(), dropped); spec != nil {
		t.Fatalf("index %s still exists after its drop: %s", dropped, spec)
	}

	restored, err := coordinator.RestoreDeferred(ctx, meta, src, dst, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the next coordinator restored %q", restored)
	assertIndexesExactlyAsSource(t, ctx, src, dst, ns)
	entries, err := meta.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || len(entries[0].Deferred) != 0 || len(entries[0].Rebuilding) != 0 {
		t.Fatalf("the catalog after the restore: %+v", entries)
	}
}

// An index the destination lost between a drop and its rebuild, whose rebuild record did not survive
// either, is built again from the source (which still has it), not forgotten as if the applier had
// dropped it.
func TestRestoreRebuildsAnIndexTheDestinationLostWithoutARecord(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, dst, meta := syncedPair(t, ctx)
	if _, err := dst.Database("crm").Collection("people").Indexes().DropOne(ctx, "email_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := coordinator.RestoreDeferred(ctx, meta, src, dst, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	got, want := indexSpec(t, dst, "crm.people", "email_1"), indexSpec(t, src, "crm.people", "email_1")
	if got == nil || !metadata.Truthy(got.Lookup("unique")) {
		t.Fatalf("email_1 on the destination after the restore: %v; want it rebuilt as the source has it (%v)", got, want)
	}
}
