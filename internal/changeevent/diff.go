package changeevent

import (
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
)

// This file reads the $v:2 update diffs that MongoDB 5.0+ logs for every non-replacement update
// (src/mongo/db/update/document_diff_serialization.h in the server). The format:
//
//   - A document diff has sections in a fixed order: d {field: false} deleted fields, u {field:
//     value} fields set in place, i {field: value} fields inserted (appended at the end), b binary
//     patches (8.0+), then one s<field> sub-diff per embedded document or array changed inside.
//   - An array diff starts with a: true, may give l: <new length>, then u<index>: value and
//     s<index>: <sub-diff> in ascending index order. Arrays have no deletes: shrinking is l.
//
// Ordering: fromDiff lists paths in the order the diff does, walking depth first. At each level,
// Unset takes the d entries, Set the u entries then the i entries, Truncate the array's l; then
// each sub-diff is walked in turn. So Set paths appear in the order the diff lists them, and the
// fields of one i section (new fields, in the order the source document holds them) stay in that
// order.
//
// One thing a diff says is not carried, on purpose: an i entry for a field that already exists
// moves it to the end (a pipeline update that reorders fields), while $set leaves an existing
// field where it is. Values converge; the order of fields may not. Change streams lose the same
// information (they report i entries as updatedFields).
//
// What a diff says that Set/Unset/Truncate cannot, and which therefore makes the update a refresh
// (nil description):
//   - a field name with a dot or a leading "$", or an empty one (allowed in documents since 5.0):
//     an update path would split or misread it;
//   - a b section: a patch of part of a BinData value;
//   - a section this reader does not know (a later server's addition).

// plainField reports whether name can be one component of a dotted update path.
func plainField(name string) bool {
	return name != "" && !strings.Contains(name, ".") && !strings.HasPrefix(name, "$")
}

// plainPath reports whether every component of a dotted update path is plain, which rules out
// positional operators ("a.$", "a.$[]", "a.$[x]") and empty components ("a..b").
func plainPath(path string) bool {
	for _, part := range strings.Split(path, ".") {
		if part == "" || strings.HasPrefix(part, "$") {
			return false
		}
	}
	return true
}

// diffReader converts one diff; refresh records that it cannot be expressed.
type diffReader struct {
	desc    UpdateDescription
	refresh bool
}

// fromDiff converts the diff at f (the "diff" field of an oplog entry's o) to a description, or
// nil when the update must be a refresh.
func fromDiff(f fields) (*UpdateDescription, error) {
	var r diffReader
	if err := r.document("", f); err != nil {
		return nil, err
	}
	if r.refresh {
		return nil, nil
	}
	return &r.desc, nil
}

// document walks a document diff whose fields live under prefix ("" or "a.b.").
func (r *diffReader) document(prefix string, f fields) error {
	elems, err := f.doc.Elements()
	if err != nil {
		return f.errorf("", "is not a valid diff (%v)", err)
	}
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		switch {
		case key == "d", key == "u", key == "i":
			section, ok := v.DocumentOK()
			if !ok {
				return f.wrongType(key, v, "a document")
			}
			if err := r.section(prefix, key, section); err != nil {
				return err
			}
		case len(key) > 1 && key[0] == 's':
			name := key[1:]
			sub, ok := v.DocumentOK()
			if !ok {
				return f.wrongType(key, v, "a document")
			}
			if !plainField(name) {
				r.refresh = true
				return nil
			}
			if err := r.subDiff(prefix+name, f.at(key, sub)); err != nil {
				return err
			}
		default: // "b", or a section from a newer server
			r.refresh = true
		}
		if r.refresh {
			return nil
		}
	}
	return nil
}

// section reads a d, u or i section.
func (r *diffReader) section(prefix, kind string, section bson.Raw) error {
	elems, _ := section.Elements() // wellFormed checked it
	for _, e := range elems {
		name := e.Key()
		if !plainField(name) {
			r.refresh = true
			return nil
		}
		if kind == "d" {
			r.desc.Unset = append(r.desc.Unset, prefix+name)
		} else {
			r.desc.Set = append(r.desc.Set, bson.E{Key: prefix + name, Value: e.Value()})
		}
	}
	return nil
}

// subDiff walks the diff of the embedded document or array at path.
func (r *diffReader) subDiff(path string, f fields) error {
	first, err := f.doc.IndexErr(0)
	if err != nil {
		return f.errorf("", "is an empty diff")
	}
	if first.Key() != "a" {
		return r.document(path+".", f)
	}
	if b, ok := first.Value().BooleanOK(); !ok || !b {
		return f.errorf("a", "is %s, but an array diff starts with a: true", first.Value().String())
	}
	return r.array(path, f)
}

// array walks an array diff for the array at path.
func (r *diffReader) array(path string, f fields) error {
	elems, _ := f.doc.Elements()
	for _, e := range elems[1:] { // elems[0] is a: true
		key, v := e.Key(), e.Value()
		if key == "l" {
			n, ok := count(v)
			if !ok {
				return f.errorf(key, "is %s, not an array length", v.String())
			}
			// A length beyond the current one only happens with u entries that fill it; the
			// applier's $slice is then harmless.
			r.desc.Truncate = append(r.desc.Truncate, ArrayTruncation{Path: path, NewSize: n})
			continue
		}
		if len(key) < 2 || (key[0] != 'u' && key[0] != 's') {
			r.refresh = true // not in the format this reader knows
			return nil
		}
		index, err := strconv.ParseUint(key[1:], 10, 31)
		if err != nil {
			return f.errorf(key, "names no array index")
		}
		at := path + "." + strconv.FormatUint(index, 10)
		if key[0] == 'u' {
			r.desc.Set = append(r.desc.Set, bson.E{Key: at, Value: v})
			continue
		}
		sub, ok := v.DocumentOK()
		if !ok {
			return f.wrongType(key, v, "a document")
		}
		if err := r.subDiff(at, f.at(key, sub)); err != nil || r.refresh {
			return err
		}
	}
	return nil
}
