package partverify

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

// sliceStream serves documents from memory: the merge's logic and cost without a server.
type sliceStream struct {
	docs []bson.Raw
	i    int
}

func (s *sliceStream) next(context.Context) (bson.Raw, error) {
	if s.i == len(s.docs) {
		return nil, nil
	}
	s.i++
	return s.docs[s.i-1], nil
}

func rawDocs(tb testing.TB, docs ...bson.D) []bson.Raw {
	tb.Helper()
	out := make([]bson.Raw, len(docs))
	for i, d := range docs {
		b, err := bson.Marshal(d)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// mergeAll runs a merge to its end, taking a checkpoint's progress every batch _ids.
func mergeAll(t *testing.T, src, dst []bson.Raw, batch, room int) []Progress {
	t.Helper()
	m := newMerger(&sliceStream{docs: src}, &sliceStream{docs: dst}, room)
	var out []Progress
	for {
		more := true
		var err error
		for i := 0; i < batch && more; i++ {
			if more, err = m.step(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, m.take())
		if !more {
			return out
		}
	}
}

// The merge compares in MongoDB's _id order, numbers by value across their BSON types (the
// destination's int64 5 is the source's int32 5, with other bytes), and each checkpoint is the last
// _id of its batch, whichever side it was on.
func TestMergeFollowsMongoDBsOrderAcrossTypes(t *testing.T) {
	src := rawDocs(t,
		bson.D{{Key: "_id", Value: int32(1)}},
		bson.D{{Key: "_id", Value: int32(5)}},
		bson.D{{Key: "_id", Value: int64(256)}},
		bson.D{{Key: "_id", Value: "a"}},
		bson.D{{Key: "_id", Value: "b"}, {Key: "x", Value: 1}},
	)
	dst := rawDocs(t,
		bson.D{{Key: "_id", Value: int32(1)}},
		bson.D{{Key: "_id", Value: int64(5)}},
		bson.D{{Key: "_id", Value: 7.5}},
		bson.D{{Key: "_id", Value: int64(256)}},
		bson.D{{Key: "_id", Value: "b"}, {Key: "x", Value: 2}},
	)
	got := mergeAll(t, src, dst, 2, MaxDifferences)
	var total Counts
	var diffs []string
	var lasts []string
	for _, p := range got {
		total.add(p.Counts)
		lasts = append(lasts, p.LastID.String())
		for _, d := range p.Differences {
			diffs = append(diffs, d.Kind+" "+d.ID.String())
		}
	}
	want := Counts{Compared: 6, Equal: 2, Different: 2, Missing: 1, Extra: 1}
	if total != want {
		t.Errorf("counts %+v, want %+v", total, want)
	}
	if fmt.Sprint(diffs) != `[different {"$numberInt":"5"} extra {"$numberDouble":"7.5"} missing "a" different "b"]` {
		t.Errorf("differences %v", diffs)
	}
	if fmt.Sprint(lasts) != `[{"$numberInt":"5"} {"$numberLong":"256"} "b" "b"]` {
		t.Errorf("checkpoints %v", lasts)
	}
}

// equalDocs is n documents of about 1 KB with int64 _ids.
func equalDocs(n int) []bson.Raw {
	docs := make([]bson.Raw, n)
	for i := range docs {
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(i)}, {Key: "pad", Value: string(make([]byte, 1000))}})
		docs[i] = d
	}
	return docs
}

// mergeEqual merges docs with themselves, taking a checkpoint every DefaultBatchDocs _ids.
func mergeEqual(docs []bson.Raw) {
	m := newMerger(&sliceStream{docs: docs}, &sliceStream{docs: docs}, MaxDifferences)
	for {
		more, _ := m.step(context.Background())
		if !more {
			return
		}
		if m.batch.Compared == DefaultBatchDocs {
			m.take()
		}
	}
}

// Memory is flat: the compare loop allocates per checkpoint (the checkpoint's _id), never per
// document, so what a verifier holds is its cursors' batches whatever the partition's size.
func TestMergeAllocatesPerBatchNotPerDocument(t *testing.T) {
	const n = 20 * DefaultBatchDocs
	docs := equalDocs(n)
	allocs := testing.AllocsPerRun(3, func() { mergeEqual(docs) })
	if allocs > n/DefaultBatchDocs*2+10 {
		t.Fatalf("%.0f allocations to compare %d equal documents, want about one per batch of %d", allocs, n, DefaultBatchDocs)
	}
}

// BenchmarkMergeEqual is the compare loop on equal 1 KB documents from memory, without the wire:
// its time per document and allocations per document (allocs/doc).
func BenchmarkMergeEqual(b *testing.B) {
	const n = 10000
	docs := equalDocs(n)
	b.ReportAllocs()
	for b.Loop() {
		mergeEqual(docs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/doc")
	b.ReportMetric(testing.AllocsPerRun(1, func() { mergeEqual(docs) })/n, "allocs/doc")
}
