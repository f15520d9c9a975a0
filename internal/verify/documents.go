package verify

import (
	"bytes"
	"context"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
)

// Read-ahead limits per side of one namespace. Memory per namespace is about
// 2 sides × (prefetchChunks+2) × chunkBytes, whatever the collection size.
const (
	CursorBatchDocs = 500     // driver batch size: bounds the driver's own buffer (≤ 8 MB at 16 KB docs)
	chunkDocs       = 1000    // documents handed from a reader to the merge at once
	chunkBytes      = 1 << 20 // or fewer, once this many bytes are buffered
	prefetchChunks  = 2       // chunks a reader may run ahead of the merge
)

// chunk is a run of consecutive documents in _id order. All documents of a chunk share one buffer, so
// copying them out of the driver's cursor costs one allocation per chunk rather than one per document.
type chunk struct {
	docs []bson.Raw
	err  error
}

// readSorted streams coll in _id order into chunks until the collection ends, an error occurs (sent
// as the last chunk) or ctx is cancelled.
func readSorted(ctx context.Context, coll *mongo.Collection) <-chan chunk {
	out := make(chan chunk, prefetchChunks)
	go func() {
		defer close(out)
		send := func(c chunk) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		cur, err := coll.Find(ctx, bson.D{}, options.Find().
			SetSort(bson.D{{Key: "_id", Value: 1}}).
			SetCollation(bsonorder.SimpleCollation).
			SetBatchSize(CursorBatchDocs))
		if err != nil {
			send(chunk{err: err})
			return
		}
		defer cur.Close(context.Background())
		var buf []byte
		var ends []int
		flush := func() bool {
			docs := make([]bson.Raw, len(ends))
			start := 0
			for i, end := range ends {
				docs[i] = buf[start:end:end]
				start = end
			}
			buf, ends = nil, nil
			return send(chunk{docs: docs})
		}
		for cur.Next(ctx) {
			if buf == nil {
				buf = make([]byte, 0, chunkBytes+len(cur.Current))
			}
			buf = append(buf, cur.Current...)
			ends = append(ends, len(buf))
			if len(ends) >= chunkDocs || len(buf) >= chunkBytes {
				if !flush() {
					return
				}
			}
		}
		if err := cur.Err(); err != nil {
			send(chunk{err: err})
			return
		}
		if len(ends) > 0 {
			flush()
		}
	}()
	return out
}

// stream is the merge's view of one side: the current document and the way to the next.
type stream struct {
	in   <-chan chunk
	docs []bson.Raw
	err  error
	n    int64 // documents consumed
}

// peek returns the current document, or false at the end of the stream or on an error (see err).
func (s *stream) peek() (bson.Raw, bool) {
	for len(s.docs) == 0 {
		if s.err != nil {
			return nil, false
		}
		c, ok := <-s.in
		if !ok {
			return nil, false
		}
		s.docs, s.err = c.docs, c.err
	}
	return s.docs[0], true
}

func (s *stream) next() {
	s.docs = s.docs[1:]
	s.n++
}

// compareDocuments merge-joins both sides by _id into r.
func compareDocuments(ctx context.Context, src, dst *mongo.Collection, opts Options, r *NamespaceReport) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops both readers when the merge returns early
	s := &stream{in: readSorted(ctx, src)}
	d := &stream{in: readSorted(ctx, dst)}
	record := func(doc bson.Raw, kind string) {
		if len(r.Samples) < opts.MaxSamples {
			id := doc.Lookup("_id")
			id.Value = append([]byte(nil), id.Value...) // the chunk's buffer is not kept
			r.Samples = append(r.Samples, Sample{ID: id, Kind: kind})
		}
	}
	for {
		sd, sok := s.peek()
		dd, dok := d.peek()
		if !sok && !dok {
			break
		}
		order := 0
		switch {
		case !dok:
			order = -1
		case !sok:
			order = 1
		default:
			order = bsonorder.Compare(sd.Lookup("_id"), dd.Lookup("_id"))
		}
		switch {
		case order < 0:
			r.Missing++
			record(sd, KindMissing)
			s.next()
		case order > 0:
			r.Extra++
			record(dd, KindExtra)
			d.next()
		default:
			if !sameContent(sd, dd, opts.IgnoreFieldOrder) {
				r.Different++
				record(sd, KindDifferent)
			}
			s.next()
			d.next()
		}
	}
	r.SourceDocs, r.DestinationDocs = s.n, d.n
	if s.err != nil {
		return s.err
	}
	return d.err
}

// sameContent reports whether two documents with equal _id are the same. Without ignoreFieldOrder the
// bytes must be identical: that catches value, type (int32 vs int64) and field-order changes alike.
func sameContent(a, b bson.Raw, ignoreFieldOrder bool) bool {
	if bytes.Equal(a, b) {
		return true
	}
	return ignoreFieldOrder && equalIgnoringFieldOrder(a, b)
}
