package verify

import (
	"bytes"
	"sort"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
)

// equalIgnoringFieldOrder reports whether two documents hold the same fields with the same values and
// types, in any order, at every level of embedded documents. Arrays keep their order, since reordering
// an array changes the data. Types must match exactly: int32(1) and int64(1) differ, as they would to
// an application reading the data.
func equalIgnoringFieldOrder(a, b bson.Raw) bool {
	ae, err := a.Elements()
	if err != nil {
		return false
	}
	be, err := b.Elements()
	if err != nil || len(ae) != len(be) {
		return false
	}
	byKey := func(els []bson.RawElement) {
		sort.Slice(els, func(i, j int) bool { return els[i].Key() < els[j].Key() })
	}
	byKey(ae)
	byKey(be)
	for i := range ae {
		if ae[i].Key() != be[i].Key() || !equalValueIgnoringFieldOrder(ae[i].Value(), be[i].Value()) {
			return false
		}
	}
	return true
}

func equalValueIgnoringFieldOrder(a, b bson.RawValue) bool {
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case bsontype.EmbeddedDocument:
		return equalIgnoringFieldOrder(a.Document(), b.Document())
	case bsontype.Array:
		av, err := a.Array().Values()
		if err != nil {
			return false
		}
		bv, err := b.Array().Values()
		if err != nil || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !equalValueIgnoringFieldOrder(av[i], bv[i]) {
				return false
			}
		}
		return true
	default:
		return bytes.Equal(a.Value, b.Value)
	}
}
