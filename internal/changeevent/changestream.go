package changeevent

import (
	"fmt"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// FromChangeStream turns one change stream event into an Event: a document from a cluster-wide
// client.Watch on MongoDB 6.0 or later, in the formats of the "Change Events" reference pages.
//
// Open the stream with showExpandedEvents: true. Without it the server sends no create,
// createIndexes, dropIndexes or modify events at all, a rename does not say whether it replaced an
// existing collection (DropTarget stays false), and an update whose path holds a field name with a
// dot cannot be told from a nested path (see below).
//
// ResumeToken is the event's _id. The event's bytes are copied, so doc may be a cursor's buffer
// that the next call overwrites.
//
// An update carries the event's updateDescription: updatedFields become Set in the order the event
// lists them (the order of the server's diff), removedFields Unset, truncatedArrays Truncate. It has
// no description (refresh) when disambiguatedPaths is present and not empty (6.1+ with expanded
// events: a path component that is a dotted field name, or a numeric field name that is not an
// array index) or when a path has a component that is empty or starts with "$".
//
// An invalidate event returns an error that wraps ErrInvalidated. Sharding events (shardCollection,
// reshardCollection, refineCollectionShardKey) and any operationType this function does not know
// become Unsupported events whose Description names them.
func FromChangeStream(doc bson.Raw) (Event, error) {
	if err := wellFormed(doc); err != nil {
		return Event{}, &MalformedError{Source: "a change event", Problem: err.Error()}
	}
	doc = clone(doc)
	f := fields{doc: doc, source: "a change event"}

	opType, err := f.str("operationType")
	if err != nil {
		return Event{}, err
	}
	f.source = fmt.Sprintf("a %s change event", opType)
	ts, err := f.timestamp("clusterTime")
	if err != nil {
		return Event{}, err
	}
	f.source = fmt.Sprintf("the %s change event at %s", opType, timestampString(ts))
	token, err := f.document("_id")
	if err != nil {
		return Event{}, err
	}
	if opType == "invalidate" {
		return Event{}, fmt.Errorf("%w (invalidate event at %s)", ErrInvalidated, timestampString(ts))
	}

	ev := Event{ClusterTime: ts, ResumeToken: token, UUID: uuidOf(f, "collectionUUID")}
	switch opType {
	case "insert", "update", "replace", "delete":
		err = changeStreamCRUD(f, opType, &ev)
	case "drop":
		ev.Op = Drop
		ev.NS, err = changeStreamNS(f, "ns", true)
	case "rename":
		err = changeStreamRename(f, &ev)
	case "dropDatabase":
		ev.Op = DropDatabase
		ev.NS, err = changeStreamNS(f, "ns", false)
		ev.NS.Coll = "" // a dropDatabase event names no collection; never let one through
	case "create", "createIndexes", "dropIndexes", "modify":
		err = changeStreamDDL(f, opType, &ev)
	case "shardCollection", "reshardCollection", "refineCollectionShardKey":
		ev.Op = Unsupported
		if ev.NS, err = changeStreamNS(f, "ns", true); err == nil {
			ev.Description = describeChangeEvent(f, opType)
		}
	default:
		// A newer server's event, or one only system-event streams see: say what it was, and
		// let the applier warn.
		ev.Op = Unsupported
		ev.NS, _ = changeStreamNS(f, "ns", false)
		ev.Description = describeChangeEvent(f, opType)
	}
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}

func changeStreamCRUD(f fields, opType string, ev *Event) error {
	var err error
	if ev.NS, err = changeStreamNS(f, "ns", true); err != nil {
		return err
	}
	if ev.DocumentKey, err = f.documentKey("documentKey"); err != nil {
		return err
	}
	switch opType {
	case "insert":
		ev.Op = Insert
		ev.FullDocument, err = f.document("fullDocument")
	case "replace":
		ev.Op = Replace
		ev.FullDocument, err = f.document("fullDocument")
	case "update":
		// fullDocument, when the stream asked for it, is a later lookup, not this update's
		// result: it is left out on purpose.
		ev.Op = Update
		ev.Update, err = changeStreamUpdate(f)
	case "delete":
		ev.Op = Delete
	}
	return err
}

// changeStreamUpdate reads an update event's description.
func changeStreamUpdate(f fields) (*UpdateDescription, error) {
	ud, found, err := f.optDocument("updateDescription")
	if err != nil {
		return nil, err
	}
	if !found {
		// showRawUpdateDescription (an internal option mongosync uses) sends the oplog entry's o
		// instead, which says unambiguously what changed.
		raw, rawFound, err := f.optDocument("rawUpdateDescription")
		if err != nil {
			return nil, err
		}
		if !rawFound {
			return nil, f.errorf("updateDescription", "is missing")
		}
		return fromUpdateObject(f.at("rawUpdateDescription", raw))
	}
	g := f.at("updateDescription", ud)

	if paths, found, err := g.optDocument("disambiguatedPaths"); err != nil {
		return nil, err
	} else if found && !emptyDocumentBytes(paths) {
		return nil, nil
	}

	desc := &UpdateDescription{}
	if _, found := g.lookup("truncatedArrays"); found { // 5.0+
		truncations, err := g.documents("truncatedArrays")
		if err != nil {
			return nil, err
		}
		for i, t := range truncations {
			h := g.at(fmt.Sprintf("truncatedArrays.%d", i), t)
			path, err := h.str("field")
			if err != nil {
				return nil, err
			}
			size, err := h.value("newSize")
			if err != nil {
				return nil, err
			}
			n, ok := count(size)
			if !ok {
				return nil, h.errorf("newSize", "is %s, not an array length", size.String())
			}
			if !plainPath(path) {
				return nil, nil
			}
			desc.Truncate = append(desc.Truncate, ArrayTruncation{Path: path, NewSize: n})
		}
	}
	if updated, found, err := g.optDocument("updatedFields"); err != nil {
		return nil, err
	} else if found {
		elems, _ := updated.Elements()
		for _, e := range elems {
			if !plainPath(e.Key()) {
				return nil, nil
			}
			desc.Set = append(desc.Set, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	if _, found := g.lookup("removedFields"); found {
		removed, err := g.stringList("removedFields")
		if err != nil {
			return nil, err
		}
		for _, path := range removed {
			if !plainPath(path) {
				return nil, nil
			}
			desc.Unset = append(desc.Unset, path)
		}
	}
	return desc, nil
}

func changeStreamRename(f fields, ev *Event) error {
	ev.Op = Rename
	var err error
	if ev.NS, err = changeStreamNS(f, "ns", true); err != nil {
		return err
	}
	desc, hasDesc, err := f.optDocument("operationDescription")
	if err != nil {
		return err
	}
	// The top-level to predates operationDescription (5.3+, shown with expanded events), which
	// repeats it and adds dropTarget.
	if _, found := f.lookup("to"); found || !hasDesc {
		ev.To, err = changeStreamNS(f, "to", true)
	} else {
		ev.To, err = changeStreamNS(f.at("operationDescription", desc), "to", true)
	}
	if err != nil {
		return err
	}
	if hasDesc {
		ev.DropTarget, err = dropTarget(f.at("operationDescription", desc))
	}
	return err
}

// dropTarget reads a rename's dropTarget: the UUID of the collection the rename replaced (6.0+),
// a boolean in older or hand-made documents, absent when nothing was replaced.
func dropTarget(f fields) (bool, error) {
	v, found := f.lookup("dropTarget")
	if !found {
		return false, nil
	}
	switch v.Type {
	case bson.TypeBinary:
		return true, nil
	case bson.TypeBoolean:
		return v.Boolean(), nil
	}
	return false, f.wrongType("dropTarget", v, "a UUID or a boolean")
}

func changeStreamDDL(f fields, opType string, ev *Event) error {
	var err error
	if ev.NS, err = changeStreamNS(f, "ns", true); err != nil {
		return err
	}
	desc, found, err := f.optDocument("operationDescription")
	if err != nil {
		return err
	}
	if !found {
		// These events exist only with expanded events, which always carry a description.
		return f.errorf("operationDescription", "is missing")
	}
	g := f.at("operationDescription", desc)
	switch opType {
	case "create":
		// operationDescription is the oplog's create command minus its name; idIndex is implied
		// by creating the collection (clustered collections say so in their own option).
		ev.Op = Create
		ev.Options = without(desc, "idIndex")
	case "modify":
		// operationDescription is the collMod command minus its name, e.g. {index: {name, hidden}}
		// or {validator, validationLevel}: exactly the command's fields.
		ev.Op = CollMod
		ev.Options = desc
	case "createIndexes":
		ev.Op = CreateIndexes
		ev.Indexes, err = g.documents("indexes")
	case "dropIndexes":
		ev.Op = DropIndexes
		ev.IndexNames, err = indexNames(g)
	}
	return err
}

// indexNames reads the names of the specs in f's indexes.
func indexNames(f fields) ([]string, error) {
	specs, err := f.documents("indexes")
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(specs))
	for i, spec := range specs {
		name, err := f.at(fmt.Sprintf("indexes.%d", i), spec).str("name")
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// changeStreamNS reads a {db, coll} namespace document at key.
func changeStreamNS(f fields, key string, needColl bool) (namespace.Namespace, error) {
	doc, err := f.document(key)
	if err != nil {
		return namespace.Namespace{}, err
	}
	g := f.at(key, doc)
	db, err := g.str("db")
	if err != nil {
		return namespace.Namespace{}, err
	}
	coll, found, err := g.optStr("coll")
	if err != nil {
		return namespace.Namespace{}, err
	}
	if needColl && !found {
		return namespace.Namespace{}, g.errorf("coll", "is missing")
	}
	return namespace.Namespace{DB: db, Coll: coll}, nil
}

// describeChangeEvent words an event fleetsync does not apply, for a warning.
func describeChangeEvent(f fields, opType string) string {
	s := opType
	if ns, err := changeStreamNS(f, "ns", false); err == nil {
		s += " on " + nsString(ns)
	}
	if desc, found, err := f.optDocument("operationDescription"); err == nil && found {
		s += ": " + desc.String()
	}
	return s
}

// nsString words a namespace that may name only a database.
func nsString(ns namespace.Namespace) string {
	if ns.Coll == "" {
		return ns.DB
	}
	return ns.String()
}

func emptyDocumentBytes(doc bson.Raw) bool { return len(doc) == minDocumentBytes }
