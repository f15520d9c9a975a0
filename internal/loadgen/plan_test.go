package loadgen

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// testTargets are three collections as loadTargets would read them: ObjectId ids with a unique email,
// int64 ids with a nested unique path, and mixed ids, one of them left over from an earlier run.
func testTargets() []target {
	var oids, longs, mixed []bson.RawValue
	for i := range 50 {
		oids = append(oids, rawValue(primitive.ObjectID{0x63, 0xb0, 0xcd, 0x00, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0, 0, byte(i)}))
		longs = append(longs, rawValue(int64(5_000_000_000+7*i)))
	}
	mixed = append(mixed, rawValue(int32(1)), rawValue("user-2"), rawValue(3.5), mintID(idUUID, 41))
	return []target{
		{ns: namespace.Namespace{DB: "shop", Coll: "customers"}, ids: oids, idKinds: []idKind{idObjectID},
			uniqueFields: []string{"email"}, unsetFields: []string{fieldStatus, "phone", "notes"}},
		{ns: namespace.Namespace{DB: "shop", Coll: "orders"}, ids: longs, idKinds: []idKind{idInt64},
			uniqueFields: []string{"ref.code"}, unsetFields: []string{fieldStatus, "couponCode"}},
		{ns: namespace.Namespace{DB: "misc", Coll: "mixed"}, ids: mixed, idKinds: []idKind{idInt32, idString, idUUID},
			nextSeq: 42, unsetFields: []string{fieldStatus}},
	}
}

// planned is an op in comparable form.
type planned struct {
	index      int64
	kind       Kind
	ns, id     string
	doc, updat []byte
}

func plan(t *testing.T, seed int64, mix Mix, n int) []planned {
	t.Helper()
	p := newPlanner(seed, mix, testTargets())
	out := make([]planned, n)
	for i := range out {
		o := p.next()
		out[i] = planned{index: o.index, kind: o.kind, ns: o.ns.String(), id: bsonorder.Key(o.id)}
		for _, part := range []struct {
			d   bson.D
			dst *[]byte
		}{{o.doc, &out[i].doc}, {o.update, &out[i].updat}} {
			if part.d == nil {
				continue
			}
			b, err := bson.Marshal(part.d)
			if err != nil {
				t.Fatalf("op %d (%s): %v", i, o.kind, err)
			}
			*part.dst = b
		}
	}
	return out
}

func TestLoadSameSeedPlansTheSameWrites(t *testing.T) {
	a, b := plan(t, 7, DefaultMix, 5000), plan(t, 7, DefaultMix, 5000)
	for i := range a {
		if a[i].index != b[i].index || a[i].kind != b[i].kind || a[i].ns != b[i].ns || a[i].id != b[i].id ||
			!bytes.Equal(a[i].doc, b[i].doc) || !bytes.Equal(a[i].updat, b[i].updat) {
			t.Fatalf("op %d differs between two plans of seed 7: %+v vs %+v", i, a[i], b[i])
		}
	}
	c := plan(t, 8, DefaultMix, 5000)
	same := 0
	for i := range a {
		if a[i].kind == c[i].kind && a[i].id == c[i].id {
			same++
		}
	}
	if same > len(a)/2 {
		t.Fatalf("seeds 7 and 8 plan %d of %d identical writes", same, len(a))
	}
}

// TestPlanIsApplicable replays a plan against a model of the collections: inserts never reuse an _id
// that exists or existed, every other write targets a document that exists, every kind occurs, and new
// documents carry unique values derived from their _id.
func TestLoadPlanIsApplicable(t *testing.T) {
	targets := testTargets()
	live := map[string]bool{}
	for _, tg := range targets {
		for _, id := range tg.ids {
			live[tg.ns.String()+"\x00"+bsonorder.Key(id)] = true
		}
	}
	ever := map[string]bool{}
	for k := range live {
		ever[k] = true
	}
	p := newPlanner(3, DefaultMix, targets)
	var counts Counts
	for range 20_000 {
		o := p.next()
		counts[o.kind]++
		key := o.ns.String() + "\x00" + bsonorder.Key(o.id)
		switch o.kind {
		case Insert:
			if ever[key] {
				t.Fatalf("op %d inserts %s _id %s, which exists or existed", o.index, o.ns, idText(o.id))
			}
			live[key], ever[key] = true, true
		case Delete:
			if !live[key] {
				t.Fatalf("op %d deletes %s _id %s, which does not exist", o.index, o.ns, idText(o.id))
			}
			delete(live, key)
		default:
			if !live[key] {
				t.Fatalf("op %d (%s) targets %s _id %s, which does not exist", o.index, o.kind, o.ns, idText(o.id))
			}
		}
		if o.kind == Insert || o.kind == Replace {
			checkNewDocument(t, o)
		}
	}
	for k, n := range counts {
		if n == 0 {
			t.Errorf("20000 writes and no %s", Kind(k))
		}
	}
}

func checkNewDocument(t *testing.T, o op) {
	t.Helper()
	raw, err := bson.Marshal(o.doc)
	if err != nil {
		t.Fatal(err)
	}
	doc := bson.Raw(raw)
	if got := doc.Lookup("_id"); got.Type != o.id.Type || !bytes.Equal(got.Value, o.id.Value) {
		t.Fatalf("op %d: document _id %v, want %v", o.index, got, o.id)
	}
	switch o.ns.Coll {
	case "customers":
		if want := "lg-" + idText(o.id) + "@load.invalid"; doc.Lookup("email").StringValue() != want {
			t.Fatalf("op %d: email %v, want %q", o.index, doc.Lookup("email"), want)
		}
	case "orders":
		if want := "lg-" + idText(o.id); doc.Lookup("ref", "code").StringValue() != want {
			t.Fatalf("op %d: ref.code %v, want %q", o.index, doc.Lookup("ref", "code"), want)
		}
	}
	if _, ok := kindOf(o.id); !ok {
		t.Fatalf("op %d: new _id %v is of no mintable kind", o.index, o.id)
	}
}

func TestLoadNewIDsKeepTheCollectionsKindsAndContinueEarlierRuns(t *testing.T) {
	p := newPlanner(1, Mix{Insert: 1}, testTargets())
	kinds := map[string]map[idKind]bool{}
	for range 300 {
		o := p.next()
		k, _ := kindOf(o.id)
		if kinds[o.ns.Coll] == nil {
			kinds[o.ns.Coll] = map[idKind]bool{}
		}
		kinds[o.ns.Coll][k] = true
		if n, ok := seqOf(k, o.id); !ok || (o.ns.Coll == "mixed" && n < 42) {
			t.Fatalf("%s: new _id %s has sequence number %d (ok %v); the collection already holds 41", o.ns, idText(o.id), n, ok)
		}
	}
	want := map[string][]idKind{"customers": {idObjectID}, "orders": {idInt64}, "mixed": {idInt32, idString, idUUID}}
	for coll, ks := range want {
		if len(kinds[coll]) != len(ks) {
			t.Errorf("%s got new _ids of kinds %v, want %v", coll, kinds[coll], ks)
		}
		for _, k := range ks {
			if !kinds[coll][k] {
				t.Errorf("%s got no new %s _id", coll, k)
			}
		}
	}
}

func TestLoadMintedIDsDecodeAndStayInTheirRange(t *testing.T) {
	for k := range numIDKinds {
		for _, n := range []int64{0, 1, 41, 1 << 20, maxSeq(k)} {
			id := mintID(k, n)
			if got, ok := kindOf(id); !ok || got != k {
				t.Fatalf("mintID(%s, %d) is of kind %v (ok %v)", k, n, got, ok)
			}
			if got, ok := seqOf(k, id); !ok || got != n {
				t.Fatalf("seqOf(mintID(%s, %d)) = %d, %v", k, n, got, ok)
			}
		}
	}
	// Values from the seed's collections are not read as minted ones.
	for _, c := range []struct {
		k  idKind
		id bson.RawValue
	}{
		{idInt32, rawValue(int32(12))}, {idInt64, rawValue(int64(5_000_000_007))}, {idString, rawValue("user-12")},
		{idString, rawValue("load-12")}, {idObjectID, rawValue(primitive.NewObjectID())},
		{idUUID, rawValue(primitive.Binary{Subtype: 4, Data: bytes.Repeat([]byte{0xab}, 16)})},
	} {
		if n, ok := seqOf(c.k, c.id); ok {
			t.Errorf("seqOf(%s, %s) = %d, want not minted", c.k, idText(c.id), n)
		}
	}
}

func TestLoadAnEmptyCollectionGetsInsertsFirst(t *testing.T) {
	p := newPlanner(1, Mix{Delete: 1}, []target{{ns: namespace.Namespace{DB: "d", Coll: "c"}}})
	for i := range 10 {
		o := p.next()
		if want := []Kind{Insert, Delete}[i%2]; o.kind != want {
			t.Fatalf("op %d is %s, want %s: a delete-only mix on an empty collection alternates", i, o.kind, want)
		}
	}
}

func TestLoadStatsString(t *testing.T) {
	s := Stats{Elapsed: 2e9, Done: Counts{3, 2, 1, 1, 1, 1, 1}, Errors: Counts{Delete: 2}}
	want := "10 ops (5.0/s): insert 3, set 2, unset 1, inc 1, push 1, replace 1, delete 1; errors 2 (delete 2)"
	if s.String() != want {
		t.Fatalf("String() = %q, want %q", s.String(), want)
	}
}
