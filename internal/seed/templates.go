package seed

import (
	"fmt"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

// Values of Collection.IDKind.
const (
	idObjectID = "objectId"
	idInt32    = "int32"
	idInt64    = "int64"
	idString   = "string"
	idUUID     = "uuid"
	idMixed    = "mixed"
)

const (
	noRef = -1 // template.ref when documents point at no other collection

	// ttlSeconds is the TTL index's expireAfterSeconds. It matters little: expiresAt lies after 2100.
	ttlSeconds = 3600

	// Orders get int64 ids above the int32 range, increasing with gaps like a sequence shared by
	// several writers: id = orderIDBase + i*orderIDStride + [0, orderIDStride).
	orderIDBase   = 5_000_000_000
	orderIDStride = 7
	maxLineItems  = 12

	// productCatalogSize bounds the SKUs that order line items mention.
	productCatalogSize = 5000
	// discontinuedShare is the fraction of products with discontinuedAt, the sparse-indexed field.
	discontinuedShare = 0.10
	// vatPercent is applied to every order's subtotal.
	vatPercent = 19

	// mixedCycle is the period of the mixed collection's id types: 15 slots cycle through the five main
	// types, the 16th is a double, so doubles are present but rare.
	mixedCycle = 16
	// mixedLargeInt64 lifts every other int64 id out of the int32 range without meeting other ids.
	mixedLargeInt64 = 1 << 40
)

// template describes one kind of collection. Collection i of a plan uses templates[i%len(templates)].
type template struct {
	db, name, idKind string
	ref              int // index of the template whose _ids this one's documents point at, or noRef
	indexes          func() []mongo.IndexModel
	build            func(g *generator, i int) bson.D
}

// templates is in priority order: a plan with K collections gets the first K (then repeats).
var templates = [...]template{
	{db: "shop", name: "customers", idKind: idObjectID, ref: noRef, indexes: customerIndexes, build: customerDoc},
	{db: "shop", name: "orders", idKind: idInt64, ref: 0, indexes: orderIndexes, build: orderDoc},
	{db: "misc", name: "mixed_ids", idKind: idMixed, ref: noRef, indexes: noIndexes, build: mixedDoc},
	{db: "shop", name: "products", idKind: idString, ref: noRef, indexes: productIndexes, build: productDoc},
	{db: "ledger", name: "accounts", idKind: idInt32, ref: noRef, indexes: accountIndexes, build: accountDoc},
	{db: "ledger", name: "events", idKind: idUUID, ref: 4, indexes: eventIndexes, build: eventDoc},
}

// Date ranges, all fixed relative to baseTime.
var (
	birthFrom    = time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC) // many birth dates are negative BSON dates
	birthTo      = time.Date(2006, 1, 1, 0, 0, 0, 0, time.UTC)
	historyFrom  = baseTime.AddDate(-3, 0, 0)
	ttlRangeEnds = ttlFloor.AddDate(10, 0, 0)
)

func key(fields ...bson.E) bson.D { return bson.D(fields) }

func customerIndexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: key(bson.E{Key: "email", Value: 1}), Options: options.Index().SetUnique(true)},
		{Keys: key(bson.E{Key: "address.country", Value: 1}, bson.E{Key: "createdAt", Value: -1})},
	}
}

func orderIndexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: key(bson.E{Key: "customerId", Value: 1}, bson.E{Key: "createdAt", Value: -1})},
	}
}

// noIndexes: a collection with only its _id index is a case of its own.
func noIndexes() []mongo.IndexModel { return nil }

func productIndexes() []mongo.IndexModel {
	inStock := bson.D{{Key: "stock", Value: bson.D{{Key: "$gt", Value: 0}}}}
	return []mongo.IndexModel{
		{Keys: key(bson.E{Key: "discontinuedAt", Value: 1}), Options: options.Index().SetSparse(true)},
		{Keys: key(bson.E{Key: "category", Value: 1}, bson.E{Key: "price", Value: 1}),
			Options: options.Index().SetPartialFilterExpression(inStock)},
	}
}

func accountIndexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: key(bson.E{Key: "accountNo", Value: 1}), Options: options.Index().SetUnique(true)},
	}
}

func eventIndexes() []mongo.IndexModel {
	return []mongo.IndexModel{
		{Keys: key(bson.E{Key: "expiresAt", Value: 1}), Options: options.Index().SetExpireAfterSeconds(ttlSeconds)},
		{Keys: key(bson.E{Key: "accountId", Value: 1}, bson.E{Key: "at", Value: -1})},
	}
}

// refIndex picks a document of the referenced collection (0 if it is empty, leaving a dangling reference).
func (g *generator) refIndex() int {
	if g.ref.docs <= 0 {
		return 0
	}
	return g.r.IntN(g.ref.docs)
}

// customerDoc: ObjectId _id, unique email, nested name and address with a GeoJSON point, optional and
// null fields, pre-1970 dates, Decimal128 and a notes string of skewed length.
func customerDoc(g *generator, i int) bson.D {
	first, last := pick(g, firstNames), pick(g, lastNames)
	created := objectIDTime(i).Add(time.Duration(g.r.IntN(1000)) * time.Millisecond)
	d := bson.D{
		{Key: "_id", Value: objectID(g.salt, i)},
		// The index i makes the address unique, which the unique index requires.
		{Key: "email", Value: fmt.Sprintf("%s.%s.%d@%s", first.ascii, last.ascii, i, pick(g, emailDomains))},
		{Key: "name", Value: bson.D{{Key: "first", Value: first.text}, {Key: "last", Value: last.text}}},
	}
	if g.chance(0.8) {
		d = append(d, bson.E{Key: "birthDate", Value: g.dateBetween(birthFrom, birthTo)})
	}
	d = append(d, bson.E{Key: "createdAt", Value: primitive.NewDateTimeFromTime(created)})
	switch r := g.r.IntN(20); {
	case r == 0: // no address at all
	case r == 1:
		d = append(d, bson.E{Key: "address", Value: nil})
	default:
		d = append(d, bson.E{Key: "address", Value: g.address()})
	}
	var phone any // null: unknown phone number
	if g.chance(0.7) {
		phone = fmt.Sprintf("+%d %d %07d", g.between(1, 99), g.between(10, 999), g.r.IntN(10_000_000))
	}
	d = append(d,
		bson.E{Key: "phone", Value: phone},
		bson.E{Key: "tags", Value: g.tags(5)},
		bson.E{Key: "loyaltyPoints", Value: int32(g.r.IntN(50_000))},
		bson.E{Key: "lifetimeValue", Value: money(g.r.Int64N(5_000_000))},
		bson.E{Key: "marketingOptIn", Value: g.chance(0.4)},
	)
	if g.chance(0.6) {
		d = append(d, bson.E{Key: "lastLoginAt", Value: g.after(primitive.NewDateTimeFromTime(created), 400)})
	}
	d = append(d, bson.E{Key: "preferences", Value: bson.D{
		{Key: "language", Value: pick(g, languages)},
		{Key: "currency", Value: pick(g, currencies)},
		{Key: "newsletter", Value: g.chance(0.3)},
	}})
	if g.chance(0.85) {
		d = append(d, bson.E{Key: "notes", Value: g.text(g.paddingBytes())})
	}
	return d
}

// orderDoc: int64 _id, a reference to a customer, an array of line-item sub-documents, Decimal128
// totals that add up, and a coupon that is missing, null or set.
func orderDoc(g *generator, i int) bson.D {
	id := orderIDBase + int64(i)*orderIDStride + g.r.Int64N(orderIDStride)
	created := g.dateBetween(historyFrom, baseTime)
	n := g.between(1, 3)
	if g.chance(0.1) {
		n = g.between(4, maxLineItems)
	}
	items := make(bson.A, n)
	var subtotal int64
	for k := range items {
		item, cents := g.lineItem()
		items[k] = item
		subtotal += cents
	}
	shippingFee := pick(g, []int64{0, 499, 990, 1490})
	tax := subtotal * vatPercent / 100
	status := pick(g, orderStatuses)
	var delivered any // null until delivered
	if status == "delivered" || status == "returned" {
		delivered = g.after(created, 14)
	}
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "customerId", Value: objectID(g.ref.salt, g.refIndex())},
		{Key: "status", Value: status},
		{Key: "createdAt", Value: created},
		{Key: "updatedAt", Value: g.after(created, 30)},
		{Key: "currency", Value: pick(g, currencies)},
		{Key: "items", Value: items},
		{Key: "subtotal", Value: money(subtotal)},
		{Key: "shippingFee", Value: money(shippingFee)},
		{Key: "tax", Value: money(tax)},
		{Key: "total", Value: money(subtotal + shippingFee + tax)},
		{Key: "shipping", Value: bson.D{
			{Key: "method", Value: pick(g, shippingMethods)},
			{Key: "address", Value: g.address()},
			{Key: "deliveredAt", Value: delivered},
		}},
		{Key: "paid", Value: status != "pending" && status != "cancelled"},
		{Key: "weightKg", Value: float64(g.between(50, 30_000)) / 1000},
	}
	switch r := g.r.IntN(10); {
	case r < 7: // most orders have no coupon field at all
	case r == 7:
		d = append(d, bson.E{Key: "couponCode", Value: nil})
	default:
		d = append(d, bson.E{Key: "couponCode", Value: fmt.Sprintf("SAVE%d-%s", g.between(5, 50), pick(g, tagWords))})
	}
	if g.chance(0.7) {
		d = append(d, bson.E{Key: "notes", Value: g.text(g.paddingBytes())})
	}
	return d
}

// lineItem returns one order line and its amount in cents after discount.
func (g *generator) lineItem() (bson.D, int64) {
	qty := g.between(1, 5)
	if g.chance(0.05) {
		qty = g.between(6, 100)
	}
	unit := int64(g.between(99, 49_999))
	line := unit * int64(qty)
	item := bson.D{
		{Key: "sku", Value: sku(g.r.IntN(productCatalogSize))},
		{Key: "name", Value: g.productName()},
		{Key: "qty", Value: int32(qty)},
		{Key: "unitPrice", Value: money(unit)},
	}
	if g.chance(0.3) {
		pct := pick(g, []float64{5, 10, 12.5, 33.3})
		item = append(item, bson.E{Key: "discountPct", Value: pct})
		line -= int64(float64(line) * pct / 100)
	}
	return item, line
}

// sku is product i's _id; its category follows from i, so orders can name products without a lookup.
func sku(i int) string {
	return fmt.Sprintf("%s-%07d", categories[i%len(categories)].code, i)
}

func (g *generator) productName() string {
	name := pick(g, productAdjectives) + " " + pick(g, productNouns)
	if g.chance(0.05) {
		name += " 🎁"
	}
	return name
}

// productDoc: string _id, a sparse discontinuedAt on ~10% of documents, attributes whose values change
// type from one element to the next, a small binary thumbnail and a description of skewed length.
func productDoc(g *generator, i int) bson.D {
	created := g.dateBetween(historyFrom, baseTime)
	var rating any // null: not rated yet
	if g.chance(0.8) {
		rating = float64(g.between(10, 50)) / 10
	}
	stock := int32(0) // out of stock: excluded from the partial index
	if g.chance(0.8) {
		stock = int32(g.r.IntN(10_000))
	}
	d := bson.D{
		{Key: "_id", Value: sku(i)},
		{Key: "name", Value: g.productName()},
		{Key: "category", Value: categories[i%len(categories)].name},
		{Key: "price", Value: money(int64(g.between(99, 199_999)))},
		{Key: "stock", Value: stock},
		{Key: "rating", Value: rating},
		{Key: "weightKg", Value: g.r.Float64() * 25},
		{Key: "dimensionsCm", Value: bson.D{
			{Key: "w", Value: float64(g.between(1, 2000)) / 10},
			{Key: "h", Value: float64(g.between(1, 2000)) / 10},
			{Key: "d", Value: float64(g.between(1, 2000)) / 10},
		}},
		{Key: "attributes", Value: g.attributes()},
		{Key: "tags", Value: g.tags(4)},
		{Key: "createdAt", Value: created},
	}
	if g.chance(discontinuedShare) {
		d = append(d, bson.E{Key: "discontinuedAt", Value: g.after(created, 365)})
	}
	if g.chance(0.5) {
		d = append(d, bson.E{Key: "thumbnail", Value: g.blob(g.between(64, 512))})
	}
	d = append(d, bson.E{Key: "description", Value: g.text(g.paddingBytes())})
	return d
}

// attributes is the "attribute pattern": {k, v} pairs whose v is a string, int32, bool or double.
func (g *generator) attributes() bson.A {
	attrs := make(bson.A, g.r.IntN(5))
	for k := range attrs {
		var v any
		switch g.r.IntN(4) {
		case 0:
			v = pick(g, []string{"red", "blau", "vert", "黑色", "natur"})
		case 1:
			v = int32(g.r.IntN(1000))
		case 2:
			v = g.chance(0.5)
		default:
			v = g.r.Float64() * 100
		}
		attrs[k] = bson.D{{Key: "k", Value: pick(g, []string{"color", "size", "warrantyYears", "waterproof", "power"})}, {Key: "v", Value: v}}
	}
	return attrs
}

// accountDoc: int32 _id, a unique account number, int64 limits, balances as Decimal128 (negative
// too), a closedAt that exists only on closed accounts and an array of balance snapshots.
func accountDoc(g *generator, i int) bson.D {
	first, last := pick(g, firstNames), pick(g, lastNames)
	opened := g.dateBetween(historyFrom, baseTime)
	status := pick(g, accountStatuses)
	owner := bson.D{
		{Key: "name", Value: first.text + " " + last.text},
		{Key: "type", Value: pick(g, []string{"personal", "personal", "business"})},
	}
	if g.chance(0.5) {
		owner = append(owner, bson.E{Key: "email", Value: fmt.Sprintf("%s@%s", last.ascii, pick(g, emailDomains))})
	}
	var creditLimit any // null: no credit line
	if g.chance(0.4) {
		creditLimit = money(int64(g.between(1, 50)) * 100_000)
	}
	d := bson.D{
		{Key: "_id", Value: int32(i + 1)},
		{Key: "accountNo", Value: fmt.Sprintf("ACC-%08d", i+1)},
		{Key: "owner", Value: owner},
		{Key: "currency", Value: pick(g, currencies)},
		{Key: "balance", Value: money(g.r.Int64N(20_000_000) - 2_000_000)},
		{Key: "creditLimit", Value: creditLimit},
		{Key: "status", Value: status},
		{Key: "openedAt", Value: opened},
	}
	if status == "closed" {
		d = append(d, bson.E{Key: "closedAt", Value: g.after(opened, 700)})
	}
	dailyLimit := int64(g.between(1, 100)) * 100_000
	d = append(d,
		bson.E{Key: "flags", Value: bson.D{{Key: "kyc", Value: g.chance(0.9)}, {Key: "overdraft", Value: creditLimit != nil}}},
		bson.E{Key: "limits", Value: bson.D{{Key: "dailyCents", Value: dailyLimit}, {Key: "monthlyCents", Value: dailyLimit * 30}}},
		bson.E{Key: "interestRate", Value: float64(g.between(0, 500)) / 10_000},
		bson.E{Key: "version", Value: int64(g.between(1, 10_000))},
		bson.E{Key: "history", Value: g.balanceHistory(opened)},
	)
	if g.chance(0.6) {
		d = append(d, bson.E{Key: "memo", Value: g.text(g.paddingBytes())})
	}
	return d
}

func (g *generator) balanceHistory(from primitive.DateTime) bson.A {
	history := make(bson.A, g.r.IntN(7))
	at := from
	for k := range history {
		at = g.after(at, 90)
		history[k] = bson.D{{Key: "at", Value: at}, {Key: "balance", Value: money(g.r.Int64N(10_000_000))}}
	}
	return history
}

// eventDoc: UUID _id, a reference to an account, signed Decimal128 amounts, a TTL field far in the
// future, a nullable sub-document and a binary payload of skewed size.
func eventDoc(g *generator, i int) bson.D {
	typ := pick(g, eventTypes)
	cents := g.r.Int64N(500_000) + 1
	if typ == "withdrawal" || typ == "fee" || (typ == "transfer" && g.chance(0.5)) {
		cents = -cents
	}
	d := bson.D{
		{Key: "_id", Value: g.uuid(i)},
		{Key: "accountId", Value: int32(g.refIndex() + 1)},
		{Key: "seq", Value: int64(i + 1)},
		{Key: "type", Value: typ},
		{Key: "amount", Value: money(cents)},
		{Key: "currency", Value: pick(g, currencies)},
		{Key: "at", Value: g.dateBetween(historyFrom, baseTime)},
		{Key: "expiresAt", Value: g.dateBetween(ttlFloor, ttlRangeEnds)},
	}
	if g.chance(0.5) {
		d = append(d, bson.E{Key: "correlationId", Value: g.randomUUID()})
	}
	var meta any // null: origin unknown
	if g.chance(0.9) {
		meta = bson.D{
			{Key: "source", Value: pick(g, eventSources)},
			{Key: "ip", Value: fmt.Sprintf("10.%d.%d.%d", g.r.IntN(256), g.r.IntN(256), g.r.IntN(256))},
			{Key: "userAgent", Value: pick(g, userAgents)},
		}
	}
	return append(d,
		bson.E{Key: "meta", Value: meta},
		bson.E{Key: "payload", Value: g.blob(g.paddingBytes())},
	)
}

// stringIDFormats vary the mixed collection's string ids: a digits-only string (equal to no number,
// since types differ, unless a tool coerces it), ASCII, accented, CJK and emoji prefixes. The prefixes
// differ, so two formats never produce the same string.
var stringIDFormats = []string{"%d", "user-%d", "clé-%d", "键-%d", "🔑-%d"}

// mixedID returns document i's _id and its type name. Every numeric id is i, -i, mixedLargeInt64+i or
// i+0.5 for this document's own i (and i > 0, as slot 0 is an ObjectId), so no two numeric ids are equal
// as numbers, even across int32, int64 and double, which MongoDB compares by value.
func (g *generator) mixedID(i int) (any, string) {
	round, slot := i/mixedCycle, i%mixedCycle
	if slot == mixedCycle-1 {
		if round%2 == 0 {
			return float64(i), "double" // integral: a tool that narrows doubles to ints must not collide
		}
		return float64(i) + 0.5, "double"
	}
	switch slot % 5 {
	case 0:
		return objectID(g.salt, i), idObjectID
	case 1:
		if round%2 == 0 {
			return int32(i), idInt32
		}
		return int32(-i), idInt32
	case 2:
		if round%2 == 0 {
			return int64(i), idInt64 // fits in int32: must stay int64
		}
		return int64(mixedLargeInt64 + i), idInt64
	case 3:
		return fmt.Sprintf(stringIDFormats[round%len(stringIDFormats)], i), idString
	default:
		return g.uuid(i), idUUID
	}
}

// awkwardValues are values that copy or compare code commonly mangles: extreme and negative-zero
// numbers, NaN and infinities, integers a double cannot hold, Decimal128 with significant trailing
// zeros, empty containers, strings that differ only in Unicode normalisation, dates at the edges.
var awkwardValues = []any{
	int32(math.MinInt32),
	int64(math.MaxInt64),
	int64(1<<53 + 1), // not representable as a double
	math.Copysign(0, -1),
	math.Inf(1),
	math.Inf(-1),
	math.NaN(),
	math.SmallestNonzeroFloat64,
	math.MaxFloat64,
	mustDecimal("-0.00"),
	mustDecimal("0.10"),
	mustDecimal("9999999999999999999999999999999999"),
	mustDecimal("-1E+300"),
	"",
	"\u00e9",  // é precomposed (NFC)
	"e\u0301", // é decomposed (NFD): equal on screen, different bytes
	"👩\u200d💻 مرحبا",
	bson.D{},
	bson.A{},
	bson.A{bson.A{int32(1), int64(1), 1.0}, bson.A{}, nil},
	nil,
	true,
	false,
	primitive.DateTime(-1), // 1969-12-31T23:59:59.999Z
	primitive.NewDateTimeFromTime(time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)),
	primitive.Binary{Subtype: genericBinarySubtype, Data: []byte{}},
	bson.D{{Key: "clé", Value: int32(1)}, {Key: "键", Value: "值"}, {Key: "emoji🔑", Value: true}},
	nested(8),
}

func mustDecimal(s string) primitive.Decimal128 {
	d, err := primitive.ParseDecimal128(s)
	if err != nil {
		panic(err)
	}
	return d
}

// nested returns a document nested depth levels deep, each level with a sibling field.
func nested(depth int) bson.D {
	d := bson.D{{Key: "leaf", Value: int32(depth)}}
	for level := range depth {
		d = bson.D{{Key: "level", Value: int32(level)}, {Key: "child", Value: d}}
	}
	return d
}

// mixedDoc: an _id whose BSON type changes from document to document, a "value" field that does the
// same with awkward values, and either a binary blob or a text note as padding.
func mixedDoc(g *generator, i int) bson.D {
	id, kind := g.mixedID(i)
	d := bson.D{
		{Key: "_id", Value: id},
		{Key: "kind", Value: kind},
		{Key: "seq", Value: int32(i)},
		{Key: "value", Value: awkwardValues[i%len(awkwardValues)]},
		{Key: "createdAt", Value: g.dateBetween(historyFrom, baseTime)},
	}
	if i%2 == 0 {
		d = append(d, bson.E{Key: "blob", Value: g.blob(g.paddingBytes())})
	} else {
		d = append(d, bson.E{Key: "note", Value: g.text(g.paddingBytes())})
	}
	return d
}
