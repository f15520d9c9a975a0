package partition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
)

// DefaultTargetBytes is the partition size Split aims at unless told otherwise: large enough that a
// worker spends its time copying rather than claiming, small enough that a lost lease costs little.
const DefaultTargetBytes = 64 << 20

const (
	// defaultSamplesPerPartition sampled _ids per planned partition keep a partition's size within
	// about a quarter of the target (the error of a sample of n falls like 1/sqrt(n)).
	defaultSamplesPerPartition = 20
	// defaultMaxSamples caps the sample at well under a megabyte of ObjectIds, one $sample reply;
	// beyond a thousand partitions their sizes grow uneven rather than the sample growing.
	defaultMaxSamples = 20000
	// assumedDocBytes stands in for the average document size when only the document count is known
	// (estimatedDocumentCount), so a large collection is still split rather than copied by one worker.
	assumedDocBytes = 1 << 10
	// sampleScanFraction is the share of a collection from which MongoDB stops answering $sample with
	// random reads and instead sorts the whole collection randomly (the $sample documentation's 5%).
	sampleScanFraction = 0.05
)

// Estimate is a collection's size as the server reports it; it may be stale or approximate.
type Estimate struct {
	Docs  int64
	Bytes int64 // uncompressed BSON bytes; 0 when the server did not say
}

// SplitOptions tune Split; the zero value gives the defaults.
type SplitOptions struct {
	TargetBytes         int64 // aim for partitions of about this many bytes; <= 0: DefaultTargetBytes
	SamplesPerPartition int   // sampled _ids per planned partition; <= 0: 20
	MaxSamples          int   // cap on the sample size; <= 0: 20000
}

func (o SplitOptions) targetBytes() int64 {
	if o.TargetBytes <= 0 {
		return DefaultTargetBytes
	}
	return o.TargetBytes
}

func (o SplitOptions) samplesPerPartition() int64 {
	if o.SamplesPerPartition <= 0 {
		return defaultSamplesPerPartition
	}
	return int64(o.SamplesPerPartition)
}

func (o SplitOptions) maxSamples() int64 {
	if o.MaxSamples <= 0 {
		return defaultMaxSamples
	}
	return int64(o.MaxSamples)
}

// EstimateSize reads the collection's document count and data size: the collStats command (the
// sandbox, MongoDB up to 7.x), else the $collStats stage's storageStats (newer servers, summed over
// shards), else estimatedDocumentCount with Bytes 0 (a user allowed neither). Errors name the
// namespace.
func EstimateSize(ctx context.Context, coll *mongo.Collection) (Estimate, error) {
	ns := namespaceOf(coll)
	est, errCommand := collStatsCommand(ctx, coll)
	if errCommand == nil {
		return est, nil
	}
	if ctx.Err() != nil {
		return Estimate{}, fmt.Errorf("estimate the size of %s: %w", ns, errCommand)
	}
	est, errStage := collStatsStage(ctx, coll)
	if errStage == nil {
		return est, nil
	}
	if ctx.Err() != nil {
		return Estimate{}, fmt.Errorf("estimate the size of %s: %w", ns, errStage)
	}
	docs, errCount := coll.EstimatedDocumentCount(ctx)
	if errCount == nil {
		return Estimate{Docs: docs}, nil
	}
	return Estimate{}, fmt.Errorf("estimate the size of %s: collStats: %v; $collStats: %v; estimatedDocumentCount: %w",
		ns, errCommand, errStage, errCount)
}

func collStatsCommand(ctx context.Context, coll *mongo.Collection) (Estimate, error) {
	var reply bson.Raw
	cmd := bson.D{{Key: "collStats", Value: coll.Name()}}
	if err := coll.Database().RunCommand(ctx, cmd).Decode(&reply); err != nil {
		return Estimate{}, err
	}
	return readStats(reply)
}

func collStatsStage(ctx context.Context, coll *mongo.Collection) (Estimate, error) {
	pipeline := mongo.Pipeline{{{Key: "$collStats", Value: bson.D{{Key: "storageStats", Value: bson.D{}}}}}}
	cur, err := coll.Aggregate(ctx, pipeline)
	if err != nil {
		return Estimate{}, err
	}
	var replies []struct {
		StorageStats bson.Raw `bson:"storageStats"`
	}
	if err := cur.All(ctx, &replies); err != nil {
		return Estimate{}, err
	}
	if len(replies) == 0 {
		return Estimate{}, errors.New("$collStats returned no storageStats")
	}
	var total Estimate
	for _, r := range replies { // one per shard
		est, err := readStats(r.StorageStats)
		if err != nil {
			return Estimate{}, err
		}
		total.Docs += est.Docs
		total.Bytes += est.Bytes
	}
	return total, nil
}

// readStats takes count and size from collStats output, whichever numeric type the server used.
func readStats(stats bson.Raw) (Estimate, error) {
	docs, ok := stats.Lookup("count").AsInt64OK()
	if !ok {
		return Estimate{}, fmt.Errorf("no count in collection stats %s", stats)
	}
	bytes, _ := stats.Lookup("size").AsInt64OK() // a missing size is an unknown size
	return Estimate{Docs: docs, Bytes: bytes}, nil
}

// Split plans the ranges of coll. A collection whose estimated size is at most the target (or that is
// empty) is one Whole range. Otherwise it samples _ids (with $sample, or from the _id index, see
// sampleIDs), sorts them in MongoDB's order and, inside each type rank, cuts the sorted sample into
// ranges of about TargetBytes each (every sampled _id standing for est.Bytes/len(sample) bytes). The
// first and last range of a rank are open, so the ranges of a sampled rank cover the whole rank. Each
// other rank that an _id can have is probed with one findOne, and a rank found that way gets one
// unbounded range. The result is in _id order; the ranges do not overlap, and together they cover
// every document exactly once.
//
// Documents inserted later with an _id of a rank that did not exist at split time belong to no range;
// the copy need not be a snapshot, and change-event application brings them over.
func Split(ctx context.Context, coll *mongo.Collection, est Estimate, opts SplitOptions) ([]Range, error) {
	target := opts.targetBytes()
	bytes := est.Bytes
	if bytes <= 0 && est.Docs > 0 {
		bytes = est.Docs * assumedDocBytes
	}
	if est.Docs <= 0 || bytes <= target {
		return []Range{{Whole: true}}, nil
	}
	ns := namespaceOf(coll)
	partitions := ceilDiv(bytes, target)
	size := min(partitions*opts.samplesPerPartition(), opts.maxSamples(), est.Docs)
	sample, err := sampleIDs(ctx, coll, size, est.Docs)
	if err != nil {
		return nil, fmt.Errorf("split %s: sample _ids: %w", ns, err)
	}
	if len(sample) == 0 {
		// Emptied since it was measured: one range is as good as any.
		return []Range{{Whole: true}}, nil
	}
	ranges := planRanges(sample, bytes, target)
	sampled := make(map[int]bool)
	for _, r := range ranges {
		sampled[r.Rank] = true
	}
	for _, info := range ranks {
		rank := bsonorder.TypeRank(info.types[0])
		if !info.id || sampled[rank] {
			continue
		}
		found, err := probeRank(ctx, coll, rank)
		if err != nil {
			return nil, fmt.Errorf("split %s: look for %s _ids: %w", ns, info.name, err)
		}
		if found {
			ranges = append(ranges, Range{Rank: rank})
		}
	}
	// Stable: the ranges of one rank are already in order and are bounded by each other.
	slices.SortStableFunc(ranges, func(a, b Range) int { return a.Rank - b.Rank })
	return ranges, nil
}

// sampleIDs returns about size _ids spread over the collection, each standing for an equal share of
// its documents. Only _id leaves the server: the documents may be large.
//
// A sample of at least sampleScanFraction of the documents is read from the _id index instead, every
// docs/size-th _id in order: MongoDB answers such a $sample by reading the whole collection anyway, and
// the _id index is smaller and gives exact quantiles. That scan reads at most size/sampleScanFraction
// _ids. The same scan stands in, whatever it costs, when $sample fails, as it does at random on the
// sandbox server (whose $sample also favours the documents inserted first).
func sampleIDs(ctx context.Context, coll *mongo.Collection, size, docs int64) ([]bson.RawValue, error) {
	if float64(size) >= sampleScanFraction*float64(docs) {
		return scanIDs(ctx, coll, size, docs)
	}
	ids, err := randomIDs(ctx, coll, size)
	if err == nil || ctx.Err() != nil {
		return ids, err
	}
	ids, scanErr := scanIDs(ctx, coll, size, docs)
	if scanErr != nil {
		return nil, fmt.Errorf("$sample: %v; _id scan: %w", err, scanErr)
	}
	return ids, nil
}

// randomIDs returns size random _ids from $sample, which may return one more than once.
func randomIDs(ctx context.Context, coll *mongo.Collection, size int64) ([]bson.RawValue, error) {
	pipeline := mongo.Pipeline{
		{{Key: "$sample", Value: bson.D{{Key: "size", Value: size}}}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
	}
	cur, err := coll.Aggregate(ctx, pipeline)
	if err != nil {
		return nil, err
	}
	var docs []struct {
		ID bson.RawValue `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	ids := make([]bson.RawValue, 0, len(docs))
	for _, d := range docs {
		if present(d.ID) {
			ids = append(ids, d.ID)
		}
	}
	return ids, nil
}

// scanIDs reads every _id in order (a covered scan of the _id index on MongoDB) and keeps every
// docs/size-th, so it holds about size _ids whatever the collection's size.
func scanIDs(ctx context.Context, coll *mongo.Collection, size, docs int64) ([]bson.RawValue, error) {
	step := max(1, docs/size)
	opts := options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}}).
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetCollation(bsonorder.SimpleCollation)
	cur, err := coll.Find(ctx, bson.D{}, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var ids []bson.RawValue
	for i := int64(0); cur.Next(ctx); i++ {
		if i%step != 0 {
			continue
		}
		id, err := cur.Current.LookupErr("_id")
		if err != nil {
			return nil, fmt.Errorf("a document without _id: %w", err)
		}
		// Current's bytes belong to the cursor's batch; the sample outlives it.
		ids = append(ids, bson.RawValue{Type: id.Type, Value: slices.Clone(id.Value)})
	}
	return ids, cur.Err()
}

// planRanges cuts a sample of _ids into ranges of about target bytes. Each sampled _id stands for
// totalBytes/len(sample) bytes. Cuts are sampled values, taken only where the value is greater than
// the previous cut (and than the rank's first sampled value), so repeated samples never make an empty
// or inverted range, and every range holds at least the sampled _id it starts at (the first range: the
// rank's first sampled _id).
func planRanges(sample []bson.RawValue, totalBytes, target int64) []Range {
	sorted := slices.Clone(sample)
	slices.SortFunc(sorted, bsonorder.Compare)
	bytesPerSample := float64(totalBytes) / float64(len(sorted))
	var out []Range
	for start := 0; start < len(sorted); {
		rank := bsonorder.TypeRank(sorted[start].Type)
		end := start + 1
		for end < len(sorted) && bsonorder.TypeRank(sorted[end].Type) == rank {
			end++
		}
		out = append(out, cutRank(sorted[start:end], rank, bytesPerSample, target)...)
		start = end
	}
	return out
}

// cutRank plans the ranges of one rank from its sorted sampled _ids.
func cutRank(ids []bson.RawValue, rank int, bytesPerSample float64, target int64) []Range {
	k := len(ids)
	want := int(math.Ceil(float64(k) * bytesPerSample / float64(target)))
	want = max(1, min(want, k))
	var cuts []bson.RawValue
	last := ids[0]
	for i := 1; i < want; i++ {
		if v := ids[i*k/want]; bsonorder.Compare(v, last) > 0 {
			cuts = append(cuts, v)
			last = v
		}
	}
	out := make([]Range, 0, len(cuts)+1)
	var lower bson.RawValue // the first range is open below
	for _, c := range cuts {
		out = append(out, Range{Rank: rank, Min: lower, Max: c})
		lower = c
	}
	return append(out, Range{Rank: rank, Min: lower}) // the last range is open above
}

// probeRank reports whether coll holds any _id of rank.
func probeRank(ctx context.Context, coll *mongo.Collection, rank int) (bool, error) {
	opts := options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetCollation(bsonorder.SimpleCollation)
	err := coll.FindOne(ctx, Range{Rank: rank}.Filter(bson.RawValue{}), opts).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, mongo.ErrNoDocuments), unknownTypeCode(err):
		return false, nil
	}
	return false, err
}

// unknownTypeCode recognises the sandbox server's refusal of a $type code it does not implement
// (undefined, dbPointer, javascript, codeWithScope). Such a server cannot store values of that type
// either, so none can be there. MongoDB knows every code and never says this.
func unknownTypeCode(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && strings.Contains(err.Error(), "Unknown type: ")
}

func namespaceOf(coll *mongo.Collection) string {
	return coll.Database().Name() + "." + coll.Name()
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
