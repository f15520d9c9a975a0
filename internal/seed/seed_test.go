package seed

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo"
)

const (
	minDocBytes = 150
	maxDocBytes = 16*1024 + 512
)

// forEachDoc generates every document that opts plans and hands it to fn with its collection.
func forEachDoc(t testing.TB, opts Options, fn func(c Collection, i int, doc bson.Raw)) {
	t.Helper()
	for _, c := range Plan(opts) {
		i := 0
		err := Documents(opts, c, func(batch []bson.Raw) error {
			for _, doc := range batch {
				fn(c, i, doc)
				i++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Documents(%s.%s): %v", c.DB, c.Name, err)
		}
		if i != c.Docs {
			t.Fatalf("%s.%s: got %d documents, planned %d", c.DB, c.Name, i, c.Docs)
		}
	}
}

// collectionHash is the SHA-256 of one collection's document stream.
func collectionHash(opts Options, c Collection) ([sha256.Size]byte, error) {
	h := sha256.New()
	err := Documents(opts, c, func(batch []bson.Raw) error {
		for _, doc := range batch {
			h.Write(doc) // each document starts with its length, so the stream is unambiguous
		}
		return nil
	})
	return [sha256.Size]byte(h.Sum(nil)), err
}

func planHashes(t testing.TB, opts Options) [][sha256.Size]byte {
	t.Helper()
	var hashes [][sha256.Size]byte
	for _, c := range Plan(opts) {
		h, err := collectionHash(opts, c)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	return hashes
}

func TestDocumentsDeterministic(t *testing.T) {
	opts := Options{Docs: 3000, Collections: 8, Seed: 42}
	first := planHashes(t, opts)
	if again := planHashes(t, opts); !slices.Equal(first, again) {
		t.Fatal("same options produced different documents")
	}
	rebatched := opts
	rebatched.BatchSize = 7
	if got := planHashes(t, rebatched); !slices.Equal(first, got) {
		t.Fatal("the batch size changed the documents")
	}
	reseeded := opts
	reseeded.Seed = 43
	other := planHashes(t, reseeded)
	for i, c := range Plan(opts) {
		if first[i] == other[i] {
			t.Errorf("%s.%s: seeds 42 and 43 produced identical documents", c.DB, c.Name)
		}
	}
}

// TestDocumentsIndependentOfScheduling generates the collections concurrently and in reverse order:
// each must still match the sequential result, so no state is shared between collections.
func TestDocumentsIndependentOfScheduling(t *testing.T) {
	opts := Options{Docs: 2400, Collections: 12, Seed: 7, BatchSize: 100}
	want := planHashes(t, opts)
	plan := Plan(opts)
	got := make([][sha256.Size]byte, len(plan))
	errs := make([]error, len(plan))
	var wg sync.WaitGroup
	for i := len(plan) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = collectionHash(opts, plan[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, got) {
		t.Fatal("concurrent generation differs from sequential generation")
	}
}

// TestDocumentsPrefix: asking for fewer documents yields the start of the same sequence.
func TestDocumentsPrefix(t *testing.T) {
	opts := Options{Docs: 600, Seed: 3}
	for _, c := range Plan(opts) {
		full := collect(t, opts, c)
		short := c
		short.Docs = 17
		if got := collect(t, opts, short); !slices.EqualFunc(got, full[:17], slices.Equal) {
			t.Errorf("%s.%s: the first 17 documents differ from a full run", c.DB, c.Name)
		}
	}
}

func collect(t *testing.T, opts Options, c Collection) [][]byte {
	t.Helper()
	var docs [][]byte
	err := Documents(opts, c, func(batch []bson.Raw) error {
		for _, d := range batch {
			docs = append(docs, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func TestPlan(t *testing.T) {
	base := []struct{ db, name, kind string }{
		{"shop", "customers", "objectId"},
		{"shop", "orders", "int64"},
		{"misc", "mixed_ids", "mixed"},
		{"shop", "products", "string"},
		{"ledger", "accounts", "int32"},
		{"ledger", "events", "uuid"},
	}
	for _, docs := range []int{0, 5, 1000, 1003} {
		for k := 1; k <= 13; k++ {
			plan := Plan(Options{Docs: docs, Collections: k})
			if len(plan) != k {
				t.Fatalf("Docs=%d K=%d: %d collections", docs, k, len(plan))
			}
			sum := 0
			for i, c := range plan {
				b := base[i%6]
				wantName := b.name
				if i >= 6 {
					wantName += "_" + strconv.Itoa(i/6)
				}
				wantDocs := docs / k
				if i < docs%k {
					wantDocs++
				}
				if c.DB != b.db || c.Name != wantName || c.IDKind != b.kind || c.Docs != wantDocs {
					t.Errorf("Docs=%d K=%d #%d: got %s.%s %s %d docs, want %s.%s %s %d docs",
						docs, k, i, c.DB, c.Name, c.IDKind, c.Docs, b.db, wantName, b.kind, wantDocs)
				}
				sum += c.Docs
			}
			if sum != docs {
				t.Errorf("Docs=%d K=%d: documents sum to %d", docs, k, sum)
			}
		}
	}
	if got := len(Plan(Options{Docs: 10})); got != 6 {
		t.Errorf("default plan has %d collections, want 6", got)
	}
	if got := Plan(Options{Collections: 13})[12].Name; got != "customers_2" {
		t.Errorf("collection 13 is %q, want customers_2", got)
	}
}

// indexSpec flattens an index model for comparison: keys in order, then the options that matter.
func indexSpec(t *testing.T, m mongo.IndexModel) string {
	t.Helper()
	var parts []string
	for _, e := range m.Keys.(bson.D) {
		parts = append(parts, fmt.Sprintf("%s:%v", e.Key, e.Value))
	}
	spec := strings.Join(parts, ",")
	if o := m.Options; o != nil {
		if o.Unique != nil && *o.Unique {
			spec += " unique"
		}
		if o.Sparse != nil && *o.Sparse {
			spec += " sparse"
		}
		if o.ExpireAfterSeconds != nil {
			spec += fmt.Sprintf(" ttl=%d", *o.ExpireAfterSeconds)
		}
		if o.PartialFilterExpression != nil {
			spec += fmt.Sprintf(" partial=%v", o.PartialFilterExpression)
		}
	}
	return spec
}

func TestPlanIndexes(t *testing.T) {
	want := map[string][]string{
		"shop.customers":  {"email:1 unique", "address.country:1,createdAt:-1"},
		"shop.orders":     {"customerId:1,createdAt:-1"},
		"misc.mixed_ids":  nil,
		"shop.products":   {"discontinuedAt:1 sparse", "category:1,price:1 partial=[{stock [{$gt 0}]}]"},
		"ledger.accounts": {"accountNo:1 unique"},
		"ledger.events":   {"expiresAt:1 ttl=3600", "accountId:1,at:-1"},
	}
	for _, c := range Plan(Options{Collections: 12}) {
		ns := c.DB + "." + strings.TrimSuffix(c.Name, "_1")
		var got []string
		for _, m := range c.Indexes {
			got = append(got, indexSpec(t, m))
		}
		if !slices.Equal(got, want[ns]) {
			t.Errorf("%s.%s indexes: got %q, want %q", c.DB, c.Name, got, want[ns])
		}
	}
	// Each Plan call builds its own index options, so a caller that edits one cannot affect another.
	a, b := Plan(Options{}), Plan(Options{})
	a[0].Indexes[0].Options.SetName("edited")
	if b[0].Indexes[0].Options.Name != nil {
		t.Error("index options are shared between plans")
	}
}

func TestDocumentSizes(t *testing.T) {
	var sizes []int
	forEachDoc(t, Options{Docs: 5000, Seed: 11}, func(c Collection, i int, doc bson.Raw) {
		sizes = append(sizes, len(doc))
	})
	slices.Sort(sizes)
	median := sizes[len(sizes)/2]
	large := len(sizes) - countAtMost(sizes, 8*1024)
	t.Logf("sizes: min %d, median %d, p90 %d, p99 %d, max %d, %d above 8 KB",
		sizes[0], median, sizes[len(sizes)*9/10], sizes[len(sizes)*99/100], sizes[len(sizes)-1], large)
	if median < 512 || median > 2048 {
		t.Errorf("median size %d B, want 0.5-2 KB", median)
	}
	if large < 3 {
		t.Errorf("%d documents above 8 KB, want a long tail", large)
	}
	// The bounds are checked on a bigger sample, where the tail reaches the cap.
	forEachDoc(t, Options{Docs: 60000, Seed: 12}, func(c Collection, i int, doc bson.Raw) {
		if n := len(doc); n < minDocBytes || n > maxDocBytes {
			t.Fatalf("%s.%s #%d: %d bytes, want %d-%d", c.DB, c.Name, i, n, minDocBytes, maxDocBytes)
		}
	})
}

// countAtMost returns how many of the sorted sizes are at most limit.
func countAtMost(sorted []int, limit int) int {
	n, _ := slices.BinarySearch(sorted, limit+1)
	return n
}

// idKey renders an _id the way MongoDB compares it: numbers by value, whatever their BSON type.
func idKey(v bson.RawValue) (string, error) {
	switch v.Type {
	case bson.TypeInt32:
		return "num:" + strconv.FormatInt(int64(v.Int32()), 10), nil
	case bson.TypeInt64:
		return "num:" + strconv.FormatInt(v.Int64(), 10), nil
	case bson.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return "num:" + strconv.FormatInt(int64(f), 10), nil
		}
		return "num:" + strconv.FormatFloat(f, 'g', -1, 64), nil
	case bson.TypeString:
		return "str:" + v.StringValue(), nil
	case bson.TypeObjectID:
		return "oid:" + v.ObjectID().Hex(), nil
	case bson.TypeBinary:
		sub, data := v.Binary()
		return fmt.Sprintf("bin%d:%x", sub, data), nil
	}
	return "", fmt.Errorf("unexpected _id type %s", v.Type)
}

func TestIDKeyTreatsNumbersByValue(t *testing.T) {
	keys := map[string]bool{}
	for _, v := range []any{int32(5), int64(5), 5.0} {
		typ, data, err := bson.MarshalValue(v)
		if err != nil {
			t.Fatal(err)
		}
		k, err := idKey(bson.RawValue{Type: typ, Value: data})
		if err != nil {
			t.Fatal(err)
		}
		keys[k] = true
	}
	if len(keys) != 1 {
		t.Fatalf("int32(5), int64(5) and 5.0 give keys %v, want one", keys)
	}
}

func TestIDsUnique(t *testing.T) {
	// 60000 documents give the mixed collection 10000 ids: many rounds of every id variant.
	opts := Options{Docs: 60000, Seed: 5}
	seen := map[string]map[string]int{}
	forEachDoc(t, opts, func(c Collection, i int, doc bson.Raw) {
		k, err := idKey(doc.Lookup("_id"))
		if err != nil {
			t.Fatalf("%s.%s #%d: %v", c.DB, c.Name, i, err)
		}
		ns := c.DB + "." + c.Name
		if seen[ns] == nil {
			seen[ns] = map[string]int{}
		}
		if j, dup := seen[ns][k]; dup {
			t.Fatalf("%s: documents %d and %d share _id %s", ns, j, i, k)
		}
		seen[ns][k] = i
	})
}

func TestIDTypes(t *testing.T) {
	wantType := map[string]bsontype.Type{
		"objectId": bson.TypeObjectID, "int32": bson.TypeInt32, "int64": bson.TypeInt64,
		"string": bson.TypeString, "uuid": bson.TypeBinary, "double": bson.TypeDouble,
	}
	kinds := map[string]int{}
	var negativeInt32, smallInt64, largeInt64, integralDouble, fractionalDouble bool
	forEachDoc(t, Options{Docs: 1200, Seed: 9}, func(c Collection, i int, doc bson.Raw) {
		id := doc.Lookup("_id")
		kind := c.IDKind
		if kind == "mixed" {
			kind = doc.Lookup("kind").StringValue()
			kinds[kind]++
		}
		if id.Type != wantType[kind] {
			t.Fatalf("%s.%s #%d: _id is %s, want %s", c.DB, c.Name, i, id.Type, kind)
		}
		if id.Type == bson.TypeBinary {
			if sub, data := id.Binary(); sub != 4 || len(data) != 16 || data[6]>>4 != 4 {
				t.Fatalf("%s.%s #%d: _id is not a version-4 UUID (subtype 4): %d %x", c.DB, c.Name, i, sub, data)
			}
		}
		if c.IDKind != "mixed" {
			return
		}
		switch id.Type {
		case bson.TypeInt32:
			negativeInt32 = negativeInt32 || id.Int32() < 0
		case bson.TypeInt64:
			smallInt64 = smallInt64 || id.Int64() <= math.MaxInt32
			largeInt64 = largeInt64 || id.Int64() > math.MaxInt32
		case bson.TypeDouble:
			integralDouble = integralDouble || id.Double() == math.Trunc(id.Double())
			fractionalDouble = fractionalDouble || id.Double() != math.Trunc(id.Double())
		}
	})
	for kind := range wantType {
		if kinds[kind] == 0 {
			t.Errorf("mixed collection has no %s _id", kind)
		}
	}
	total := 0
	for _, n := range kinds {
		total += n
	}
	if kinds["double"]*10 > total {
		t.Errorf("doubles should be rare (under 10%%): %v", kinds)
	}
	if !negativeInt32 || !smallInt64 || !largeInt64 || !integralDouble || !fractionalDouble {
		t.Errorf("missing numeric id variants: negative int32 %v, int64 in int32 range %v, large int64 %v, integral double %v, fractional double %v",
			negativeInt32, smallInt64, largeInt64, integralDouble, fractionalDouble)
	}
}

func TestIndexedFields(t *testing.T) {
	emails := map[string]bool{}
	accountNos := map[string]bool{}
	var products, discontinued int
	ttlFloor := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	forEachDoc(t, Options{Docs: 30000, Collections: 12, Seed: 21}, func(c Collection, i int, doc bson.Raw) {
		switch c.IDKind {
		case "objectId":
			email := doc.Lookup("email").StringValue()
			if key := c.Name + " " + email; emails[key] || !strings.Contains(email, "@") {
				t.Fatalf("%s.%s #%d: email %q repeated or malformed", c.DB, c.Name, i, email)
			} else {
				emails[key] = true
			}
		case "int32":
			no := c.Name + doc.Lookup("accountNo").StringValue()
			if accountNos[no] {
				t.Fatalf("%s.%s #%d: accountNo repeated", c.DB, c.Name, i)
			}
			accountNos[no] = true
		case "string":
			products++
			if _, err := doc.LookupErr("discontinuedAt"); err == nil {
				discontinued++
			}
		case "uuid":
			at := doc.Lookup("expiresAt").Time()
			if !at.After(ttlFloor) {
				t.Fatalf("%s.%s #%d: expiresAt %s, want after 2100", c.DB, c.Name, i, at)
			}
		}
	})
	if share := float64(discontinued) / float64(products); share < 0.07 || share > 0.13 {
		t.Errorf("discontinuedAt on %.1f%% of products, want about 10%%", share*100)
	}
}

// TestReferences: orders point at existing customers and events at existing accounts.
func TestReferences(t *testing.T) {
	opts := Options{Docs: 3000, Seed: 4}
	customers := map[primitive.ObjectID]bool{}
	var accounts int
	forEachDoc(t, opts, func(c Collection, i int, doc bson.Raw) {
		switch c.Name {
		case "customers":
			customers[doc.Lookup("_id").ObjectID()] = true
		case "orders":
			if !customers[doc.Lookup("customerId").ObjectID()] {
				t.Fatalf("order #%d references a missing customer", i)
			}
		case "accounts":
			accounts++
		case "events":
			if id := int(doc.Lookup("accountId").Int32()); id < 1 || id > accounts {
				t.Fatalf("event #%d references account %d of %d", i, id, accounts)
			}
		}
	})
}

func TestDocumentsValidate(t *testing.T) {
	forEachDoc(t, Options{Docs: 12000, Collections: 7, Seed: 8}, func(c Collection, i int, doc bson.Raw) {
		if err := bson.Raw(doc).Validate(); err != nil {
			t.Fatalf("%s.%s #%d: invalid BSON: %v", c.DB, c.Name, i, err)
		}
		if first := doc.Index(0).Key(); first != "_id" {
			t.Fatalf("%s.%s #%d: first field is %q, want _id", c.DB, c.Name, i, first)
		}
	})
}

// TestBSONCoverage checks that the data really contains the awkward parts of BSON it promises.
func TestBSONCoverage(t *testing.T) {
	seen := map[string]bool{}
	var walk func(v bson.RawValue)
	walk = func(v bson.RawValue) {
		seen[v.Type.String()] = true
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			elems, _ := v.Document().Elements()
			for _, e := range elems {
				walk(e.Value())
			}
		case bson.TypeArray:
			vals, _ := v.Array().Values()
			for _, e := range vals {
				walk(e)
			}
		case bson.TypeBinary:
			sub, _ := v.Binary()
			seen[fmt.Sprintf("binary subtype %d", sub)] = true
		case bson.TypeString:
			s := v.StringValue()
			for _, r := range s {
				switch {
				case r >= 0x1F300:
					seen["emoji"] = true
				case r >= 0x4E00 && r <= 0x9FFF:
					seen["CJK"] = true
				case r >= 0x80 && r < 0x250:
					seen["accented Latin"] = true
				}
			}
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q", s)
			}
		case bson.TypeDateTime:
			if v.DateTime() < 0 {
				seen["date before 1970"] = true
			}
		}
	}
	var withLogin, withoutLogin, nullAddress int
	forEachDoc(t, Options{Docs: 3000, Seed: 2}, func(c Collection, i int, doc bson.Raw) {
		walk(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: doc})
		if c.Name == "customers" {
			if _, err := doc.LookupErr("lastLoginAt"); err == nil {
				withLogin++
			} else {
				withoutLogin++
			}
			if doc.Lookup("address").Type == bson.TypeNull {
				nullAddress++
			}
		}
	})
	for _, want := range []string{
		"embedded document", "array", "UTC datetime", "128-bit decimal", "32-bit integer", "64-bit integer",
		"double", "boolean", "null", "string", "objectID", "binary subtype 0", "binary subtype 4",
		"emoji", "CJK", "accented Latin", "date before 1970",
	} {
		if !seen[want] {
			t.Errorf("no %s anywhere in the data", want)
		}
	}
	if withLogin == 0 || withoutLogin == 0 || nullAddress == 0 {
		t.Errorf("optional fields: %d customers with lastLoginAt, %d without, %d with a null address",
			withLogin, withoutLogin, nullAddress)
	}
}

func TestDocumentsErrors(t *testing.T) {
	opts := Options{Docs: 100}
	err := Documents(opts, Collection{DB: "shop", Name: "customers_1"}, func([]bson.Raw) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "shop.customers_1") {
		t.Errorf("unplanned collection: got %v, want an error naming shop.customers_1", err)
	}
	stop := errors.New("stop")
	calls := 0
	err = Documents(Options{Docs: 100, BatchSize: 5}, Plan(opts)[1], func([]bson.Raw) error { calls++; return stop })
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "shop.orders") || calls != 1 {
		t.Errorf("fn error: got %v after %d calls, want stop wrapped with shop.orders after 1 call", err, calls)
	}
	none := Documents(Options{}, Plan(Options{})[0], func([]bson.Raw) error { t.Error("fn called for 0 docs"); return nil })
	if none != nil {
		t.Error(none)
	}
}

// TestMoney: the hand-built Decimal128 must equal what ParseDecimal128 makes of the same amount.
func TestMoney(t *testing.T) {
	for _, cents := range []int64{0, 1, -1, 5, 99, 100, -100, 123456, -2_000_000, math.MaxInt64, math.MinInt64 + 1} {
		sign, abs := "", cents
		if cents < 0 {
			sign, abs = "-", -cents
		}
		text := fmt.Sprintf("%s%d.%02d", sign, abs/100, abs%100)
		want, err := primitive.ParseDecimal128(text)
		if err != nil {
			t.Fatal(err)
		}
		got := money(cents)
		gh, gl := got.GetBytes()
		wh, wl := want.GetBytes()
		if gh != wh || gl != wl || got.String() != text {
			t.Errorf("money(%d) = %s (%x %x), want %s (%x %x)", cents, got, gh, gl, want, wh, wl)
		}
	}
}

func TestBatchSizes(t *testing.T) {
	opts := Options{Docs: 60, Collections: 1, BatchSize: 25}
	var sizes []int
	if err := Documents(opts, Plan(opts)[0], func(b []bson.Raw) error { sizes = append(sizes, len(b)); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sizes, []int{25, 25, 10}) {
		t.Errorf("batches of %v, want [25 25 10]", sizes)
	}
}

func TestIsNamespaceExists(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{mongo.CommandError{Code: 48, Name: "NamespaceExists"}, true},
		{fmt.Errorf("create: %w", mongo.CommandError{Code: 48}), true},
		{errors.New("Collection already exists. NS: shop.customers"), true},
		{mongo.CommandError{Code: 13, Name: "Unauthorized"}, false},
	} {
		if got := isNamespaceExists(tc.err); got != tc.want {
			t.Errorf("isNamespaceExists(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func BenchmarkDocuments(b *testing.B) {
	for k, tmpl := range templates {
		b.Run(tmpl.db+"."+tmpl.name, func(b *testing.B) {
			opts := Options{Docs: b.N * len(templates), Seed: 1}
			c := Plan(opts)[k]
			c.Docs = b.N
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			err := Documents(opts, c, func(batch []bson.Raw) error {
				for _, d := range batch {
					bytes += int64(len(d))
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "B/doc")
			b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
		})
	}
}
