package changeevent

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// FromOplog turns one local.oplog.rs entry into the events it holds, in the order it holds them:
//
//   - none for a no-op (op "n"), for an entry marked fromMigrate (a chunk migration moving documents
//     between shards, which changes nothing a reader of the whole cluster sees), for the
//     startIndexBuild and abortIndexBuild bookkeeping of two-phase index builds (commitIndexBuild
//     carries the indexes), and for commitTransaction;
//   - one for a write (i, u, d) or a DDL command (c);
//   - one per inner entry for an applyOps: a transaction, a part of a large one (partialTxn), the
//     prepare of a prepared one, or a batched write. Inner entries get the outer entry's ts.
//
// Every event's ClusterTime is the entry's ts. The entry's bytes are copied, so entry may be a
// cursor's buffer that the next call overwrites.
//
// Updates: a $v:2 diff becomes Set/Unset/Truncate. Set lists paths in the order the diff lists
// them: at each level its u entries, then its i entries, then each sub-diff in turn, depth first;
// Unset and Truncate follow the same walk (see diff.go). A $v:1 (or unversioned) update of only
// $set and $unset becomes Set/Unset in the order of those documents, unless a path has a positional
// or empty component. Any other operator, or a $v this reader does not know, gives no description
// (refresh). An o without operators is a replacement: Op Replace, with the _id taken from o2 when
// o lacks it.
//
// Prepared transactions are read from their prepare entry, which is an applyOps like any other;
// commitTransaction then adds nothing. An abortTransaction means that prepare's events never
// happened: FromOplog cannot take them back, so it returns an Unsupported event saying so.
func FromOplog(entry bson.Raw) ([]Event, error) {
	if err := wellFormed(entry); err != nil {
		return nil, &MalformedError{Source: "an oplog entry", Problem: err.Error()}
	}
	entry = clone(entry)
	f := fields{doc: entry, source: "an oplog entry"}
	op, skip, err := opOf(f)
	if err != nil || skip {
		return nil, err
	}
	ts, err := f.timestamp("ts")
	if err != nil {
		return nil, err
	}
	f.source = "the oplog entry at " + timestampString(ts)
	return oplogEvents(f, op, ts)
}

// opOf reads an entry's op, and whether the entry holds no events at all.
func opOf(f fields) (op string, skip bool, err error) {
	op, err = f.str("op")
	if err != nil {
		return "", false, err
	}
	return op, op == "n" || f.flag("fromMigrate"), nil
}

// oplogEvents reads the entry at f, whose op is op, with ts as the cluster time.
func oplogEvents(f fields, op string, ts primitive.Timestamp) ([]Event, error) {
	switch op {
	case "i", "u", "d":
		ev, err := oplogCRUD(f, op)
		if err != nil {
			return nil, err
		}
		ev.ClusterTime = ts
		ev.UUID = uuidOf(f, "ui")
		return []Event{ev}, nil
	case "c":
		events, err := oplogCommand(f, ts)
		if err != nil {
			return nil, err
		}
		ui := uuidOf(f, "ui")
		for i := range events {
			events[i].ClusterTime = ts
			if len(events[i].UUID.Data) == 0 {
				events[i].UUID = ui // applyOps' inner entries have their own
			}
		}
		return events, nil
	}
	ns, _ := oplogNS(f, "ns")
	s, _, _ := f.optStr("ns")
	return []Event{{
		Op:          Unsupported,
		NS:          ns,
		ClusterTime: ts,
		Description: fmt.Sprintf("oplog op %q on %q", op, s),
	}}, nil
}

// uuidOf reads the UUID at key (binary subtype 4), or none when it is absent or not a UUID.
func uuidOf(f fields, key string) primitive.Binary {
	v, ok := f.lookup(key)
	if !ok {
		return primitive.Binary{}
	}
	sub, data, ok := v.BinaryOK()
	if !ok || sub != bson.TypeBinaryUUID {
		return primitive.Binary{}
	}
	return primitive.Binary{Subtype: sub, Data: data}
}

// oplogNS reads a "db.coll" namespace.
func oplogNS(f fields, key string) (namespace.Namespace, error) {
	s, err := f.str(key)
	if err != nil {
		return namespace.Namespace{}, err
	}
	ns, err := namespace.Parse(s)
	if err != nil {
		return namespace.Namespace{}, f.errorf(key, "is %q, not a namespace database.collection", s)
	}
	return ns, nil
}

func oplogCRUD(f fields, op string) (Event, error) {
	ns, err := oplogNS(f, "ns")
	if err != nil {
		return Event{}, err
	}
	o, err := f.document("o")
	if err != nil {
		return Event{}, err
	}
	switch op {
	case "i":
		// o2 holds the document key (the _id and, on a sharded collection, the shard key) since
		// 5.3; older entries have only o.
		key, found, err := f.optDocument("o2")
		if err != nil {
			return Event{}, err
		}
		if found {
			key, err = f.documentKey("o2")
		} else {
			key, err = idKey(f, "o", o)
		}
		if err != nil {
			return Event{}, err
		}
		return Event{Op: Insert, NS: ns, DocumentKey: key, FullDocument: o}, nil
	case "d":
		key, err := f.documentKey("o")
		return Event{Op: Delete, NS: ns, DocumentKey: key}, err
	}

	key, err := f.documentKey("o2")
	if err != nil {
		return Event{}, err
	}
	if isReplacement(o) {
		full := o
		if _, found := element(o, "_id"); !found {
			// Replacements have logged the whole new document, _id included, since 4.0; one
			// without it still replaces the document o2 names.
			id, _ := element(key, "_id")
			full = prepend(id, o)
		}
		return Event{Op: Replace, NS: ns, DocumentKey: key, FullDocument: full}, nil
	}
	desc, err := fromUpdateObject(f.at("o", o))
	if err != nil {
		return Event{}, err
	}
	return Event{Op: Update, NS: ns, DocumentKey: key, Update: desc}, nil
}

// isReplacement reports whether an update's o is a whole new document rather than operators.
func isReplacement(o bson.Raw) bool {
	elems, _ := o.Elements()
	for _, e := range elems {
		if strings.HasPrefix(e.Key(), "$") {
			return false
		}
	}
	return true
}

// fromUpdateObject describes an update's o that is not a replacement: a $v:2 diff, or the $set and
// $unset of $v:1. It is nil (refresh) for anything it cannot express exactly.
func fromUpdateObject(f fields) (*UpdateDescription, error) {
	if v, found := f.lookup("$v"); found {
		version, ok := count(v)
		if !ok {
			return nil, f.errorf("$v", "is %s, not an update format version", v.String())
		}
		switch version {
		case 2:
			diff, err := f.document("diff")
			if err != nil {
				return nil, err
			}
			return fromDiff(f.at("diff", diff))
		case 1:
		default:
			return nil, nil // a format newer than this reader
		}
	}

	desc := &UpdateDescription{}
	elems, _ := f.doc.Elements()
	for _, e := range elems {
		key, v := e.Key(), e.Value()
		if key == "$v" {
			continue
		}
		if key != "$set" && key != "$unset" {
			// Servers log $v:1 updates as $set/$unset only; another operator ($inc, $push...)
			// is not idempotent, and a plain field beside operators is no update at all.
			return nil, nil
		}
		operands, ok := v.DocumentOK()
		if !ok {
			return nil, f.wrongType(key, v, "a document")
		}
		paths, _ := operands.Elements()
		for _, p := range paths {
			if !plainPath(p.Key()) {
				return nil, nil
			}
			if key == "$set" {
				desc.Set = append(desc.Set, bson.E{Key: p.Key(), Value: p.Value()})
			} else {
				desc.Unset = append(desc.Unset, p.Key())
			}
		}
	}
	return desc, nil
}

// oplogCommand reads a c entry: o is the command, named by its first field.
func oplogCommand(f fields, ts primitive.Timestamp) ([]Event, error) {
	cmdNS, err := f.str("ns")
	if err != nil {
		return nil, err
	}
	db, _, _ := strings.Cut(cmdNS, ".") // "db.$cmd"
	if db == "" {
		return nil, f.errorf("ns", "is %q, not a command namespace database.$cmd", cmdNS)
	}
	o, err := f.document("o")
	if err != nil {
		return nil, err
	}
	g := f.at("o", o)
	first, err := o.IndexErr(0)
	if err != nil {
		return nil, g.errorf("", "is empty, so it names no command")
	}
	name := first.Key()
	coll := func() (namespace.Namespace, error) {
		c, err := g.str(name)
		return namespace.Namespace{DB: db, Coll: c}, err
	}
	one := func(ev Event, err error) ([]Event, error) {
		if err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	}

	switch name {
	case "create":
		ns, err := coll()
		return one(Event{Op: Create, NS: ns, Options: without(o, "create", "idIndex")}, err)
	case "drop":
		ns, err := coll()
		return one(Event{Op: Drop, NS: ns}, err)
	case "renameCollection":
		return one(oplogRename(g))
	case "dropDatabase":
		return one(Event{Op: DropDatabase, NS: namespace.Namespace{DB: db}}, nil)
	case "createIndexes":
		// 4.4+ logs createIndexes only for an empty collection or inside a transaction, one
		// index per entry, its spec inline beside the collection name.
		ns, err := coll()
		return one(Event{Op: CreateIndexes, NS: ns, Indexes: []bson.Raw{without(o, "createIndexes")}}, err)
	case "commitIndexBuild":
		ns, err := coll()
		if err != nil {
			return nil, err
		}
		specs, err := g.documents("indexes")
		return one(Event{Op: CreateIndexes, NS: ns, Indexes: specs}, err)
	case "startIndexBuild", "abortIndexBuild", "commitTransaction":
		return nil, nil
	case "dropIndexes":
		return one(oplogDropIndexes(f, g, db))
	case "collMod":
		ns, err := coll()
		return one(Event{Op: CollMod, NS: ns, Options: without(o, "collMod")}, err)
	case "applyOps":
		return applyOps(g, ts)
	case "abortTransaction":
		return one(Event{
			Op: Unsupported,
			Description: "abortTransaction: a prepared transaction was aborted, so the events read from " +
				"its prepare entry (an applyOps with prepare: true) never happened; the documents it wrote must be re-copied",
		}, nil)
	}
	return one(Event{
		Op:          Unsupported,
		NS:          namespace.Namespace{DB: db},
		Description: fmt.Sprintf("%s command on database %s: %s", name, db, o.String()),
	}, nil)
}

func oplogRename(g fields) (Event, error) {
	from, err := oplogNS(g, "renameCollection")
	if err != nil {
		return Event{}, err
	}
	to, err := oplogNS(g, "to")
	if err != nil {
		return Event{}, err
	}
	replaced, err := dropTarget(g)
	return Event{Op: Rename, NS: from, To: to, DropTarget: replaced}, err
}

// oplogDropIndexes reads {dropIndexes: coll, index: name}; o2 holds the dropped index's spec.
func oplogDropIndexes(f, g fields, db string) (Event, error) {
	c, err := g.str("dropIndexes")
	if err != nil {
		return Event{}, err
	}
	ns := namespace.Namespace{DB: db, Coll: c}
	v, err := g.value("index")
	if err != nil {
		return Event{}, err
	}
	name, ok := v.StringValueOK()
	if !ok {
		// Older servers could log the key pattern; the spec in o2 still names the index.
		spec, found, err := f.optDocument("o2")
		if err != nil || !found {
			return Event{}, g.wrongType("index", v, "an index name")
		}
		if name, err = f.at("o2", spec).str("name"); err != nil {
			return Event{}, err
		}
	}
	if name == "*" {
		// The server logs one entry per dropped index, so this should never come; if it does,
		// it does not say which indexes went.
		return Event{Op: Unsupported, NS: ns, Description: "dropIndexes * on " + ns.String()}, nil
	}
	return Event{Op: DropIndexes, NS: ns, IndexNames: []string{name}}, nil
}

// applyOps reads the inner entries of an applyOps command at g.
func applyOps(g fields, ts primitive.Timestamp) ([]Event, error) {
	ops, err := g.documents("applyOps")
	if err != nil {
		return nil, err
	}
	var events []Event
	for i, op := range ops {
		h := g.at(fmt.Sprintf("applyOps.%d", i), op)
		kind, skip, err := opOf(h)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		inner, err := oplogEvents(h, kind, ts)
		if err != nil {
			return nil, err
		}
		events = append(events, inner...)
	}
	return events, nil
}

// idKey builds {_id: ...} from doc, which sits at key of f.
func idKey(f fields, key string, doc bson.Raw) (bson.Raw, error) {
	id, found := element(doc, "_id")
	if !found {
		return nil, f.errorf(key, "has no _id")
	}
	return documentOf(id), nil
}

// element finds the top-level element named key.
func element(doc bson.Raw, key string) (bson.RawElement, bool) {
	elems, _ := doc.Elements()
	for _, e := range elems {
		if e.Key() == key {
			return e, true
		}
	}
	return nil, false
}

// prepend builds a document of first followed by doc's elements.
func prepend(first bson.RawElement, doc bson.Raw) bson.Raw {
	elems, _ := doc.Elements()
	return documentOf(append([]bson.RawElement{first}, elems...)...)
}
