package seed

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

const (
	// maxDocsPerCollection keeps int32 _ids (document index + 1) inside the int32 range.
	maxDocsPerCollection = math.MaxInt32 - 1
	// typicalDocBytes sizes a batch's buffer so that most batches need one or two allocations.
	typicalDocBytes = 1500

	// Document padding (notes, descriptions, payloads) follows a log-normal distribution: most
	// documents stay around 0.5-2 KB and about 0.4% get more than 7 KB of padding. The floor keeps the
	// smallest documents (a mixed-collection scalar) around 200 B; the cap leaves room for the largest
	// template body (an order with twelve line items, under 2.5 KB) below 16 KB.
	minPaddingBytes    = 160
	medianPaddingBytes = 500
	paddingSpread      = 1.0 // standard deviation of ln(padding bytes)
	maxPaddingBytes    = 13 * 1024

	genericBinarySubtype = 0x00
	uuidBinarySubtype    = 0x04

	// objectIDsPerSecond is the insert rate implied by generated ObjectIds: document i was created
	// i/objectIDsPerSecond seconds after objectIDEpoch.
	objectIDsPerSecond = 16

	millisPerDay = 24 * 60 * 60 * 1000

	// Decimal128 keeps a biased exponent above the coefficient's top 49 bits in the high word.
	decimal128ExponentBias  = 6176
	decimal128ExponentShift = 49
)

var (
	// baseTime anchors every generated date; time.Now() would make the data differ between runs.
	baseTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	// objectIDEpoch is the creation time of document 0 in ObjectId-keyed collections.
	objectIDEpoch = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	// ttlFloor is the earliest expiresAt: far enough ahead that a real TTL monitor never deletes seeded
	// data while a migration is being verified.
	ttlFloor = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Documents streams the documents of c, as planned by opts, to fn in batches of opts.BatchSize. Only one
// batch is in memory at a time, so any Docs can be generated. Each batch is freshly allocated: fn may keep
// it. c must be one of Plan(opts); c.Docs documents are produced, and a smaller c.Docs yields a prefix of
// the same sequence. Errors returned by fn stop the stream and are returned wrapped with the namespace.
func Documents(opts Options, c Collection, fn func(batch []bson.Raw) error) error {
	plan := Plan(opts)
	index := slices.IndexFunc(plan, func(p Collection) bool { return p.DB == c.DB && p.Name == c.Name })
	if index < 0 {
		return fmt.Errorf("seed %s.%s: not one of the %d collections planned by these options", c.DB, c.Name, len(plan))
	}
	if err := generate(opts, plan, index, c.Docs, fn); err != nil {
		return fmt.Errorf("seed %s.%s: %w", c.DB, c.Name, err)
	}
	return nil
}

// generate produces the first n documents of plan[index]; errors carry no namespace (callers add it).
func generate(opts Options, plan []Collection, index, n int, fn func(batch []bson.Raw) error) error {
	if n > maxDocsPerCollection {
		return fmt.Errorf("%d documents is more than the %d one collection can hold with int32 ids", n, maxDocsPerCollection)
	}
	t := &templates[index%len(templates)]
	g := newGenerator(opts.Seed, plan, index)
	size := opts.batchSize()
	for from := 0; from < n; from += size {
		batch, err := g.batch(t, from, min(from+size, n))
		if err != nil {
			return err
		}
		if err := fn(batch); err != nil {
			return err
		}
	}
	return nil
}

// generator produces one collection's documents. It owns that collection's RNG, so generators never
// share state: output does not depend on goroutine scheduling or on which collections run first.
type generator struct {
	r    *rand.Rand
	salt uint64    // first RNG draw: ObjectId "process" bytes and counter start, UUID offset
	ref  reference // the collection this one's foreign keys point at, if any
}

// reference lets orders point at real customers and events at real accounts, so the demo can join them.
type reference struct {
	docs int
	salt uint64
}

func newGenerator(seed int64, plan []Collection, index int) *generator {
	r := collectionRNG(seed, index)
	g := &generator{r: r, salt: r.Uint64()}
	if t := &templates[index%len(templates)]; t.ref != noRef {
		// The referenced template sits earlier in the same round, so it exists and has at least as
		// many documents (the remainder goes to the first collections).
		refIndex := index - index%len(templates) + t.ref
		g.ref = reference{docs: plan[refIndex].Docs, salt: collectionRNG(seed, refIndex).Uint64()}
	}
	return g
}

// collectionRNG derives a collection's RNG from the seed and its plan position alone. Both inputs are
// mixed so that neighbouring seeds or positions do not start from neighbouring PCG states.
func collectionRNG(seed int64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(mix64(uint64(seed)), mix64(uint64(index)+1)))
}

// mix64 is the SplitMix64 finaliser, a bijection that scatters nearby inputs.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// batch encodes documents [from, to) into one buffer. Each document is a capacity-limited slice of it,
// so appending to one cannot overwrite the next; the buffer is never reused, so the batch may be kept.
func (g *generator) batch(t *template, from, to int) ([]bson.Raw, error) {
	batch := make([]bson.Raw, 0, to-from)
	buf := make([]byte, 0, (to-from)*typicalDocBytes)
	for i := from; i < to; i++ {
		start := len(buf)
		var err error
		if buf, err = bson.MarshalAppend(buf, t.build(g, i)); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		batch = append(batch, bson.Raw(buf[start:len(buf):len(buf)]))
	}
	return batch, nil
}

// objectID returns the ObjectId of document i in the collection whose salt is given. Like a driver's, it
// is a timestamp, five per-process bytes and a counter: the timestamp advances every objectIDsPerSecond
// documents and the 24-bit counter differs between the documents of one second, so ids never repeat.
func objectID(salt uint64, i int) primitive.ObjectID {
	var id primitive.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(objectIDEpoch.Unix()+int64(i/objectIDsPerSecond)))
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], salt)
	copy(id[4:9], s[:5])
	counter := uint32(salt) + uint32(i)
	id[9], id[10], id[11] = byte(counter>>16), byte(counter>>8), byte(counter)
	return id
}

// objectIDTime is when objectID(salt, i) says the document was created, for createdAt fields that agree.
func objectIDTime(i int) time.Time {
	return objectIDEpoch.Add(time.Duration(i/objectIDsPerSecond) * time.Second)
}

// uuid returns a version-4 UUID for document i. Bytes 0-5 are a bijection of i, which makes the ids
// unique without remembering them; the rest is random.
func (g *generator) uuid(i int) primitive.Binary {
	b := g.randomUUIDBytes()
	p := permute48(uint64(i) + g.salt)
	for k := range 6 {
		b[k] = byte(p >> (40 - 8*k))
	}
	return primitive.Binary{Subtype: uuidBinarySubtype, Data: b}
}

// randomUUID is a version-4 UUID that need not be unique (correlation ids).
func (g *generator) randomUUID() primitive.Binary {
	return primitive.Binary{Subtype: uuidBinarySubtype, Data: g.randomUUIDBytes()}
}

func (g *generator) randomUUIDBytes() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[0:8], g.r.Uint64())
	binary.BigEndian.PutUint64(b[8:16], g.r.Uint64())
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return b
}

// permute48 is a bijection on 48-bit integers: multiplying by an odd constant and xor-shifting right are
// each invertible modulo 2^48.
func permute48(x uint64) uint64 {
	const mask48 = 1<<48 - 1
	x &= mask48
	x = x * 0x9e3779b97f4b & mask48
	x ^= x >> 23
	x = x * 0xc2b2ae3d27d5 & mask48
	x ^= x >> 25
	return x
}

// money encodes an amount in cents as Decimal128 with two decimal places ("1234.56"), as a ledger
// stores it. It builds the IEEE 754-2008 BID encoding directly, which gives the same bytes as
// primitive.ParseDecimal128 (see the tests) at a fraction of the cost: parsing took a third of the
// generation time of orders.
func money(cents int64) primitive.Decimal128 {
	const centsExponent = -2
	high := uint64(decimal128ExponentBias+centsExponent) << decimal128ExponentShift
	coefficient := uint64(cents)
	if cents < 0 {
		high |= 1 << 63 // sign bit
		coefficient = -coefficient
	}
	return primitive.NewDecimal128(high, coefficient)
}

func pick[T any](g *generator, list []T) T {
	return list[g.r.IntN(len(list))]
}

// between returns an int in [lo, hi].
func (g *generator) between(lo, hi int) int {
	return lo + g.r.IntN(hi-lo+1)
}

func (g *generator) chance(p float64) bool {
	return g.r.Float64() < p
}

// dateBetween returns a millisecond-precision date in [from, to).
func (g *generator) dateBetween(from, to time.Time) primitive.DateTime {
	lo := from.UnixMilli()
	return primitive.DateTime(lo + g.r.Int64N(to.UnixMilli()-lo))
}

// after returns a date up to maxDays after d, e.g. an update after a creation.
func (g *generator) after(d primitive.DateTime, maxDays int) primitive.DateTime {
	return d + primitive.DateTime(g.r.Int64N(int64(maxDays)*millisPerDay))
}

// paddingBytes draws the size of a document's free-form part from the skewed size distribution.
func (g *generator) paddingBytes() int {
	n := medianPaddingBytes * math.Exp(paddingSpread*g.r.NormFloat64())
	return int(min(max(n, minPaddingBytes), maxPaddingBytes))
}

// text returns at most n bytes of space-separated words, a mix of ASCII and multi-byte UTF-8.
func (g *generator) text(n int) string {
	var b strings.Builder
	b.Grow(n)
	for {
		w := pick(g, words)
		if b.Len()+1+len(w) > n {
			return b.String()
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
}

// blob returns n random bytes as generic binary; random bytes do not compress, like real payloads.
func (g *generator) blob(n int) primitive.Binary {
	data := make([]byte, 0, n+8)
	for len(data) < n {
		data = binary.LittleEndian.AppendUint64(data, g.r.Uint64())
	}
	return primitive.Binary{Subtype: genericBinarySubtype, Data: data[:n]}
}

// tags returns 0..maxTags distinct-looking tags; an empty array is a case of its own.
func (g *generator) tags(maxTags int) bson.A {
	tags := make(bson.A, g.r.IntN(maxTags+1))
	for k := range tags {
		tags[k] = pick(g, tagWords)
	}
	return tags
}

// jitter returns a small random offset so that points around one city are not identical.
func (g *generator) jitter(scale float64) float64 {
	return (g.r.Float64()*2 - 1) * scale
}

func (g *generator) address() bson.D {
	c := pick(g, cities)
	return bson.D{
		{Key: "street", Value: fmt.Sprintf("%s %d", pick(g, streets), g.between(1, 250))},
		{Key: "city", Value: c.name},
		{Key: "zip", Value: fmt.Sprintf("%05d", g.r.IntN(100000))},
		{Key: "country", Value: c.country},
		{Key: "geo", Value: bson.D{
			{Key: "type", Value: "Point"},
			{Key: "coordinates", Value: bson.A{c.lng + g.jitter(0.05), c.lat + g.jitter(0.05)}},
		}},
	}
}
