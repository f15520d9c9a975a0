// Package changeevent turns what a source cluster says happened into one normalised event type, so the
// applier has one thing to apply whether the events came from a change stream or from the oplog.
//
// Both source formats are parsed here and nowhere else: a change stream event (MongoDB 4.0+, with
// showExpandedEvents' DDL events on 6.0+) by [FromChangeStream], an oplog entry (including applyOps
// from transactions, which becomes several events) by [FromOplog].
//
// The normalised form keeps only what applying needs, and one rule decides how an update is applied:
// an update carries an [UpdateDescription] only when applying it again, on any later state of the
// document, converges to the same result (set a path to a value, remove a path, truncate an array).
// Anything else (an oplog entry with an operator a real server never logs, a path the description
// cannot express unambiguously) has no description, and the applier refreshes the document from the
// source instead.
package changeevent

import (
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Op is what an event does.
type Op string

// CRUD operations: applied per document, in parallel lanes keyed by (namespace, document key).
const (
	Insert  Op = "insert"  // FullDocument is the new document: replace-upsert by DocumentKey
	Replace Op = "replace" // FullDocument is the new document: replace-upsert by DocumentKey
	Update  Op = "update"  // Update describes it, or is nil: refresh the document from the source
	Delete  Op = "delete"  // delete by DocumentKey
)

// DDL operations: each is a barrier (every earlier event is applied before it, every later one after).
const (
	Create        Op = "create"        // Options: the collection's options (may be empty)
	Drop          Op = "drop"          // drop NS
	Rename        Op = "rename"        // rename NS to To (DropTarget says whether an existing To is replaced)
	DropDatabase  Op = "dropDatabase"  // drop NS.DB; NS.Coll is empty
	CreateIndexes Op = "createIndexes" // Indexes: full index specs {v, key, name, ...}
	DropIndexes   Op = "dropIndexes"   // IndexNames: the names dropped
	CollMod       Op = "collMod"       // Options: the collMod command's fields other than collMod itself
)

// Unsupported marks an event fleetsync cannot apply (for example shardCollection, convertToCapped):
// Description says what it was, so the applier can warn without stopping.
const Unsupported Op = "unsupported"

// IsDDL reports whether op changes a namespace or its indexes rather than one document.
func (op Op) IsDDL() bool {
	switch op {
	case Insert, Replace, Update, Delete:
		return false
	}
	return true
}

// Event is one normalised source change.
type Event struct {
	Op Op
	NS namespace.Namespace

	// ClusterTime orders events: the oplog entry's ts, or the change event's clusterTime. Several
	// events share one when they come from one transaction.
	ClusterTime primitive.Timestamp
	// ResumeToken is the change event's _id (change streams only): the point to resume after.
	ResumeToken bson.Raw
	// UUID is the UUID of the collection the event concerns (an oplog entry's ui; a change event's
	// collectionUUID, 6.0+ with showExpandedEvents), empty where the source gives none (dropDatabase,
	// older servers). A rename keeps it, a collection created again gets a new one: the applier
	// tells by it which collection an event means when names have moved since.
	UUID primitive.Binary

	// CRUD.
	DocumentKey  bson.Raw           // {_id: ...} plus the shard key fields on sharded collections
	FullDocument bson.Raw           // Insert and Replace
	Update       *UpdateDescription // Update only; nil means "refresh from the source"

	// DDL.
	To         namespace.Namespace // Rename
	DropTarget bool                // Rename
	Options    bson.Raw            // Create, CollMod
	Indexes    []bson.Raw          // CreateIndexes
	IndexNames []string            // DropIndexes

	Description string // Unsupported: what the event was, for a warning
}

// UpdateDescription is an idempotent description of an update, applied in this order: Truncate,
// then Set and Unset. Paths are dotted ("a.b.3"); no path contains "$" and no field name along a
// path contains a dot, or the event would have no description.
type UpdateDescription struct {
	Truncate []ArrayTruncation // arrays cut to a new length
	Set      bson.D            // path → new value
	Unset    []string          // paths removed
}

// ArrayTruncation says the array at Path now has NewSize elements (the first NewSize of the old).
type ArrayTruncation struct {
	Path    string
	NewSize int
}

// Updates returns the update documents that apply u, in order: the truncations as one $push with
// an empty $each and a $slice (which cuts an array to a length), then the sets and unsets. They are
// two updates because MongoDB refuses one update that touches a path and its parent ("a" and
// "a.3"). Either may be missing; an empty description gives none.
func (u *UpdateDescription) Updates() []bson.D {
	var out []bson.D
	if len(u.Truncate) > 0 {
		var push bson.D
		for _, t := range u.Truncate {
			push = append(push, bson.E{Key: t.Path, Value: bson.D{{Key: "$each", Value: bson.A{}}, {Key: "$slice", Value: t.NewSize}}})
		}
		out = append(out, bson.D{{Key: "$push", Value: push}})
	}
	var update bson.D
	if len(u.Set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: u.Set})
	}
	if len(u.Unset) > 0 {
		unset := make(bson.D, len(u.Unset))
		for i, p := range u.Unset {
			unset[i] = bson.E{Key: p, Value: ""}
		}
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	if len(update) > 0 {
		out = append(out, update)
	}
	return out
}
