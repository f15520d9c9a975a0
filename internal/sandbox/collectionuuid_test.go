package sandbox_test

import (
	"context"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// A find with a collectionUUID runs only on the collection with that UUID; otherwise the sandbox
// answers as MongoDB 6.0+ does (workaround mongoJavaServerIgnoresCollectionUUID):
// CollectionUUIDMismatch with the fields of the real reply, in its order, naming the UUID's
// collection in the database, or null when none has it.
func TestSandboxFindChecksCollectionUUIDAsMongoDBDoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	db := client.Database("test")
	for _, name := range []string{"coll", "coll_2"} {
		if _, err := db.Collection(name).InsertOne(ctx, bson.D{{Key: "_id", Value: name}}); err != nil {
			t.Fatal(err)
		}
	}
	uuid := collectionUUIDs(t, db)["coll"]
	find := func(coll string, u primitive.Binary) (bson.Raw, error) {
		return db.RunCommand(ctx, bson.D{{Key: "find", Value: coll}, {Key: "collectionUUID", Value: u}}).Raw()
	}

	reply, err := find("coll", uuid)
	if err != nil {
		t.Fatalf("find with the collection's own UUID: %v", err)
	}
	if got := reply.Lookup("cursor", "firstBatch").Array().Index(0).Value().Document().Lookup("_id").StringValue(); got != "coll" {
		t.Errorf("find with the right UUID read %q, want coll's document", got)
	}

	_, err = find("coll_2", uuid)
	assertMismatchLike(t, err, realdocs.ReplyCollectionUUIDMismatch, uuid, "coll_2", "coll")

	// Renamed: the UUID names the collection under its new name.
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "test.coll"}, {Key: "to", Value: "test.coll_3"}}).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = find("coll", uuid)
	assertMismatchLike(t, err, realdocs.ReplyCollectionUUIDMismatch, uuid, "coll", "coll_3")

	// Dropped, and a collection created again under the name: no collection has the UUID.
	if err := db.Collection("coll_3").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("coll_3").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	_, err = find("coll_3", uuid)
	assertMismatchLike(t, err, realdocs.ReplyCollectionUUIDMismatchNoCollection, uuid, "coll_3", "")
}

// assertMismatchLike checks that err is the server's CollectionUUIDMismatch reply with real's
// fields in real's order (the replica set's $clusterTime and operationTime aside: the sandbox is a
// standalone) and the given values.
func assertMismatchLike(t *testing.T, err error, real string, uuid primitive.Binary, expected, actual string) {
	t.Helper()
	var ce mongo.CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("find answered %v, want CollectionUUIDMismatch", err)
	}
	var want bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(real), false, &want); err != nil {
		t.Fatal(err)
	}
	var wantKeys, gotKeys []string
	wantElems, _ := want.Elements()
	for _, e := range wantElems {
		if e.Key() != "$clusterTime" && e.Key() != "operationTime" {
			wantKeys = append(wantKeys, e.Key())
		}
	}
	gotElems, _ := ce.Raw.Elements()
	for _, e := range gotElems {
		gotKeys = append(gotKeys, e.Key())
	}
	if len(gotKeys) != len(wantKeys) {
		t.Fatalf("reply fields %v, MongoDB's %v: %s", gotKeys, wantKeys, ce.Raw)
	}
	for i := range wantKeys {
		if gotKeys[i] != wantKeys[i] {
			t.Fatalf("reply fields %v, MongoDB's %v: %s", gotKeys, wantKeys, ce.Raw)
		}
	}
	for _, k := range []string{"ok", "errmsg", "code", "codeName", "db"} {
		if !ce.Raw.Lookup(k).Equal(want.Lookup(k)) {
			t.Errorf("%s: %s, MongoDB's %s", k, ce.Raw.Lookup(k), want.Lookup(k))
		}
	}
	if _, data, _ := ce.Raw.Lookup("collectionUUID").BinaryOK(); string(data) != string(uuid.Data) || ce.Raw.Lookup("collectionUUID").Type != want.Lookup("collectionUUID").Type {
		t.Errorf("collectionUUID %s, want the UUID asked for", ce.Raw.Lookup("collectionUUID"))
	}
	if got := ce.Raw.Lookup("expectedCollection").StringValue(); got != expected {
		t.Errorf("expectedCollection %q, want %q", got, expected)
	}
	got := ce.Raw.Lookup("actualCollection")
	switch {
	case actual == "" && got.Type != want.Lookup("actualCollection").Type:
		t.Errorf("actualCollection %s, want null as MongoDB's", got)
	case actual != "" && got.StringValue() != actual:
		t.Errorf("actualCollection %s, want %q", got, actual)
	}
}
