package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/internal/verify"
)

// fixture is a source and a destination seeded with the same data, so they start out equal.
type fixture struct {
	src, dst *mongo.Client
	plan     []seed.Collection
}

var fixtureSeed = seed.Options{Docs: 600, Collections: 6, Seed: 7}

func newFixture(t *testing.T) fixture {
	t.Helper()
	pair := sandboxtest.Pair(t)
	f := fixture{src: sandboxtest.Connect(t, pair.Source), dst: sandboxtest.Connect(t, pair.Destination), plan: seed.Plan(fixtureSeed)}
	for _, c := range []*mongo.Client{f.src, f.dst} {
		if _, err := seed.Seed(context.Background(), c, fixtureSeed); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// coll returns the destination collection of the seed template with the given _id kind.
func (f fixture) coll(t *testing.T, client *mongo.Client, idKind string) *mongo.Collection {
	t.Helper()
	for _, c := range f.plan {
		if c.IDKind == idKind {
			return client.Database(c.DB).Collection(c.Name)
		}
	}
	t.Fatalf("no seeded collection with %s ids", idKind)
	return nil
}

// nthDoc returns the n-th document of coll in _id order.
func nthDoc(t *testing.T, coll *mongo.Collection, n int64) bson.D {
	t.Helper()
	var doc bson.D
	err := coll.FindOne(context.Background(), bson.D{}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: 1}}).SetSkip(n)).Decode(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func run(t *testing.T, f fixture, opts verify.Options) *verify.Report {
	t.Helper()
	r, err := verify.Run(context.Background(), f.src, f.dst, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// only returns the report of the one namespace that differs, failing if others differ too.
func only(t *testing.T, r *verify.Report) verify.NamespaceReport {
	t.Helper()
	var diff []verify.NamespaceReport
	for _, n := range r.Namespaces {
		if !n.Equal() {
			diff = append(diff, n)
		}
	}
	if len(diff) != 1 {
		t.Fatalf("want exactly one differing namespace, got %d: %+v", len(diff), diff)
	}
	return diff[0]
}

func TestIdenticalClustersAreEqual(t *testing.T) {
	f := newFixture(t)
	r := run(t, f, verify.Options{})
	if !r.Equal() {
		t.Fatalf("identical clusters reported different: %+v", r.Namespaces)
	}
	if len(r.Namespaces) != 6 {
		t.Fatalf("compared %d namespaces, want 6", len(r.Namespaces))
	}
	if got := r.DocumentsCompared(); got != 2*600 {
		t.Fatalf("compared %d documents, want 1200", got)
	}
}

// Each mutation of the destination is a difference a user must be told about, and the report must
// point at the right namespace, the right kind and the right document.
func TestVerifyCatchesEachKindOfDifference(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		mutate func(t *testing.T, f fixture) (wantID any)
		check  func(t *testing.T, n verify.NamespaceReport, wantID any)
	}{
		{
			name: "missing document",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "objectId")
				doc := nthDoc(t, c, 17)
				if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: doc[0].Value}}); err != nil {
					t.Fatal(err)
				}
				return doc[0].Value
			},
			check: counts(1, 0, 0, verify.KindMissing),
		},
		{
			name: "extra document",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "int64")
				if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(-5)}, {Key: "x", Value: 1}}); err != nil {
					t.Fatal(err)
				}
				return int64(-5)
			},
			check: counts(0, 1, 0, verify.KindExtra),
		},
		{
			name: "changed value",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "string")
				doc := nthDoc(t, c, 3)
				if _, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc[0].Value}}, bson.D{{Key: "$set", Value: bson.D{{Key: doc[1].Key, Value: "changed"}}}}); err != nil {
					t.Fatal(err)
				}
				return doc[0].Value
			},
			check: counts(0, 0, 1, verify.KindDifferent),
		},
		{
			name: "changed type int32 to int64, same value",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "int32")
				doc := nthDoc(t, c, 5)
				doc = append(doc, bson.E{Key: "counter", Value: int32(42)})
				replaceOn(t, f.src, c, doc)
				doc[len(doc)-1].Value = int64(42)
				replaceOn(t, f.dst, c, doc)
				return doc[0].Value
			},
			check: counts(0, 0, 1, verify.KindDifferent),
		},
		{
			name: "changed field order",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "uuid")
				doc := nthDoc(t, c, 9)
				doc[1], doc[2] = doc[2], doc[1]
				replaceOn(t, f.dst, c, doc)
				return doc[0].Value
			},
			check: counts(0, 0, 1, verify.KindDifferent),
		},
		{
			name: "missing document among mixed _id types",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "mixed")
				doc := nthDoc(t, c, 50) // in the middle of the type order, not at an end
				if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: doc[0].Value}}); err != nil {
					t.Fatal(err)
				}
				return doc[0].Value
			},
			check: counts(1, 0, 0, verify.KindMissing),
		},
		{
			name: "missing index",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "string")
				name := firstSecondaryIndex(t, c)
				if _, err := c.Indexes().DropOne(ctx, name); err != nil {
					t.Fatal(err)
				}
				return name
			},
			check: func(t *testing.T, n verify.NamespaceReport, want any) {
				if len(n.IndexDiffs) != 1 || !strings.Contains(n.IndexDiffs[0], want.(string)+" ") || !strings.Contains(n.IndexDiffs[0], "missing on destination") {
					t.Fatalf("index diffs %q, want %s missing on destination", n.IndexDiffs, want)
				}
				if n.Missing+n.Extra+n.Different != 0 {
					t.Fatalf("documents reported different: %+v", n)
				}
			},
		},
		{
			name: "missing collection",
			mutate: func(t *testing.T, f fixture) any {
				c := f.coll(t, f.dst, "objectId")
				if err := c.Drop(ctx); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			check: func(t *testing.T, n verify.NamespaceReport, _ any) {
				if n.Collection != verify.KindMissing || n.Missing != n.SourceDocs || n.SourceDocs == 0 || n.DestinationDocs != 0 {
					t.Fatalf("missing collection reported as %+v", n)
				}
				if len(n.Samples) != 10 {
					t.Fatalf("%d sample ids, want the first 10", len(n.Samples))
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			want := tc.mutate(t, f)
			tc.check(t, only(t, run(t, f, verify.Options{})), want)
		})
	}
}

func TestIgnoreFieldOrderAcceptsReorderedFieldsButNotOtherChanges(t *testing.T) {
	f := newFixture(t)
	c := f.coll(t, f.dst, "objectId")
	doc := nthDoc(t, c, 2)
	reordered := append(bson.D{doc[0]}, reverse(doc[1:])...)
	replaceOn(t, f.dst, c, reordered)
	if r := run(t, f, verify.Options{}); r.Equal() {
		t.Fatal("field order change not reported without IgnoreFieldOrder")
	}
	if r := run(t, f, verify.Options{IgnoreFieldOrder: true}); !r.Equal() {
		t.Fatalf("field order change reported with IgnoreFieldOrder: %+v", only(t, r))
	}
	// A real change stays a change.
	reordered = append(reordered, bson.E{Key: "extra", Value: true})
	replaceOn(t, f.dst, c, reordered)
	if n := only(t, run(t, f, verify.Options{IgnoreFieldOrder: true})); n.Different != 1 {
		t.Fatalf("added field not reported: %+v", n)
	}
}

func TestIncludeLimitsTheComparisonAndRejectsUnknownNamespaces(t *testing.T) {
	f := newFixture(t)
	mixed := f.coll(t, f.dst, "mixed")
	if _, err := mixed.DeleteMany(context.Background(), bson.D{}); err != nil {
		t.Fatal(err)
	}
	other := f.plan[0]
	r := run(t, f, verify.Options{Include: []namespace.Namespace{{DB: other.DB, Coll: other.Name}}})
	if len(r.Namespaces) != 1 || !r.Equal() {
		t.Fatalf("include of an unchanged namespace: %+v", r.Namespaces)
	}
	_, err := verify.Run(context.Background(), f.src, f.dst, verify.Options{Include: []namespace.Namespace{{DB: "nope", Coll: "missing"}}})
	var unknown *verify.UnknownNamespaceError
	if !errors.As(err, &unknown) || unknown.NS.String() != "nope.missing" {
		t.Fatalf("unknown namespace: got %v", err)
	}
}

func TestMetadataAndSystemNamespacesAreNeverCompared(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// admin is left out only because the sandbox server refuses inserts there; catalog skips it by name.
	for _, ns := range []string{namespace.DefaultMetadataDB + ".leases", "config.stuff", "local.things"} {
		n, _ := namespace.Parse(ns)
		if _, err := f.dst.Database(n.DB).Collection(n.Coll).InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if r := run(t, f, verify.Options{}); !r.Equal() || len(r.Namespaces) != 6 {
		t.Fatalf("metadata or system namespaces were compared: %+v", r.Namespaces)
	}
}

func TestJSONReportListsTheFirstTenDifferences(t *testing.T) {
	f := newFixture(t)
	c := f.coll(t, f.dst, "int64")
	if _, err := c.DeleteMany(context.Background(), bson.D{}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(run(t, f, verify.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Equal      bool
		Namespaces []struct {
			Namespace        string
			Missing          int64
			FirstDifferences []struct {
				ID   json.RawMessage `json:"_id"`
				Kind string
			}
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Equal {
		t.Fatal("JSON says equal")
	}
	for _, n := range out.Namespaces {
		if n.Namespace != c.Database().Name()+"."+c.Name() {
			continue
		}
		if n.Missing != 100 || len(n.FirstDifferences) != 10 || n.FirstDifferences[0].Kind != "missing" {
			t.Fatalf("namespace %s: %+v", n.Namespace, n)
		}
		var id int64 // int64 _ids render as plain JSON numbers in relaxed extended JSON
		if err := json.Unmarshal(n.FirstDifferences[0].ID, &id); err != nil {
			t.Fatalf("first _id rendered as %s: %v", n.FirstDifferences[0].ID, err)
		}
		return
	}
	t.Fatalf("namespace %s not in the JSON report", c.Name())
}

func counts(missing, extra, different int64, kind string) func(*testing.T, verify.NamespaceReport, any) {
	return func(t *testing.T, n verify.NamespaceReport, wantID any) {
		t.Helper()
		if n.Missing != missing || n.Extra != extra || n.Different != different {
			t.Fatalf("missing/extra/different = %d/%d/%d, want %d/%d/%d", n.Missing, n.Extra, n.Different, missing, extra, different)
		}
		if len(n.Samples) != 1 || n.Samples[0].Kind != kind {
			t.Fatalf("samples %+v, want one %s", n.Samples, kind)
		}
		_, want, err := bson.MarshalValue(wantID)
		if err != nil {
			t.Fatal(err)
		}
		if string(n.Samples[0].ID.Value) != string(want) {
			t.Fatalf("sample _id %s, want %v", n.Samples[0].ID, wantID)
		}
	}
}

// replaceOn stores doc in place of the document with its _id, on client's copy of c.
//
// Sandbox workaround (mongoJavaServerKeepsFieldOrderOnReplace): mongo-java-server keeps the stored
// field order when a document is replaced, where MongoDB stores the replacement as given, so the test
// deletes and re-inserts to get the exact document it means.
func replaceOn(t *testing.T, client *mongo.Client, c *mongo.Collection, doc bson.D) {
	t.Helper()
	ctx := context.Background()
	coll := client.Database(c.Database().Name()).Collection(c.Name())
	if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: doc[0].Value}}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.InsertOne(ctx, doc); err != nil {
		t.Fatal(err)
	}
}

func firstSecondaryIndex(t *testing.T, c *mongo.Collection) string {
	t.Helper()
	specs, err := c.Indexes().ListSpecifications(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Name != "_id_" {
			return s.Name
		}
	}
	t.Fatalf("%s has no secondary index", c.Name())
	return ""
}

func reverse(d bson.D) bson.D {
	out := make(bson.D, len(d))
	for i, e := range d {
		out[len(d)-1-i] = e
	}
	return out
}
