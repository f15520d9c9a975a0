package sandbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// The sandbox logs DDL as MongoDB 5.0/6.0 does (workaround mongoJavaServerLogsNoDDL): create
// (explicit with its options, and implicit on a first write), createIndexes, dropIndexes,
// renameCollection within a database (with dropTarget when it replaces a collection), drop, and
// dropDatabase after its drops. Each entry has the fields of the real server's entry
// (internal/changeevent/realdocs), in its order, and fleetsync reads it into the event MongoDB's
// entry gives. The sandbox's own _id on every oplog entry is a known gap (docs/test-servers.md)
// and is left out of the comparison.
func TestSandboxOplogLogsDDLAsMongoDBDoes(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	shop := client.Database("shop")
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	start := lastTS(t, client)

	must("create", shop.RunCommand(ctx, bson.D{{Key: "create", Value: "orders"},
		{Key: "validator", Value: bson.D{{Key: "sku", Value: bson.D{{Key: "$exists", Value: true}}}}}}).Err())
	_, err := shop.Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "sku", Value: 1}}, Options: options.Index().SetUnique(true)})
	must("createIndexes", err)
	_, err = shop.Collection("orders").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "sku", Value: 1}},
		Options: options.Index().SetUnique(true)})
	must("createIndexes of an index that exists (logs nothing)", err)
	_, err = shop.Collection("returns").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "A"}})
	must("insert into a new collection", err)
	_, err = shop.Collection("orders").Indexes().DropOne(ctx, "sku_1")
	must("dropIndexes", err)
	must("rename", client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "shop.orders"},
		{Key: "to", Value: "shop.orders_2023"}}).Err())
	must("rename replacing a collection", client.Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: "shop.orders_2023"}, {Key: "to", Value: "shop.returns"}, {Key: "dropTarget", Value: true}}).Err())
	_, err = shop.Collection("carts").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must("insert", err)
	must("drop", shop.Collection("carts").Drop(ctx))
	_, err = shop.Collection("carts").InsertOne(ctx, bson.D{{Key: "_id", Value: 2}})
	must("insert into the re-created collection", err)
	must("dropDatabase", shop.Drop(ctx))

	type want struct {
		real  string // the real server's entry of this kind
		o     bson.D // the expected o
		event changeevent.Event
	}
	idIndex := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}
	skuIndex := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "sku", Value: int32(1)}}}, {Key: "name", Value: "sku_1"}, {Key: "unique", Value: true}}
	ns := func(c string) string { return "shop." + c }
	wants := []want{
		{realdocs.OplogCreate, bson.D{{Key: "create", Value: "orders"},
			{Key: "validator", Value: bson.D{{Key: "sku", Value: bson.D{{Key: "$exists", Value: true}}}}}, {Key: "idIndex", Value: idIndex}},
			changeevent.Event{Op: changeevent.Create}},
		{realdocs.OplogCreateIndexes, append(bson.D{{Key: "createIndexes", Value: "orders"}}, skuIndex...),
			changeevent.Event{Op: changeevent.CreateIndexes}},
		{realdocs.OplogCreate, bson.D{{Key: "create", Value: "returns"}, {Key: "idIndex", Value: idIndex}},
			changeevent.Event{Op: changeevent.Create}},
		{realdocs.OplogInsert, nil, changeevent.Event{Op: changeevent.Insert}},
		{realdocs.OplogDropIndexes, bson.D{{Key: "dropIndexes", Value: "orders"}, {Key: "index", Value: "sku_1"}},
			changeevent.Event{Op: changeevent.DropIndexes, IndexNames: []string{"sku_1"}}},
		{realdocs.OplogRename, bson.D{{Key: "renameCollection", Value: ns("orders")}, {Key: "to", Value: ns("orders_2023")}, {Key: "stayTemp", Value: false}},
			changeevent.Event{Op: changeevent.Rename}},
		{realdocs.OplogRenameReplacingTarget, nil, changeevent.Event{Op: changeevent.Rename, DropTarget: true}},
		{realdocs.OplogCreate, bson.D{{Key: "create", Value: "carts"}, {Key: "idIndex", Value: idIndex}}, changeevent.Event{Op: changeevent.Create}},
		{realdocs.OplogInsert, nil, changeevent.Event{Op: changeevent.Insert}},
		{realdocs.OplogDrop, bson.D{{Key: "drop", Value: "carts"}}, changeevent.Event{Op: changeevent.Drop}},
		{realdocs.OplogCreate, bson.D{{Key: "create", Value: "carts"}, {Key: "idIndex", Value: idIndex}}, changeevent.Event{Op: changeevent.Create}},
		{realdocs.OplogInsert, nil, changeevent.Event{Op: changeevent.Insert}},
		// dropDatabase: a drop per collection (in the server's order), then the database's entry.
		{realdocs.OplogDrop, nil, changeevent.Event{Op: changeevent.Drop}},
		{realdocs.OplogDrop, nil, changeevent.Event{Op: changeevent.Drop}},
		{realdocs.OplogDropDatabase, bson.D{{Key: "dropDatabase", Value: int32(1)}}, changeevent.Event{Op: changeevent.DropDatabase}},
	}

	got := entriesAfter(t, client, start)
	if len(got) != len(wants) {
		for _, e := range got {
			t.Logf("logged: %s", e)
		}
		t.Fatalf("the oplog holds %d entries after the DDL, want %d", len(got), len(wants))
	}
	uis := map[string]primitive.Binary{} // what each entry's ui says a collection's UUID is
	for i, w := range wants {
		entry := withoutID(got[i])
		if w.real != realdocs.OplogInsert {
			// Command entries: MongoDB's fields in MongoDB's order (inserts keep the server's format).
			if gotKeys, wantKeys := keys(t, entry), keys(t, parseExtJSON(t, w.real)); !slices.Equal(gotKeys, wantKeys) {
				t.Errorf("entry %d has fields %v, the real server's %v: %s", i, gotKeys, wantKeys, entry)
			}
			if op, _ := entry.Lookup("op").StringValueOK(); op != "c" {
				t.Errorf("entry %d: op %q, want \"c\"", i, op)
			}
			if s, _ := entry.Lookup("ns").StringValueOK(); s != "shop.$cmd" {
				t.Errorf("entry %d: ns %q, want shop.$cmd", i, s)
			}
		}
		checkCommonFields(t, i, entry)
		if w.o != nil {
			if wantO, _ := bson.Marshal(w.o); !slices.Equal([]byte(entry.Lookup("o").Document()), wantO) {
				t.Errorf("entry %d: o is %s, want %s", i, entry.Lookup("o"), bson.Raw(wantO))
			}
		}
		events, err := changeevent.FromOplog(entry)
		if err != nil || len(events) != 1 {
			t.Fatalf("entry %d: fleetsync reads %v (%v) from %s", i, events, err, entry)
		}
		ev := events[0]
		if ev.Op != w.event.Op || ev.DropTarget != w.event.DropTarget || (w.event.IndexNames != nil && !slices.Equal(ev.IndexNames, w.event.IndexNames)) {
			t.Errorf("entry %d: fleetsync reads %+v, want op %s", i, ev, w.event.Op)
		}
		if ev.Op != changeevent.DropDatabase {
			sub, data, ok := entry.Lookup("ui").BinaryOK()
			if !ok || sub != bsontype.BinaryUUID || len(data) != 16 {
				t.Fatalf("entry %d: ui %s, want a UUID (binary subtype 4)", i, entry.Lookup("ui"))
			}
			uis[fmt.Sprintf("%d:%s", i, ev.NS)] = primitive.Binary{Subtype: sub, Data: data}
		} else if _, found := entry.LookupErr("ui"); found == nil {
			t.Errorf("entry %d: dropDatabase has a ui, MongoDB's has none", i)
		}
	}

	// The UUIDs: one per collection's life, kept by a rename, new for a re-created collection;
	// dropTarget names the replaced collection's.
	ui := func(i int, coll string) primitive.Binary { return uis[fmt.Sprintf("%d:shop.%s", i, coll)] }
	same := func(what string, a, b primitive.Binary) {
		t.Helper()
		if !a.Equal(b) || len(a.Data) == 0 {
			t.Errorf("%s: %x and %x differ", what, a.Data, b.Data)
		}
	}
	same("orders: create and createIndexes", ui(0, "orders"), ui(1, "orders"))
	same("orders: create and dropIndexes", ui(0, "orders"), ui(4, "orders"))
	same("orders: create and its rename", ui(0, "orders"), ui(5, "orders"))
	same("orders_2023: the rename onto returns", ui(0, "orders"), ui(6, "orders_2023"))
	same("returns: create and insert", ui(2, "returns"), ui(3, "returns"))
	if _, target, ok := withoutID(got[6]).Lookup("o", "dropTarget").BinaryOK(); !ok || !slices.Equal(target, ui(2, "returns").Data) {
		t.Errorf("the rename onto returns has dropTarget %s, want returns' UUID %x", withoutID(got[6]).Lookup("o"), ui(2, "returns").Data)
	}
	same("carts: create, insert, drop", ui(7, "carts"), ui(8, "carts"))
	same("carts: create and drop", ui(7, "carts"), ui(9, "carts"))
	if ui(7, "carts").Equal(ui(10, "carts")) {
		t.Errorf("carts created again kept its old UUID %x", ui(7, "carts").Data)
	}
	same("carts created again: create and insert", ui(10, "carts"), ui(11, "carts"))
}

// listCollections reports each collection's UUID as MongoDB does (workaround
// mongoJavaServerListsNoUUIDs), the ui of its oplog entries (mongoJavaServerLogsOneUuid): the same
// for the collection's life, kept by a rename within its database, new for a collection created
// again under an old name. A server without an oplog reports them too.
func TestSandboxListsCollectionUUIDsMatchingTheOplog(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	db := client.Database("crm")
	for _, c := range []string{"people", "leads"} {
		if _, err := db.Collection(c).InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	listed := collectionUUIDs(t, db)
	if len(listed) != 2 {
		t.Fatalf("listCollections: %v", listed)
	}
	if listed["people"].Equal(listed["leads"]) {
		t.Fatalf("two collections have the same UUID %x", listed["people"].Data)
	}
	for c, uuid := range listed {
		if logged := loggedUI(t, client, "i", "crm."+c); !logged.Equal(uuid) {
			t.Errorf("crm.%s: listed UUID %x, its insert's ui %x", c, uuid.Data, logged.Data)
		}
	}
	if again := collectionUUIDs(t, db); !again["people"].Equal(listed["people"]) {
		t.Errorf("crm.people's UUID changed from %x to %x without any DDL", listed["people"].Data, again["people"].Data)
	}

	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "renameCollection", Value: "crm.people"}, {Key: "to", Value: "crm.contacts"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("contacts").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "x", Value: 1}}}}); err != nil {
		t.Fatal(err)
	}
	renamed := collectionUUIDs(t, db)
	if !renamed["contacts"].Equal(listed["people"]) {
		t.Errorf("crm.people renamed to crm.contacts: UUID %x, was %x", renamed["contacts"].Data, listed["people"].Data)
	}
	if logged := loggedUI(t, client, "u", "crm.contacts"); !logged.Equal(listed["people"]) {
		t.Errorf("an update of the renamed collection has ui %x, want %x", logged.Data, listed["people"].Data)
	}

	if err := db.Collection("leads").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("leads").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if again := collectionUUIDs(t, db); again["leads"].Equal(listed["leads"]) || len(again["leads"].Data) != 16 {
		t.Errorf("crm.leads created again has UUID %x, the dropped one had %x", again["leads"].Data, listed["leads"].Data)
	}

	plain := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("crm")
	if _, err := plain.Collection("people").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	if u := collectionUUIDs(t, plain)["people"]; len(u.Data) != 16 {
		t.Errorf("a server without an oplog lists no UUID for crm.people")
	}
}

// DDL entries take their place in the oplog like writes (mongoJavaServerOplogHoles): under
// concurrent writers that create collections implicitly and build indexes, natural order is ts
// order, and each collection's create comes before its first write and its indexes.
func TestSandboxOplogOrdersDDLWithWrites(t *testing.T) {
	ctx := context.Background()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, true))
	const writers, each = 6, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c := client.Database("d").Collection(fmt.Sprintf("w%d_%d", w, i%8))
				if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "k", Value: i}}); err != nil {
					t.Error(err)
					return
				}
				if i < 8 { // each collection gets its index once, right after its create
					if _, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	var last primitive.Timestamp
	created := map[string]bool{}
	creates, indexes := 0, 0
	for i, e := range entriesAfter(t, client, primitive.Timestamp{}) {
		tt, ti := e.Lookup("ts").Timestamp()
		ts := primitive.Timestamp{T: tt, I: ti}
		if !last.Before(ts) {
			t.Fatalf("entry %d has ts %v after %v", i, ts, last)
		}
		last = ts
		events, err := changeevent.FromOplog(e)
		if err != nil || len(events) != 1 {
			t.Fatalf("entry %d: %v, %v", i, events, err)
		}
		ev := events[0]
		switch ev.Op {
		case changeevent.Create:
			created[ev.NS.String()] = true
			creates++
		case changeevent.CreateIndexes:
			indexes++
			fallthrough
		default:
			if !created[ev.NS.String()] {
				t.Fatalf("entry %d (%s on %s) comes before the collection's create", i, ev.Op, ev.NS)
			}
		}
	}
	if creates != writers*8 || indexes != writers*8 {
		t.Fatalf("%d creates and %d createIndexes logged, want %d of each", creates, indexes, writers*8)
	}
}

// lastTS is the ts of the oplog's newest entry (zero when it has none).
func lastTS(t *testing.T, client *mongo.Client) primitive.Timestamp {
	t.Helper()
	raw, err := client.Database("local").Collection("oplog.rs").FindOne(context.Background(), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err == mongo.ErrNoDocuments {
		return primitive.Timestamp{}
	}
	if err != nil {
		t.Fatal(err)
	}
	tt, ti := raw.Lookup("ts").Timestamp()
	return primitive.Timestamp{T: tt, I: ti}
}

// entriesAfter returns the oplog's entries after ts, in natural order.
func entriesAfter(t *testing.T, client *mongo.Client, ts primitive.Timestamp) []bson.Raw {
	t.Helper()
	ctx := context.Background()
	cur, err := client.Database("local").Collection("oplog.rs").Find(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$gt", Value: ts}}}})
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCommonFields checks the fields every MongoDB oplog entry has: ts, t, v, wall.
func checkCommonFields(t *testing.T, i int, entry bson.Raw) {
	t.Helper()
	if _, _, ok := entry.Lookup("ts").TimestampOK(); !ok {
		t.Errorf("entry %d: ts %s, want a timestamp", i, entry.Lookup("ts"))
	}
	if v, ok := entry.Lookup("t").Int64OK(); !ok || v != 1 {
		t.Errorf("entry %d: t %s, want int64 1", i, entry.Lookup("t"))
	}
	if v, ok := entry.Lookup("v").Int64OK(); !ok || v != 2 {
		t.Errorf("entry %d: v %s, want int64 2", i, entry.Lookup("v"))
	}
	if _, ok := entry.Lookup("wall").DateTimeOK(); !ok {
		t.Errorf("entry %d: wall %s, want a date", i, entry.Lookup("wall"))
	}
}

// withoutID drops the _id the sandbox gives every oplog entry.
func withoutID(entry bson.Raw) bson.Raw {
	var d bson.D
	_ = bson.Unmarshal(entry, &d)
	d = slices.DeleteFunc(d, func(e bson.E) bool { return e.Key == "_id" })
	out, _ := bson.Marshal(d)
	return out
}

func keys(t *testing.T, doc bson.Raw) []string {
	t.Helper()
	elems, err := doc.Elements()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = e.Key()
	}
	return out
}

func parseExtJSON(t *testing.T, s string) bson.Raw {
	t.Helper()
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// collectionUUIDs lists db's collections' info.uuid by name, each checked to be a UUID.
func collectionUUIDs(t *testing.T, db *mongo.Database) map[string]primitive.Binary {
	t.Helper()
	cur, err := db.ListCollections(context.Background(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]primitive.Binary{}
	for cur.Next(context.Background()) {
		name := cur.Current.Lookup("name").StringValue()
		if ro, ok := cur.Current.Lookup("info", "readOnly").BooleanOK(); !ok || ro {
			t.Errorf("%s: info %s, want readOnly: false", name, cur.Current.Lookup("info"))
		}
		sub, data, ok := cur.Current.Lookup("info", "uuid").BinaryOK()
		if !ok || sub != bsontype.BinaryUUID || len(data) != 16 {
			t.Errorf("%s: info %s, want a uuid (binary subtype 4)", name, cur.Current.Lookup("info"))
		}
		out[name] = primitive.Binary{Subtype: sub, Data: data}
	}
	return out
}

// loggedUI is the ui of the latest oplog entry with op on ns.
func loggedUI(t *testing.T, client *mongo.Client, op, ns string) primitive.Binary {
	t.Helper()
	raw, err := client.Database("local").Collection("oplog.rs").FindOne(context.Background(),
		bson.D{{Key: "op", Value: op}, {Key: "ns", Value: ns}}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err != nil {
		t.Fatalf("no %s entry for %s: %v", op, ns, err)
	}
	sub, data, ok := raw.Lookup("ui").BinaryOK()
	if !ok {
		t.Fatalf("the %s entry for %s has no ui: %s", op, ns, raw)
	}
	return primitive.Binary{Subtype: sub, Data: data}
}
