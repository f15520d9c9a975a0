package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
)

// seededTargetBytes is small enough that every seeded collection (about 1 to 3.5 MB at 20000
// documents over six) splits into several ranges, and the mixed-_id one into several per type.
const seededTargetBytes = 128 << 10

// The migration's promise rests on this: after splitting every collection of a realistic source, the
// ranges' filters, run on the server, hand out every document exactly once, each range keeps to its
// type, and the ranges come out in _id order without overlapping.
//
// Each collection is split twice. With the default sample (about a sixth of these collections) the
// _ids come from the _id index, in order, so the ranges must also be as even as the target asks. With
// two samples per partition they come from $sample, whose choice on the sandbox is random and biased
// towards early inserts, so only coverage is checked.
func TestSplitCoversSeededCollections(t *testing.T) {
	t.Parallel()
	ctx := splitTestContext(t)
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	opts := seed.Options{Docs: 20000, Collections: 6, Seed: 7}
	stats, err := seed.Seed(ctx, client, opts)
	if err != nil {
		t.Fatal(err)
	}

	var estimatedBytes int64
	for _, c := range seed.Plan(opts) {
		coll := client.Database(c.DB).Collection(c.Name)
		est, err := EstimateSize(ctx, coll)
		if err != nil {
			t.Fatal(err)
		}
		if est.Docs != int64(c.Docs) {
			t.Errorf("%s.%s: estimated %d documents, seeded %d", c.DB, c.Name, est.Docs, c.Docs)
		}
		estimatedBytes += est.Bytes

		ranges, err := Split(ctx, coll, est, SplitOptions{TargetBytes: seededTargetBytes})
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, ranges)
		perRange := checkCoverage(t, ctx, coll, ranges)

		// Each type gets its own whole number of ranges, so there may be a few more than the
		// collection's size alone asks for, never fewer.
		wantRanges := ceilDiv(est.Bytes, seededTargetBytes)
		if n := int64(len(ranges)); n < wantRanges || n > wantRanges+int64(len(ranks)) {
			t.Errorf("%s.%s: %d ranges for %d bytes at %d bytes each, want %d or a few more", c.DB, c.Name, n,
				est.Bytes, seededTargetBytes, wantRanges)
		}
		avgDocBytes := float64(est.Bytes) / float64(est.Docs)
		for i, ids := range perRange {
			// Every range starts at a sampled _id (the first at the rank's first one), so none is empty.
			if len(ids) == 0 {
				t.Errorf("%s.%s: %v is empty", c.DB, c.Name, ranges[i])
			}
			// The _ids came from the _id index in order (every sixth or so): only that step's
			// rounding, never a sample's luck, may push a range past its target.
			if aimed := seededTargetBytes / avgDocBytes; float64(len(ids)) > 1.15*aimed {
				t.Errorf("%s.%s: %v holds %d documents, aiming at %.0f", c.DB, c.Name, ranges[i], len(ids), aimed)
			}
		}

		if c.IDKind == "mixed" {
			perRank := make(map[int]int)
			for _, r := range ranges {
				perRank[r.Rank]++
			}
			// int32/int64/double, string, UUID and ObjectId _ids: four types, each big enough to split.
			for _, typ := range []bsontype.Type{bsontype.Int32, bsontype.String, bsontype.Binary, bsontype.ObjectID} {
				if n := perRank[bsonorder.TypeRank(typ)]; n < 2 {
					t.Errorf("%s.%s: %d ranges of %s _ids, want several: %v", c.DB, c.Name, n, typ, ranges)
				}
			}
		}

		sampled, err := Split(ctx, coll, est, SplitOptions{TargetBytes: seededTargetBytes, SamplesPerPartition: 2})
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, sampled)
		checkCoverage(t, ctx, coll, sampled)
	}
	// collStats' size is the documents' BSON size, which is what the seeder measured.
	if diff := estimatedBytes - stats.Bytes; diff < -stats.Bytes/20 || diff > stats.Bytes/20 {
		t.Errorf("estimated %d bytes in all, the seeder wrote %d", estimatedBytes, stats.Bytes)
	}
}

// A document whose _id type is too rare to be sampled must still be copied: here one bool, one date
// and one MinKey _id among thousands of ObjectIds, with a sample far too small to meet them.
func TestSplitFindsRareTypesByProbing(t *testing.T) {
	t.Parallel()
	ctx := splitTestContext(t)
	coll := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("shop").Collection("rare")
	const objectIDs = 2000
	padding := strings.Repeat("x", 1000)
	docs := make([]any, 0, objectIDs+3)
	for i := range objectIDs {
		id := primitive.NewObjectIDFromTimestamp(time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC))
		docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "padding", Value: padding}})
	}
	rare := []any{true, primitive.NewDateTimeFromTime(time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)), primitive.MinKey{}}
	for _, id := range rare {
		docs = append(docs, bson.D{{Key: "_id", Value: id}, {Key: "padding", Value: padding}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	est, err := EstimateSize(ctx, coll)
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, est Estimate) {
		ranges, err := Split(ctx, coll, est, SplitOptions{TargetBytes: 256 << 10, MaxSamples: 20})
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, ranges)
		checkCoverage(t, ctx, coll, ranges)
		if ranges[0].Whole {
			t.Fatalf("a collection of %d bytes planned as %v", est.Bytes, ranges)
		}
		for _, id := range rare {
			raw := rawOf(t, id)
			var found []Range
			for _, r := range ranges {
				if r.Rank == bsonorder.TypeRank(raw.Type) {
					found = append(found, r)
				}
			}
			if len(found) != 1 || present(found[0].Min) || present(found[0].Max) {
				t.Errorf("_id %v: ranges of its type %v, want one without bounds", raw, found)
			}
		}
	}
	t.Run("collStats", func(t *testing.T) { check(t, est) })
	// A user allowed only estimatedDocumentCount: the size is unknown, and the collection must still
	// be split rather than left to one worker.
	t.Run("count only", func(t *testing.T) { check(t, Estimate{Docs: est.Docs}) })
}

// Small collections are not worth sampling: one Whole range, which the Store and workers handle like
// any other. The same goes for an empty collection and for one that does not exist (yet).
func TestSmallAndEmptyCollectionsAreOneWholeRange(t *testing.T) {
	t.Parallel()
	ctx := splitTestContext(t)
	db := sandboxtest.Connect(t, sandboxtest.Server(t, false)).Database("shop")
	small := db.Collection("small")
	for i := range 10 {
		if _, err := small.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "name", Value: fmt.Sprint("item ", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := small.InsertOne(ctx, bson.D{{Key: "_id", Value: "ten"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCollection(ctx, "empty"); err != nil {
		t.Fatal(err)
	}

	for name, wantDocs := range map[string]int64{"small": 11, "empty": 0, "missing": 0} {
		coll := db.Collection(name)
		est, err := EstimateSize(ctx, coll)
		if err != nil {
			t.Fatal(err)
		}
		if est.Docs != wantDocs || (wantDocs > 0) != (est.Bytes > 0) {
			t.Errorf("%s: estimate %+v, want %d documents", name, est, wantDocs)
		}
		ranges, err := Split(ctx, coll, est, SplitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ranges) != 1 || !ranges[0].Whole {
			t.Errorf("%s: planned %v, want one whole range", name, ranges)
		}
		checkCoverage(t, ctx, coll, ranges)
	}
}

// $sample may return one _id several times, and a skewed collection may be sampled as a few values
// repeated: the plan must still be strictly increasing bounds, never an empty or inverted range.
func TestPlanRangesWithRepeatedSamples(t *testing.T) {
	t.Parallel()
	var sample []bson.RawValue
	for i := range 300 {
		sample = append(sample, rawOf(t, int32(i%3)))    // 0, 1, 2, each 100 times
		sample = append(sample, rawOf(t, int64(i%3)))    // the same numbers as other types
		sample = append(sample, rawOf(t, "only"))        // one string, 300 times
		sample = append(sample, rawOf(t, fmt.Sprint(i))) // 300 distinct strings
	}
	sample = append(sample, rawOf(t, true))
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(sample), func(i, j int) { sample[i], sample[j] = sample[j], sample[i] })

	// Every sample stands for a whole target: the plan wants one range per sample.
	ranges := planRanges(sample, int64(len(sample))*1000, 1000)
	checkPlan(t, ranges)
	perRank := make(map[int]int)
	for _, r := range ranges {
		perRank[r.Rank]++
	}
	number, str := bsonorder.TypeRank(bsontype.Int32), bsonorder.TypeRank(bsontype.String)
	// Three distinct numbers can bound at most three ranges; 301 distinct strings at most 301.
	if perRank[number] != 3 {
		t.Errorf("%d number ranges from 3 distinct numbers, want 3", perRank[number])
	}
	if perRank[str] < 250 || perRank[str] > 301 {
		t.Errorf("%d string ranges from 301 distinct strings, want close to 301", perRank[str])
	}
	if perRank[bsonorder.TypeRank(bsontype.Boolean)] != 1 {
		t.Errorf("%d bool ranges from one sampled bool, want 1", perRank[bsonorder.TypeRank(bsontype.Boolean)])
	}
	// Every range holds at least one sampled _id, so none is empty.
	for _, r := range ranges {
		held := false
		for _, id := range sample {
			held = held || r.Contains(id)
		}
		if !held {
			t.Errorf("%v holds no sampled _id", r)
		}
	}
}

// checkPlan checks what callers rely on without a server: either one Whole range, or ranges sorted by
// rank, each rank's ranges chained bound to bound from open start to open end, bounds of the range's
// own rank and increasing.
func checkPlan(t *testing.T, ranges []Range) {
	t.Helper()
	if len(ranges) == 0 {
		t.Fatal("no ranges")
	}
	for i, r := range ranges {
		if r.Whole {
			if len(ranges) != 1 {
				t.Fatalf("a whole range among others: %v", ranges)
			}
			return
		}
		if info, ok := rankByNumber(r.Rank); !ok || !info.id {
			t.Errorf("range %d: %v is of no _id type", i, r)
		}
		for _, b := range []bson.RawValue{r.Min, r.Max} {
			if present(b) && bsonorder.TypeRank(b.Type) != r.Rank {
				t.Errorf("range %d: %v has a bound of another type", i, r)
			}
		}
		if present(r.Min) && present(r.Max) && bsonorder.Compare(r.Min, r.Max) >= 0 {
			t.Errorf("range %d: %v is empty or inverted", i, r)
		}
		if i == 0 {
			if present(r.Min) {
				t.Errorf("first range %v is not open below", r)
			}
			continue
		}
		prev := ranges[i-1]
		switch {
		case prev.Rank > r.Rank:
			t.Errorf("ranges %d and %d out of order: %v, %v", i-1, i, prev, r)
		case prev.Rank < r.Rank:
			if present(prev.Max) || present(r.Min) {
				t.Errorf("ranges %d and %d leave a gap between types: %v, %v", i-1, i, prev, r)
			}
		default:
			if !present(prev.Max) || !present(r.Min) || bsonorder.Compare(prev.Max, r.Min) != 0 {
				t.Errorf("ranges %d and %d do not meet: %v, %v", i-1, i, prev, r)
			}
		}
	}
	if last := ranges[len(ranges)-1]; present(last.Max) {
		t.Errorf("last range %v is not open above", last)
	}
}

// checkCoverage runs every range's filter on the server and checks that each document of coll comes
// back from exactly one range, which Contains it; it returns the _ids each range returned.
func checkCoverage(t *testing.T, ctx context.Context, coll *mongo.Collection, ranges []Range) [][]bson.RawValue {
	t.Helper()
	all := idsMatching(t, ctx, coll, bson.D{})
	owner := make(map[string]int, len(all))
	for _, id := range all {
		owner[idKey(id)] = -1
	}
	perRange := make([][]bson.RawValue, len(ranges))
	for i, r := range ranges {
		perRange[i] = idsMatching(t, ctx, coll, r.Filter(bson.RawValue{}))
		for _, id := range perRange[i] {
			if !r.Contains(id) {
				t.Errorf("%v returned _id %v, which it does not contain", r, id)
			}
			switch prev, ok := owner[idKey(id)]; {
			case !ok:
				t.Errorf("%v returned _id %v, which the collection does not hold", r, id)
			case prev >= 0:
				t.Errorf("_id %v returned by both %v and %v", id, ranges[prev], r)
			default:
				owner[idKey(id)] = i
			}
		}
	}
	missed := 0
	for _, id := range all {
		if owner[idKey(id)] < 0 {
			if missed++; missed <= 5 {
				t.Errorf("_id %v is in no range of %v", id, ranges)
			}
		}
	}
	if missed > 0 {
		t.Errorf("%d of %d documents in no range", missed, len(all))
	}
	return perRange
}
