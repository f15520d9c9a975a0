package verify

import (
	"bytes"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"

	"github.com/fleetsync/fleetsync/internal/bsonorder"
	"github.com/fleetsync/fleetsync/internal/catalog"
)

// ignoredIndexFields carry no meaning for the index's behaviour: the index version follows the server
// version, "ns" was dropped in 4.4, and "background" is ignored since 4.2.
var ignoredIndexFields = map[string]bool{"v": true, "ns": true, "background": true}

// falseMeansAbsent lists boolean index options whose false value is the default, so {unique: false}
// and no unique field describe the same index.
var falseMeansAbsent = map[string]bool{"unique": true, "sparse": true, "hidden": true}

// maxShownValue bounds how much of a differing option value a message shows.
const maxShownValue = 120

// compareIndexes reports, by index name, indexes missing or extra on the destination and options that
// differ; and, as warnings, options the servers treat as equal that differ in number type. Both lists
// are sorted by name (catalog.ListIndexes).
func compareIndexes(src, dst []bson.Raw) (diffs, warnings []string) {
	byName := func(specs []bson.Raw) map[string]bson.Raw {
		m := make(map[string]bson.Raw, len(specs))
		for _, s := range specs {
			m[s.Lookup("name").StringValue()] = s
		}
		return m
	}
	srcBy, dstBy := byName(src), byName(dst)
	for _, name := range sortedKeys(srcBy, dstBy) {
		s, inSrc := srcBy[name]
		d, inDst := dstBy[name]
		switch {
		case !inDst:
			diffs = append(diffs, fmt.Sprintf("index %s %s missing on destination", name, show(s.Lookup("key"))))
		case !inSrc:
			diffs = append(diffs, fmt.Sprintf("index %s %s extra on destination", name, show(d.Lookup("key"))))
		default:
			sn, dn := normaliseIndexSpec(s), normaliseIndexSpec(d)
			for _, diff := range compareFields(sn, dn) {
				diffs = append(diffs, "index "+name+": "+diff)
			}
			for _, w := range numberTypeDifferences(sn, dn) {
				warnings = append(warnings, "index "+name+": "+w)
			}
		}
	}
	return diffs, warnings
}

// numberTypeDifferences describes each field whose values are equal by MongoDB's rules but not the
// same bytes: a number stored as another type (3600 and NumberLong(3600)), at the top or nested. The
// servers normalise these, so they are no difference; a rebuild that changed a type shows here.
func numberTypeDifferences(src, dst map[string]bson.RawValue) []string {
	var out []string
	for _, key := range sortedKeys(src, dst) {
		s, inSrc := src[key]
		d, inDst := dst[key]
		if !inSrc || !inDst || bsonorder.Compare(s, d) != 0 || (s.Type == d.Type && bytes.Equal(s.Value, d.Value)) {
			continue
		}
		if s.Type != d.Type {
			out = append(out, fmt.Sprintf("%s is %s (%s) on source, %s (%s) on destination; equal to the servers",
				key, show(s), typeName(s.Type), show(d), typeName(d.Type)))
			continue
		}
		out = append(out, fmt.Sprintf("%s is %s on source, %s on destination; equal to the servers", key, canonical(s), canonical(d)))
	}
	return out
}

// typeName names a BSON number type as MongoDB's $type does.
func typeName(t bsontype.Type) string {
	switch t {
	case bsontype.Int32:
		return "int32"
	case bsontype.Int64:
		return "int64"
	case bsontype.Double:
		return "double"
	case bsontype.Decimal128:
		return "decimal"
	}
	return t.String()
}

// canonical renders a value as canonical extended JSON, which shows number types
// ({"$numberLong": "1"}), shortened for a one-line message.
func canonical(v bson.RawValue) string {
	b, err := bson.MarshalExtJSON(bson.D{{Key: "v", Value: v}}, true, false)
	if err != nil {
		return v.String()
	}
	s := string(bytes.TrimSuffix(bytes.TrimPrefix(b, []byte(`{"v":`)), []byte("}")))
	if len(s) > maxShownValue {
		s = s[:maxShownValue] + "…"
	}
	return s
}

func normaliseIndexSpec(spec bson.Raw) map[string]bson.RawValue {
	out := map[string]bson.RawValue{}
	elems, _ := spec.Elements()
	for _, e := range elems {
		key, val := e.Key(), e.Value()
		if ignoredIndexFields[key] || key == "name" {
			continue
		}
		if falseMeansAbsent[key] && val.Type == bsontype.Boolean && !val.Boolean() {
			continue
		}
		out[key] = val
	}
	return out
}

// compareCollectionSpecs reports differences of type and listCollections options.
func compareCollectionSpecs(src, dst catalog.Collection) []string {
	var diffs []string
	if src.Type != dst.Type {
		diffs = append(diffs, fmt.Sprintf("type is %s on source, %s on destination", src.Type, dst.Type))
	}
	for _, diff := range compareFields(fieldMap(src.Options), fieldMap(dst.Options)) {
		diffs = append(diffs, "option "+diff)
	}
	return diffs
}

func fieldMap(doc bson.Raw) map[string]bson.RawValue {
	out := map[string]bson.RawValue{}
	elems, _ := doc.Elements()
	for _, e := range elems {
		out[e.Key()] = e.Value()
	}
	return out
}

// compareFields describes each field whose value differs between two specs. Values compare by
// MongoDB's rules, so 3600 and NumberLong(3600) are the same expireAfterSeconds, while key patterns
// keep their field order ({a:1,b:1} is not {b:1,a:1}).
func compareFields(src, dst map[string]bson.RawValue) []string {
	var diffs []string
	for _, key := range sortedKeys(src, dst) {
		s, inSrc := src[key]
		d, inDst := dst[key]
		switch {
		case !inDst:
			diffs = append(diffs, fmt.Sprintf("%s is %s on source, absent on destination", key, show(s)))
		case !inSrc:
			diffs = append(diffs, fmt.Sprintf("%s is absent on source, %s on destination", key, show(d)))
		case bsonorder.Compare(s, d) != 0:
			diffs = append(diffs, fmt.Sprintf("%s is %s on source, %s on destination", key, show(s), show(d)))
		}
	}
	return diffs
}

func sortedKeys[V any](a, b map[string]V) []string {
	seen := make(map[string]bool, len(a)+len(b))
	var keys []string
	for _, m := range []map[string]V{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// show renders a value as relaxed extended JSON, shortened for a one-line message.
func show(v bson.RawValue) string {
	s := extJSON(v)
	if len(s) > maxShownValue {
		s = s[:maxShownValue] + "…"
	}
	return s
}

// extJSON renders one value as relaxed extended JSON.
func extJSON(v bson.RawValue) string {
	doc := bson.D{{Key: "v", Value: v}}
	b, err := bson.MarshalExtJSON(doc, false, false)
	if err != nil {
		return v.String()
	}
	// {"v":VALUE}: strip the wrapper.
	return string(bytes.TrimSuffix(bytes.TrimPrefix(b, []byte(`{"v":`)), []byte("}")))
}
