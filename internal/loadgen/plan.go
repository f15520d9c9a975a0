package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Kind is one kind of write the generator issues.
type Kind uint8

const (
	Insert  Kind = iota // insertOne of a new document
	Set                 // updateOne with $set of a scalar and of nested paths
	Unset               // updateOne with $unset of a field
	Inc                 // updateOne with $inc of a numeric field
	Push                // updateOne with $push onto an array field
	Replace             // replaceOne with a new document under the same _id
	Delete              // deleteOne
	numKinds
)

var kindNames = [numKinds]string{"insert", "set", "unset", "inc", "push", "replace", "delete"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Kinds lists every Kind in the order Stats prints them.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for k := range out {
		out[k] = Kind(k)
	}
	return out
}

// Mix weighs the kinds of writes: a kind is chosen with probability weight/sum. The zero Mix means
// DefaultMix.
type Mix struct {
	Insert, Set, Unset, Inc, Push, Replace, Delete int
}

// DefaultMix writes as much as it deletes, so a collection's size stays about the same however long the
// load runs, and updates, half of all writes, are spread over every update operator.
var DefaultMix = Mix{Insert: 20, Set: 20, Unset: 10, Inc: 10, Push: 10, Replace: 10, Delete: 20}

func (m Mix) weights() [numKinds]int {
	return [numKinds]int{m.Insert, m.Set, m.Unset, m.Inc, m.Push, m.Replace, m.Delete}
}

func (m Mix) validate() error {
	sum := 0
	for k, w := range m.weights() {
		if w < 0 {
			return fmt.Errorf("the %s weight of the mix is %d; weights must be 0 or more", Kind(k), w)
		}
		sum += w
	}
	if sum == 0 {
		return fmt.Errorf("every weight of the mix is 0")
	}
	return nil
}

// Fields the generator owns in the documents it writes. Updates touch only these, or remove fields that
// no unique index covers, so no write can fail on a unique index or on a field of an unexpected type.
const (
	fieldOp      = "lgOp"      // int64: the plan index of the insert or replacement that wrote the document
	fieldStatus  = "lgStatus"  // string: $set as the scalar, the field $unset removes when there is no other
	fieldCounter = "lgCounter" // int64: $inc adds 1..maxIncrement (creating it on a document that lacks it)
	fieldEvents  = "lgEvents"  // array: $push appends, keeping the last eventsKept elements
	fieldMeta    = "lgMeta"    // document: $set writes paths inside it
	fieldNote    = "note"      // string of words, the bulk of a new document
)

// ownFields are the generator's fields that updates rely on; $unset leaves them alone.
var ownFields = []string{fieldOp, fieldCounter, fieldEvents, fieldMeta}

const (
	// poolLimit bounds the _ids remembered per collection. Once full, an insert's _id takes the place
	// of a random one, which stays in the collection but is no longer a target.
	poolLimit = 100_000
	// maxIncrement is the largest $inc.
	maxIncrement = 9
	// eventsKept is $push's $slice: arrays grow to this length and then shift, so long runs do not
	// grow documents without bound.
	eventsKept = 16
	// Note lengths in bytes of a new document: minNoteBytes plus up to noteSpreadBytes.
	minNoteBytes    = 100
	noteSpreadBytes = 900
)

// planEpoch dates the plan: operation i carries planEpoch + i milliseconds. Wall-clock time would
// make the plan differ between runs of the same seed.
var planEpoch = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// target is what the planner knows of one collection when it starts.
type target struct {
	ns           namespace.Namespace
	ids          []bson.RawValue // known _ids, in the server's _id order
	idKinds      []idKind        // kinds to mint new _ids of (never empty)
	nextSeq      int64           // first sequence number no minted _id in the collection uses
	uniqueFields []string        // dotted paths under unique indexes, other than _id
	unsetFields  []string        // top-level fields $unset may remove
}

// op is one planned write.
type op struct {
	index  int64 // position in the plan, from 0
	kind   Kind
	ns     namespace.Namespace
	id     bson.RawValue // the document written, updated, replaced or deleted
	doc    bson.D        // Insert and Replace: the whole new document, _id included
	update bson.D        // Set, Unset, Inc, Push: the update document
}

// planner turns a seed and the collections' starting state into a sequence of writes. It is a pure
// function of its inputs: the same seed, mix and targets give the same ops, byte for byte. It assumes
// every op is applied, in plan order per document: a deleted document is never targeted again and an
// inserted one can be targeted by the very next op.
type planner struct {
	r       *rand.Rand
	seed    int64
	weights [numKinds]int
	total   int
	colls   []*plannedColl
	n       int64 // ops planned so far
}

type plannedColl struct {
	target
	pool pool
}

func newPlanner(seed int64, mix Mix, targets []target) *planner {
	p := &planner{
		r:       rand.New(rand.NewPCG(splitmix(uint64(seed)), splitmix(uint64(seed)^planStream))),
		seed:    seed,
		weights: mix.weights(),
	}
	for _, w := range p.weights {
		p.total += w
	}
	for _, t := range targets {
		c := &plannedColl{target: t, pool: newPool(t.ids)}
		if len(c.idKinds) == 0 {
			c.idKinds = []idKind{idObjectID}
		}
		p.colls = append(p.colls, c)
	}
	return p
}

// planStream separates the planner's PCG stream from other uses of the same seed.
const planStream = 0x6c6f616467656e // "loadgen"

// splitmix is the SplitMix64 finaliser: nearby seeds start far-apart PCG states.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// next plans the next write.
func (p *planner) next() op {
	c := p.colls[p.r.IntN(len(p.colls))]
	kind := p.kind()
	if kind != Insert && c.pool.len() == 0 {
		kind = Insert // nothing to update or delete: grow the collection first
	}
	o := op{index: p.n, kind: kind, ns: c.ns}
	p.n++
	if kind == Insert {
		o.id = p.mint(c)
		o.doc = p.document(c, o, "inserted")
		c.pool.add(o.id, p.r)
		return o
	}
	slot := p.r.IntN(c.pool.len())
	o.id = c.pool.ids[slot]
	switch kind {
	case Set:
		o.update = bson.D{{Key: "$set", Value: bson.D{
			{Key: fieldStatus, Value: pick(p.r, statuses)},
			{Key: fieldMeta + ".touchedOp", Value: o.index},
			{Key: fieldMeta + ".touchedAt", Value: p.date(o.index)},
		}}}
	case Unset:
		field := fieldStatus
		if len(c.unsetFields) > 0 {
			field = pick(p.r, c.unsetFields)
		}
		o.update = bson.D{{Key: "$unset", Value: bson.D{{Key: field, Value: ""}}}}
	case Inc:
		o.update = bson.D{{Key: "$inc", Value: bson.D{{Key: fieldCounter, Value: int64(1 + p.r.IntN(maxIncrement))}}}}
	case Push:
		event := bson.D{{Key: "op", Value: o.index}, {Key: "word", Value: pick(p.r, words)}}
		o.update = bson.D{{Key: "$push", Value: bson.D{{Key: fieldEvents, Value: bson.D{
			{Key: "$each", Value: bson.A{event}},
			{Key: "$slice", Value: -eventsKept},
		}}}}}
	case Replace:
		o.doc = p.document(c, o, "replaced")
	case Delete:
		c.pool.remove(slot)
	}
	return o
}

func (p *planner) kind() Kind {
	x := p.r.IntN(p.total)
	for k, w := range p.weights {
		if x < w {
			return Kind(k)
		}
		x -= w
	}
	panic("unreachable: weights sum to total")
}

// mint returns a new _id for c, of one of its kinds, that no document in c has.
func (p *planner) mint(c *plannedColl) bson.RawValue {
	k := c.idKinds[p.r.IntN(len(c.idKinds))]
	n := c.nextSeq
	c.nextSeq++
	if n > maxSeq(k) {
		// Hundreds of millions of inserts into one collection: fall back to the widest range.
		return mintID(idObjectID, n)
	}
	return mintID(k, n)
}

// document is a whole new document for op o: the generator's own fields, a note of random words, and a
// value for every field under a unique index, derived from the _id so that it is as unique as the _id.
func (p *planner) document(c *plannedColl, o op, status string) bson.D {
	doc := bson.D{
		{Key: "_id", Value: o.id},
		{Key: fieldOp, Value: o.index},
		{Key: fieldStatus, Value: status},
		{Key: fieldCounter, Value: int64(0)},
		{Key: fieldEvents, Value: bson.A{}},
		{Key: fieldMeta, Value: bson.D{
			{Key: "by", Value: "fleetsync load"},
			{Key: "seed", Value: p.seed},
			{Key: "at", Value: p.date(o.index)},
		}},
		{Key: fieldNote, Value: p.text(minNoteBytes + p.r.IntN(noteSpreadBytes))},
	}
	for _, path := range c.uniqueFields {
		doc = setPath(doc, strings.Split(path, "."), uniqueValue(path, o.id))
	}
	return doc
}

// uniqueValue is the value of a unique-indexed field in a document the generator writes. Seeded and
// real data never start with "lg-"; an address field gets an address in the reserved .invalid domain.
func uniqueValue(path string, id bson.RawValue) string {
	v := "lg-" + idText(id)
	if strings.Contains(strings.ToLower(path), "email") {
		v += "@load.invalid"
	}
	return v
}

// setPath sets a dotted path in d, creating or replacing sub-documents on the way.
func setPath(d bson.D, path []string, v any) bson.D {
	for i := range d {
		if d[i].Key != path[0] {
			continue
		}
		if len(path) == 1 {
			d[i].Value = v
		} else {
			sub, _ := d[i].Value.(bson.D)
			d[i].Value = setPath(sub, path[1:], v)
		}
		return d
	}
	if len(path) == 1 {
		return append(d, bson.E{Key: path[0], Value: v})
	}
	return append(d, bson.E{Key: path[0], Value: setPath(nil, path[1:], v)})
}

func (p *planner) date(index int64) primitive.DateTime {
	return primitive.NewDateTimeFromTime(planEpoch.Add(time.Duration(index) * time.Millisecond))
}

// text returns at most n bytes of space-separated words.
func (p *planner) text(n int) string {
	var b strings.Builder
	for {
		w := pick(p.r, words)
		if b.Len()+1+len(w) > n {
			return b.String()
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
}

func pick[T any](r *rand.Rand, list []T) T {
	return list[r.IntN(len(list))]
}

// pool is the _ids of one collection that writes may target, with O(1) add, remove and random pick.
type pool struct {
	ids   []bson.RawValue
	index map[string]int // idKey -> position in ids
}

func newPool(ids []bson.RawValue) pool {
	p := pool{ids: make([]bson.RawValue, 0, len(ids)), index: make(map[string]int, len(ids))}
	for _, id := range ids {
		if _, dup := p.index[bsonorder.Key(id)]; !dup && len(p.ids) < poolLimit {
			p.index[bsonorder.Key(id)] = len(p.ids)
			p.ids = append(p.ids, id)
		}
	}
	return p
}

func (p *pool) len() int { return len(p.ids) }

func (p *pool) add(id bson.RawValue, r *rand.Rand) {
	if len(p.ids) >= poolLimit {
		p.remove(r.IntN(len(p.ids)))
	}
	p.index[bsonorder.Key(id)] = len(p.ids)
	p.ids = append(p.ids, id)
}

// remove drops the _id at position i by moving the last one into its place.
func (p *pool) remove(i int) {
	last := len(p.ids) - 1
	delete(p.index, bsonorder.Key(p.ids[i]))
	if i != last {
		p.ids[i] = p.ids[last]
		p.index[bsonorder.Key(p.ids[i])] = i
	}
	p.ids[last] = bson.RawValue{}
	p.ids = p.ids[:last]
}

// Vocabulary of the values the generator writes; non-ASCII words make byte and character counts differ.
var (
	statuses = []string{"new", "active", "pending", "on-hold", "shipped", "archived", "geprüft", "完了"}
	words    = []string{
		"order", "delivery", "package", "customer", "invoice", "refund", "warehouse", "shipment", "priority",
		"fragile", "call", "before", "arrival", "door", "gift", "return", "damaged", "signature", "weekend",
		"café", "naïve", "Straße", "über", "façade", "jalapeño", "smørrebrød", "crème", "brûlée",
		"中文", "数据", "迁移", "日本語", "한국어", "Ελληνικά", "русский", "עברית", "العربية", "😀", "🚚", "📦",
	}
)
