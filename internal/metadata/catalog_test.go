package metadata_test

import (
	"context"
	"testing"

	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// A catalog entry follows its collection's renames with its UUID, which a rename within a
// database keeps; a rename into another database is a copy into a new collection with a new
// UUID on MongoDB, so the moved entry has none (the applier then goes by name for it).
func TestMovedCatalogEntryKeepsItsUUIDWithinItsDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := metadata.Open(sandboxtest.Connect(t, sandboxtest.Server(t, false)), namespace.DefaultMetadataDB, "s")
	uuid := primitive.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}
	if err := meta.PutCatalogEntry(ctx, metadata.CatalogEntry{ID: metadata.CatalogID("s", "shop.a"), Sync: "s", DB: "shop", Coll: "a", UUID: uuid}); err != nil {
		t.Fatal(err)
	}
	uuidOf := func(ns string) primitive.Binary {
		t.Helper()
		entries, err := meta.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.DB+"."+e.Coll == ns {
				return e.UUID
			}
		}
		t.Fatalf("no catalog entry of %s: %+v", ns, entries)
		return primitive.Binary{}
	}
	if err := meta.MoveCatalogEntry(ctx, "shop.a", "shop.b"); err != nil {
		t.Fatal(err)
	}
	if got := uuidOf("shop.b"); string(got.Data) != string(uuid.Data) {
		t.Errorf("after a rename within the database the entry's UUID is %v, want %v", got, uuid)
	}
	if err := meta.MoveCatalogEntry(ctx, "shop.b", "archive.b"); err != nil {
		t.Fatal(err)
	}
	if got := uuidOf("archive.b"); len(got.Data) != 0 {
		t.Errorf("after a rename into another database the entry's UUID is %v, want none", got)
	}
}
