package partverify_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/partverify"
	"github.com/fleetsync/fleetsync/partition"
)

// Equal clusters verify equal: three verifiers share the copied partitions of a collection whose
// _ids mix numbers of three types, strings and ObjectIds (split by type, as the partitioner does)
// and of one collection small enough to be one partition of every type, and each partition is
// claimed once and compares each of its documents once.
func TestEqualClustersVerifyEqualEachDocumentComparedOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	const n = 600
	r.seed(t, "shop.items", docsFor(mixedIDs(n)), typedRanges(n)...)
	r.seed(t, "shop.mixed", docsFor(mixedIDs(100)), partition.Range{Whole: true})
	r.copyAll(t)

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			verifyAll(t, r.verifier(fmt.Sprintf("n%d/v0", i), 100, ttl))
		}()
	}
	wg.Wait()

	parts, err := r.partitions.All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	docs := r.docs(t)
	if len(docs) != len(parts) || len(parts) != 7 {
		t.Fatalf("%d verification documents for %d partitions, want 7 of each", len(docs), len(parts))
	}
	for _, p := range parts {
		d := docs[p.ID]
		if d.VerifiedGeneration != 0 || d.Compared != p.DocsCopied || d.Equal != p.DocsCopied || d.Differing() != 0 || len(d.Claims) != 1 {
			t.Errorf("partition %s (%s, %d documents copied): verified in generation %d, %+v, %d claims; "+
				"want verified once, every document compared once and equal", p.ID, p.Range, p.DocsCopied, d.VerifiedGeneration, d.Counts, len(d.Claims))
		}
		if !sameID(d.LastID, p.LastID) {
			t.Errorf("partition %s: verification ended at %s, the copy at %s", p.ID, show(d.LastID), show(p.LastID))
		}
	}
	sum, err := r.store.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Partitions != 7 || sum.Verified != 7 || sum.Compared != 3*(n+100) || sum.Equal != sum.Compared || len(sum.Namespaces) != 0 {
		t.Fatalf("summary %+v; want 7 of 7 partitions verified, %d documents compared and equal, no differences", sum, 3*(n+100))
	}
	if res, err := r.verifier("late/v0", 100, ttl).VerifyOne(context.Background(), nil); res != partverify.NothingToClaim || err != nil {
		t.Fatalf("a verified partition was claimed again: %v, %v", res, err)
	}
}

// Documents corrupted on the destination behind fleetsync's back (changed, retyped, deleted, and
// added within a range) are reported with their namespace and _ids, of every _id type, as
// differences, not as failures of the verifier.
func TestCorruptedDocumentsAreReportedWithTheirIDs(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	const n = 600
	r.seed(t, "shop.items", docsFor(mixedIDs(n)), typedRanges(n)...)
	r.seed(t, "shop.mixed", docsFor(mixedIDs(100)), partition.Range{Whole: true})
	r.copyAll(t)

	items, mixed := r.destination("shop.items"), r.destination("shop.mixed")
	mustUpdate(t, items, bson.D{{Key: "_id", Value: int64(301)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "sku", Value: "changed"}}}})
	mustUpdate(t, items, bson.D{{Key: "_id", Value: "s-0450"}}, bson.D{{Key: "$set", Value: bson.D{{Key: "extra", Value: true}}}})
	mustDelete(t, items, bson.D{{Key: "_id", Value: oid(17)}})
	mustDelete(t, items, bson.D{{Key: "_id", Value: "s-0007"}})
	// The same number as another BSON type: MongoDB's _id order finds it at the same place, the
	// bytes differ.
	mustDelete(t, items, bson.D{{Key: "_id", Value: int32(3)}})
	mustInsert(t, items, bson.D{{Key: "_id", Value: int64(3)}, {Key: "n", Value: 1}})
	mustInsert(t, items, bson.D{{Key: "_id", Value: 250.5}, {Key: "stray", Value: true}})
	mustInsert(t, mixed, bson.D{{Key: "_id", Value: "s-0050x"}, {Key: "stray", Value: true}})
	mustDelete(t, mixed, bson.D{{Key: "_id", Value: float64(98.25)}})

	verifyAll(t, r.verifier("n1/v0", 50, ttl))
	sum, err := r.store.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]partverify.Difference{
		"shop.items": {
			{ID: raw(int32(3)), Kind: partverify.KindDifferent}, // the source's _id; the destination has int64 3
			{ID: raw(250.5), Kind: partverify.KindExtra},
			{ID: raw(int64(301)), Kind: partverify.KindDifferent},
			{ID: raw("s-0007"), Kind: partverify.KindMissing},
			{ID: raw("s-0450"), Kind: partverify.KindDifferent},
			{ID: raw(oid(17)), Kind: partverify.KindMissing},
		},
		"shop.mixed": {
			{ID: raw(float64(98.25)), Kind: partverify.KindMissing},
			{ID: raw("s-0050x"), Kind: partverify.KindExtra},
		},
	}
	if len(sum.Namespaces) != 2 {
		t.Fatalf("summary %+v; want differences in 2 namespaces", sum)
	}
	for _, ns := range sum.Namespaces {
		checkDifferences(t, ns.NS, ns.First, want[ns.NS])
		if ns.Differing() != int64(len(want[ns.NS])) {
			t.Errorf("%s: counts %+v, want %d differences", ns.NS, ns.Counts, len(want[ns.NS]))
		}
	}
	if sum.Verified != 7 || sum.Compared != 3*(n+100)+2 || sum.Equal != 3*(n+100)-6 {
		t.Errorf("summary %+v; want 7 partitions verified, %d _ids compared (2 extra), %d equal", sum.Counts, 3*(n+100)+2, 3*(n+100)-6)
	}
}

func checkDifferences(t *testing.T, ns string, got, want []partverify.Difference) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: differences %v, want %v", ns, describe(got), describe(want))
		return
	}
	for i := range want {
		if !sameID(got[i].ID, want[i].ID) || got[i].Kind != want[i].Kind {
			t.Errorf("%s: differences %v, want %v", ns, describe(got), describe(want))
			return
		}
	}
}

func describe(ds []partverify.Difference) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind+" "+show(d.ID))
	}
	return out
}

// A partition whose destination is wholly wrong keeps its first MaxDifferences _ids, in _id order,
// across checkpoints and claims, and counts them all.
func TestDifferencesKeptAreBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	var ids []any
	for i := range 200 {
		ids = append(ids, int64(i))
	}
	r.seed(t, "shop.items", docsFor(ids), partition.Range{Whole: true})
	r.copyAll(t)
	if _, err := r.destination("shop.items").DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$mod", Value: bson.A{5, 0}}}}}); err != nil {
		t.Fatal(err)
	}
	// Stop after each batch, so that the differences are recorded over many checkpoints and claims.
	stop := make(chan struct{})
	close(stop)
	v := r.verifier("n1/v0", 7, ttl)
	for range 100 {
		res, err := v.VerifyOne(ctx, stop)
		if res == partverify.Verified {
			break
		}
		if res != partverify.HandedBack || err != nil {
			t.Fatalf("VerifyOne: %v, %v", res, err)
		}
	}
	d := r.docs(t)["default/shop.items/000000"]
	var want []partverify.Difference
	for i := range partverify.MaxDifferences {
		want = append(want, partverify.Difference{ID: raw(int64(5 * i)), Kind: partverify.KindMissing})
	}
	checkDifferences(t, "shop.items", d.Differences, want)
	if d.Missing != 40 || d.Equal != 160 || d.Compared != 200 || len(d.Claims) < 20 {
		t.Fatalf("counts %+v over %d claims; want 40 missing and 160 equal of 200, over one claim per batch of 7", d.Counts, len(d.Claims))
	}
}
