package changeevent

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/bsontype"
	"go.mongodb.org/mongo-driver/bson/primitive"
)

// maxNesting bounds how deep a source document may nest. The server refuses BSON nested deeper
// than its maxBSONDepth, which cannot be set above 1000; checking it once up front keeps every
// later walk (diffs, applyOps) bounded whatever the input.
const maxNesting = 1000

// minDocumentBytes is the size of the empty document: a 4-byte length and the terminating zero.
const minDocumentBytes = 5

// wellFormed checks that doc is BSON all the way down, so that no accessor used afterwards can
// meet a truncated value. The driver's own Validate looks at one level only.
func wellFormed(doc []byte) error {
	return wellFormedAt(doc, 0)
}

func wellFormedAt(doc []byte, depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("nests deeper than %d levels", maxNesting)
	}
	if len(doc) < minDocumentBytes {
		return fmt.Errorf("has %d bytes, fewer than the %d of an empty BSON document", len(doc), minDocumentBytes)
	}
	if n := binary.LittleEndian.Uint32(doc); int64(n) != int64(len(doc)) {
		return fmt.Errorf("declares %d bytes but has %d", n, len(doc))
	}
	if err := bson.Raw(doc).Validate(); err != nil {
		return fmt.Errorf("is not valid BSON (%v)", err)
	}
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return fmt.Errorf("is not valid BSON (%v)", err)
	}
	for _, e := range elems {
		v := e.Value()
		switch v.Type {
		case bson.TypeEmbeddedDocument, bson.TypeArray:
			err = wellFormedAt(v.Value, depth+1)
		case bson.TypeCodeWithScope:
			_, scope, ok := v.CodeWithScopeOK()
			if !ok {
				return fmt.Errorf("holds a malformed code-with-scope value in %q", e.Key())
			}
			err = wellFormedAt(scope, depth+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fields reads the fields of one source document (or of a document nested in it) for a parser.
// Every accessor checks presence and type, so a parser never panics on a document that is not what
// its format promises, and every error names the source document and the field's full path.
type fields struct {
	doc    bson.Raw
	source string // the whole source document, as errors name it
	path   string // where doc sits inside the source: "" at the top, else ending in "."
}

// at reads doc, found at key of f.
func (f fields) at(key string, doc bson.Raw) fields {
	return fields{doc: doc, source: f.source, path: f.path + key + "."}
}

// errorf reports a problem with the field key of f, or with f's document itself when key is "".
func (f fields) errorf(key, format string, args ...any) error {
	field := f.path + key
	if key == "" {
		field = strings.TrimSuffix(f.path, ".")
	}
	return &MalformedError{Source: f.source, Field: field, Problem: fmt.Sprintf(format, args...)}
}

func (f fields) wrongType(key string, v bson.RawValue, want string) error {
	return f.errorf(key, "is %s, not %s", typeName(v.Type), want)
}

func (f fields) lookup(key string) (bson.RawValue, bool) {
	v, err := f.doc.LookupErr(key)
	return v, err == nil
}

func (f fields) value(key string) (bson.RawValue, error) {
	v, ok := f.lookup(key)
	if !ok {
		return v, f.errorf(key, "is missing")
	}
	return v, nil
}

func (f fields) str(key string) (string, error) {
	v, err := f.value(key)
	if err != nil {
		return "", err
	}
	s, ok := v.StringValueOK()
	if !ok {
		return "", f.wrongType(key, v, "a string")
	}
	return s, nil
}

func (f fields) optStr(key string) (s string, found bool, err error) {
	if _, ok := f.lookup(key); !ok {
		return "", false, nil
	}
	s, err = f.str(key)
	return s, err == nil, err
}

func (f fields) document(key string) (bson.Raw, error) {
	v, err := f.value(key)
	if err != nil {
		return nil, err
	}
	d, ok := v.DocumentOK()
	if !ok {
		return nil, f.wrongType(key, v, "a document")
	}
	return d, nil
}

func (f fields) optDocument(key string) (d bson.Raw, found bool, err error) {
	if _, ok := f.lookup(key); !ok {
		return nil, false, nil
	}
	d, err = f.document(key)
	return d, err == nil, err
}

// array reads an array's values.
func (f fields) array(key string) ([]bson.RawValue, error) {
	v, err := f.value(key)
	if err != nil {
		return nil, err
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, f.wrongType(key, v, "an array")
	}
	values, err := arr.Values()
	if err != nil {
		return nil, f.errorf(key, "is not a valid array (%v)", err)
	}
	return values, nil
}

// documents reads an array of documents.
func (f fields) documents(key string) ([]bson.Raw, error) {
	values, err := f.array(key)
	if err != nil {
		return nil, err
	}
	docs := make([]bson.Raw, 0, len(values))
	for i, v := range values {
		d, ok := v.DocumentOK()
		if !ok {
			return nil, f.wrongType(key+"."+strconv.Itoa(i), v, "a document")
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// stringList reads an array of strings.
func (f fields) stringList(key string) ([]string, error) {
	values, err := f.array(key)
	if err != nil {
		return nil, err
	}
	list := make([]string, 0, len(values))
	for i, v := range values {
		s, ok := v.StringValueOK()
		if !ok {
			return nil, f.wrongType(key+"."+strconv.Itoa(i), v, "a string")
		}
		list = append(list, s)
	}
	return list, nil
}

func (f fields) timestamp(key string) (primitive.Timestamp, error) {
	v, err := f.value(key)
	if err != nil {
		return primitive.Timestamp{}, err
	}
	t, i, ok := v.TimestampOK()
	if !ok {
		return primitive.Timestamp{}, f.wrongType(key, v, "a timestamp")
	}
	return primitive.Timestamp{T: t, I: i}, nil
}

// flag reports whether key holds boolean true, as an oplog marker such as fromMigrate does. The
// server writes markers only when true; anything else counts as absent.
func (f fields) flag(key string) bool {
	v, ok := f.lookup(key)
	if !ok {
		return false
	}
	b, ok := v.BooleanOK()
	return ok && b
}

// documentKey checks that key holds a document with an _id: a key without one would match any
// document, and the applier deletes and replaces by it.
func (f fields) documentKey(key string) (bson.Raw, error) {
	d, err := f.document(key)
	if err != nil {
		return nil, err
	}
	if _, err := d.LookupErr("_id"); err != nil {
		return nil, f.errorf(key, "has no _id")
	}
	return d, nil
}

// count reads a non-negative integer written as any BSON number (the server writes lengths as
// 32-bit integers, drivers and tests sometimes as 64-bit or doubles).
func count(v bson.RawValue) (int, bool) {
	switch v.Type {
	case bson.TypeInt32:
		n, ok := v.Int32OK()
		return int(n), ok && n >= 0
	case bson.TypeInt64:
		n, ok := v.Int64OK()
		return int(n), ok && n >= 0 && n <= math.MaxInt32
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		return int(f), ok && f >= 0 && f <= math.MaxInt32 && f == math.Trunc(f)
	}
	return 0, false
}

// typeName words a BSON type for an error message.
func typeName(t bsontype.Type) string {
	switch t {
	case bson.TypeString:
		return "a string"
	case bson.TypeEmbeddedDocument:
		return "a document"
	case bson.TypeArray:
		return "an array"
	case bson.TypeBoolean:
		return "a boolean"
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble, bson.TypeDecimal128:
		return "a number"
	case bson.TypeTimestamp:
		return "a timestamp"
	case bson.TypeDateTime:
		return "a date"
	case bson.TypeNull:
		return "null"
	case bson.TypeObjectID:
		return "an ObjectId"
	case bson.TypeBinary:
		return "binary data"
	}
	return "of BSON type " + t.String()
}

func timestampString(ts primitive.Timestamp) string {
	return fmt.Sprintf("Timestamp(%d, %d)", ts.T, ts.I)
}

// documentOf builds a document from raw elements, in order.
func documentOf(elems ...bson.RawElement) bson.Raw {
	out := make([]byte, 4, minDocumentBytes+totalLen(elems))
	for _, e := range elems {
		out = append(out, e...)
	}
	return finishDocument(out)
}

// without copies doc minus the named top-level fields, keeping the order of the rest.
func without(doc bson.Raw, names ...string) bson.Raw {
	elems, _ := doc.Elements() // doc passed wellFormed
	out := make([]byte, 4, len(doc))
	for _, e := range elems {
		if !slices.Contains(names, e.Key()) {
			out = append(out, e...)
		}
	}
	return finishDocument(out)
}

// emptyDocument is {}: the options of a collection created without any.
func emptyDocument() bson.Raw { return documentOf() }

func finishDocument(out []byte) bson.Raw {
	out = append(out, 0)
	binary.LittleEndian.PutUint32(out, uint32(len(out)))
	return out
}

func totalLen(elems []bson.RawElement) int {
	n := 0
	for _, e := range elems {
		n += len(e)
	}
	return n
}

// clone copies the caller's bytes once, so that the events can keep slices of them: a driver
// cursor reuses its buffer for the next document.
func clone(doc bson.Raw) bson.Raw { return bytes.Clone(doc) }
