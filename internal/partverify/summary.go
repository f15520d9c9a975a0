package partverify

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/partition"
)

// Summary is the fleet verifier's progress in one generation, for /progress.
type Summary struct {
	Generation int64
	// Partitions is every partition of the sync, copied or not; Verified those verified to their end
	// in this generation; Failed those given up on (partition.MaxAttempts failures in a row).
	Partitions, Verified, Failed int64
	Counts                       // summed over the generation's checkpoints
	// Namespaces lists the namespaces with differences, in name order, each with its first
	// differing _ids in _id order.
	Namespaces []NamespaceSummary
}

// NamespaceSummary is one namespace's differences.
type NamespaceSummary struct {
	NS string
	Counts
	First []Difference // at most MaxDifferences
}

// Summary reads the sync's verification in the store's generation. It streams the documents (in _id
// order, which is namespace then partition order) and keeps only the namespaces with differences.
func (s *Store) Summary(ctx context.Context) (Summary, error) {
	sum := Summary{Generation: s.generation}
	var err error
	if sum.Partitions, err = s.partitions.CountDocuments(ctx, bson.D{{Key: "sync", Value: s.syncID}}); err != nil {
		return Summary{}, fmt.Errorf("counting the partitions: %w", err)
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "sync", Value: s.syncID}}, options.Find().
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetProjection(bson.D{{Key: "claims", Value: 0}, {Key: "range", Value: 0}, {Key: "lastId", Value: 0}}))
	if err != nil {
		return Summary{}, fmt.Errorf("reading the verification: %w", err)
	}
	defer cur.Close(context.Background())
	for cur.Next(ctx) {
		var d Doc
		if err := cur.Decode(&d); err != nil {
			return Summary{}, fmt.Errorf("reading the verification: %w", err)
		}
		sum.addDoc(d)
	}
	if err := cur.Err(); err != nil {
		return Summary{}, fmt.Errorf("reading the verification: %w", err)
	}
	return sum, nil
}

// addDoc counts one partition's verification, if it belongs to the summary's generation.
func (sum *Summary) addDoc(d Doc) {
	if d.VerifiedGeneration >= sum.Generation {
		sum.Verified++
	}
	if d.Attempts >= partition.MaxAttempts {
		sum.Failed++
	}
	if d.Generation != sum.Generation {
		return // counts of an earlier pass, started again at the next claim
	}
	sum.Counts.add(d.Counts)
	if d.Counts.Differing() == 0 {
		return
	}
	if n := len(sum.Namespaces); n == 0 || sum.Namespaces[n-1].NS != d.NS {
		sum.Namespaces = append(sum.Namespaces, NamespaceSummary{NS: d.NS})
	}
	ns := &sum.Namespaces[len(sum.Namespaces)-1]
	ns.Counts.add(d.Counts)
	for _, diff := range d.Differences {
		if len(ns.First) < MaxDifferences {
			ns.First = append(ns.First, diff)
		}
	}
}
