package partverify

import (
	"bytes"
	"context"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
)

// stream is one side's documents in _id order. The document returned stays valid until the next
// call (a driver cursor reuses its buffer); nil with a nil error is the end.
type stream interface {
	next(ctx context.Context) (bson.Raw, error)
}

// cursorStream reads a driver cursor: memory is the cursor's current batch, nothing more.
type cursorStream struct{ cur *mongo.Cursor }

func (c cursorStream) next(ctx context.Context) (bson.Raw, error) {
	if c.cur.Next(ctx) {
		return c.cur.Current, nil
	}
	return nil, c.cur.Err()
}

// side is a stream and its current document (nil at its end). A document is read only when the
// merge asks for it, not when the previous one is consumed: a batch that ends exactly at a driver
// batch's end is checkpointed before the next getMore is sent.
type side struct {
	in   stream
	doc  bson.Raw
	read bool // doc is the current document
}

func (s *side) current(ctx context.Context) (bson.Raw, error) {
	if !s.read {
		doc, err := s.in.next(ctx)
		if err != nil {
			return nil, err
		}
		s.doc, s.read = doc, true
	}
	return s.doc, nil
}

// consume moves past the current document.
func (s *side) consume() { s.read = false }

// merger merge-joins two _id-ordered streams, as MongoDB orders _ids (bsonorder), one _id at a time.
// After each step every _id up to last, on either side, is counted in batch; nothing after it is.
// That is what makes last a checkpoint: a merge started again after last (both sides' ranges
// filtered by _id > last) counts each _id exactly once overall.
type merger struct {
	src, dst side
	batch    Counts
	diffs    []Difference // this batch's recorded differences
	room     int          // differences the document can still take
	last     []byte       // the last _id's value bytes, copied out of the cursors' buffers
	lastType bsontype.Type
}

func newMerger(src, dst stream, room int) *merger {
	return &merger{src: side{in: src}, dst: side{in: dst}, room: room}
}

// step compares the next _id of the merge. It reports false when both sides are exhausted.
//
// Documents are compared by their bytes, as internal/verify does by default: that sees a changed
// value, a changed type (int32 for int64) and a changed field order alike. No content hash is
// computed: here both documents are read over the wire anyway, and comparing bytes costs less than
// hashing them; a hash saves work only when the server computes it and sends the hash instead of
// the documents, which the sandbox cannot do (it lacks $bsonSize and any hashing operator), so that
// is left for a path run against real MongoDB.
func (m *merger) step(ctx context.Context) (bool, error) {
	s, err := m.src.current(ctx)
	if err != nil {
		return false, err
	}
	d, err := m.dst.current(ctx)
	if err != nil {
		return false, err
	}
	if s == nil && d == nil {
		return false, nil
	}
	order := 0
	switch {
	case d == nil:
		order = -1
	case s == nil:
		order = 1
	default:
		order = bsonorder.Compare(s.Lookup("_id"), d.Lookup("_id"))
	}
	m.batch.Compared++
	switch {
	case order < 0:
		m.batch.Missing++
		m.note(s, KindMissing)
		m.src.consume()
	case order > 0:
		m.batch.Extra++
		m.note(d, KindExtra)
		m.dst.consume()
	default:
		equal := bytes.Equal(s, d)
		if equal {
			m.batch.Equal++
		} else {
			m.batch.Different++
		}
		m.note(s, kindOf(equal))
		m.src.consume()
		m.dst.consume()
	}
	return true, nil
}

func kindOf(equal bool) string {
	if equal {
		return ""
	}
	return KindDifferent
}

// note makes doc's _id the last one compared, and records it as a difference of kind (none when
// kind is "") while the document has room. A difference is what this read saw: while change events
// are still being applied it may be a write the applier has not reached yet, and rechecks (issue 14,
// requirement 2) are to decide whether it is real.
func (m *merger) note(doc bson.Raw, kind string) {
	id := doc.Lookup("_id")
	m.last = append(m.last[:0], id.Value...)
	m.lastType = id.Type
	if kind != "" && m.room > 0 {
		m.room--
		m.diffs = append(m.diffs, Difference{ID: bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)}, Kind: kind})
	}
}

// take returns the batch's progress and starts the next batch.
func (m *merger) take() Progress {
	p := Progress{Counts: m.batch, Differences: m.diffs}
	if m.lastType != 0 {
		p.LastID = bson.RawValue{Type: m.lastType, Value: append([]byte(nil), m.last...)}
	}
	m.batch, m.diffs = Counts{}, nil
	return p
}
