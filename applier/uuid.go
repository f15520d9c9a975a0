package applier

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// collectionNames is the catalog seen by collection UUID: which source collection each cataloged
// name held when the coordinator listed it, as the applier's DDL has moved it since.
//
// Why: events are replayed from the sync's start time, but the coordinator lists the collections
// (and copies them under the names it sees) a moment later. DDL in between is already in the
// catalog and in the copy, and replaying it by name would undo the copy: writes to a collection's
// old name, then its rename onto the name the copy went to (with dropTarget), would replace the
// copied collection with the few documents those writes made. The UUID an event carries says which
// collection it is about whatever it was called then (docs/lifecycle.md, "DDL during the copy").
type collectionNames struct {
	byUUID map[string]namespace.Namespace // UUID bytes → the name the catalog holds it under
	byName map[namespace.Namespace]string // the reverse
	// copiedByName are the cataloged collections without a UUID (a server that reports none):
	// their copy read them by name, blind to renames.
	copiedByName map[namespace.Namespace]bool
	// cataloged are the collections the copy read, with a UUID or without.
	cataloged map[namespace.Namespace]bool
	// catalogAt and copyDone are the source's times when the catalog was listed and when the
	// copy ended (zero for a sync started by an older fleetsync).
	catalogAt, copyDone primitive.Timestamp
}

// The sync document's fields that hold the source's time when the coordinator listed the catalog,
// and when the copy phase ended (written by the coordinator).
const (
	FieldCatalogAtOperationTime  = "catalogAtOperationTime"
	FieldCopyDoneAtOperationTime = "copyDoneAtOperationTime"
)

// ErrRenamedBeforeCatalogWithoutUUID says a rename between the sync's start time and its catalog,
// seen without a collection UUID (a change stream of MongoDB before 6.0), touches a cataloged
// collection: replayed by name, it could put the old name's few replayed writes in place of the
// copy, and nothing tells whether it would.
var ErrRenamedBeforeCatalogWithoutUUID = errors.New("a collection was renamed before the catalog, and the event has no UUID to apply it by")

// ErrRenamedWhileCopiedByName says a collection whose copy read it by name (the source reported
// no UUID for it) was renamed, on either side of the rename, before the copy ended: documents
// read after the rename came from the wrong name, or from none, and nothing can tell which.
var ErrRenamedWhileCopiedByName = errors.New("a collection copied by name was renamed on the source during its copy")

// names loads the catalog's UUIDs, once per DDL event applied (which may change them). Nil when
// the applier works by name: a reversed sync, whose source is the catalog's destination.
func (a *applier) names(ctx context.Context) (*collectionNames, error) {
	if a.cfg.Reversed {
		return nil, nil
	}
	if a.uuids != nil {
		return a.uuids, nil
	}
	entries, err := a.cfg.Meta.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	n := &collectionNames{byUUID: map[string]namespace.Namespace{}, byName: map[namespace.Namespace]string{},
		copiedByName: map[namespace.Namespace]bool{}, cataloged: map[namespace.Namespace]bool{}}
	if n.catalogAt, n.copyDone, err = syncTimes(ctx, a); err != nil {
		return nil, err
	}
	ambiguous := map[string]bool{}
	for _, e := range entries {
		ns := namespace.Namespace{DB: e.DB, Coll: e.Coll}
		if e.Partitioned && e.Partitions > 0 {
			n.cataloged[ns] = true
		}
		if len(e.UUID.Data) == 0 {
			// Only what the copy read: not an entry the applier made for a collection that appeared
			// during the sync (AddDeferred), nor a view.
			if e.Partitioned && e.Partitions > 0 {
				n.copiedByName[ns] = true
			}
			continue
		}
		key := string(e.UUID.Data)
		if other, twice := n.byUUID[key]; twice || ambiguous[key] {
			// Two entries of one UUID: a coordinator replaced mid-catalog, with a rename between
			// its listing and its successor's, left the old name's entry. Neither name can be
			// trusted for that UUID: its events are applied by name, as without UUIDs.
			ambiguous[key] = true
			delete(n.byUUID, key)
			delete(n.byName, other)
			continue
		}
		n.byUUID[key] = ns
		n.byName[ns] = key
	}
	a.uuids = n
	return n, nil
}

// syncTimes reads the source's times of the catalog and of the copy's end from the sync document.
func syncTimes(ctx context.Context, a *applier) (catalogAt, copyDone primitive.Timestamp, err error) {
	var doc struct {
		CatalogAt primitive.Timestamp `bson:"catalogAtOperationTime"`
		CopyDone  primitive.Timestamp `bson:"copyDoneAtOperationTime"`
	}
	err = a.cfg.Meta.Syncs().FindOne(ctx, bson.D{{Key: "_id", Value: a.cfg.Meta.SyncID}},
		options.FindOne().SetProjection(bson.D{{Key: FieldCatalogAtOperationTime, Value: 1}, {Key: FieldCopyDoneAtOperationTime, Value: 1}})).Decode(&doc)
	if err != nil {
		return catalogAt, copyDone, fmt.Errorf("reading the sync's catalog and copy times: %w", err)
	}
	return doc.CatalogAt, doc.CopyDone, nil
}

// catalogChanged drops the loaded names after a DDL event: the next event reads them again.
func (a *applier) catalogChanged() { a.uuids = nil }

// resolve says how to apply ev given the catalog's UUIDs: as it is, under the name the catalog
// holds its collection by (an event from before the catalog, when the collection had another
// name), or not at all (it is about a collection the catalog does not hold, and would land on one
// it does). An event without a UUID, or of a server that gives none, is applied as it is.
func (a *applier) resolve(ctx context.Context, ev changeevent.Event) (changeevent.Event, bool, error) {
	if len(ev.UUID.Data) == 0 && ev.Op != changeevent.Rename {
		return ev, true, nil
	}
	n, err := a.names(ctx)
	if err != nil {
		return ev, false, fmt.Errorf("reading the catalog's collection UUIDs: %w", err)
	}
	if n == nil {
		return ev, true, nil
	}
	if err := a.checkRenamedAcrossDatabases(ctx, ev); err != nil {
		return ev, false, err
	}
	return n.decide(ev)
}

// decide is resolve once the catalog is read: a rename the copy could not have followed stops
// the applier (checkCopiedByName, checkRenameBeforeCatalog); an event with a UUID is resolved by
// it (collectionNames.resolve); anything else is applied as it is.
func (n *collectionNames) decide(ev changeevent.Event) (changeevent.Event, bool, error) {
	if err := n.checkCopiedByName(ev); err != nil {
		return ev, false, err
	}
	if !n.catalogAt.IsZero() && ev.ClusterTime.After(n.catalogAt) {
		// After every listing of the catalog: the destination holds the collections under the
		// names the source had then, moved since by the applier's own DDL, so the event applies by
		// its name, as it happened. By UUID it could be skipped for good: a collection created
		// after the catalog and renamed onto a cataloged name (a $out, a "build, then swap" job)
		// carries a UUID the catalog never held, and every later write to that name with it.
		return ev, true, nil
	}
	if len(ev.UUID.Data) == 0 {
		return ev, true, n.checkRenameBeforeCatalog(ev)
	}
	ev, ok := n.resolve(ev)
	return ev, ok, nil
}

// ErrRenamedAcrossDatabasesDuringCopy says a collection was renamed into another database while
// its partitions were copied: MongoDB copies it into a new collection with a new UUID, the copy's
// reads found it gone and ended, and replaying the rename would move a partial copy.
var ErrRenamedAcrossDatabasesDuringCopy = errors.New("a collection was renamed into another database during its copy")

// checkRenamedAcrossDatabases refuses a rename into another database of a collection that a
// partition found gone during the copy (partition.Partition.SourceGone).
func (a *applier) checkRenamedAcrossDatabases(ctx context.Context, ev changeevent.Event) error {
	if ev.Op != changeevent.Rename || ev.NS.DB == ev.To.DB || len(ev.UUID.Data) == 0 || a.cfg.Reversed {
		return nil
	}
	n, err := a.cfg.Meta.Collection(metadata.CollPartitions).CountDocuments(ctx,
		bson.D{{Key: "sync", Value: a.cfg.Meta.SyncID}, {Key: "uuid", Value: ev.UUID}, {Key: "sourceGone", Value: true}})
	if err != nil {
		return fmt.Errorf("reading the partitions of %s: %w", ev.NS, err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s was renamed to %s while its partitions were copied, and %d of them found it gone "+
			"(MongoDB renames across databases by copying into a new collection): its copy is partial; start a new sync, "+
			"and rename nothing across databases during its copy", ErrRenamedAcrossDatabasesDuringCopy, ev.NS, ev.To, n)
	}
	return nil
}

// checkRenameBeforeCatalog refuses a rename without UUID, from before the catalog, of or onto a
// cataloged collection (see ErrRenamedBeforeCatalogWithoutUUID).
func (n *collectionNames) checkRenameBeforeCatalog(ev changeevent.Event) error {
	if ev.Op != changeevent.Rename || n.catalogAt.IsZero() || ev.ClusterTime.After(n.catalogAt) {
		return nil
	}
	for _, ns := range []namespace.Namespace{ev.NS, ev.To} {
		if n.cataloged[ns] {
			return fmt.Errorf("%w: %s was renamed to %s at %d.%d, between the sync's start and its catalog, and the source's "+
				"events carry no collection UUID (a change stream before MongoDB 6.0) by which to tell what the copy of %s already holds; "+
				"start a new sync once no collection is renamed, or use --change-source oplog",
				ErrRenamedBeforeCatalogWithoutUUID, ev.NS, ev.To, ev.ClusterTime.T, ev.ClusterTime.I, ns)
		}
	}
	return nil
}

// checkCopiedByName refuses a rename, from before the copy ended, of a collection the copy read
// by name: the destination cannot be made equal, so the sync stops for good and says which
// collection, rather than commit it wrong.
func (n *collectionNames) checkCopiedByName(ev changeevent.Event) error {
	if ev.Op != changeevent.Rename || n.copyDone.IsZero() || ev.ClusterTime.After(n.copyDone) {
		return nil
	}
	for _, ns := range []namespace.Namespace{ev.NS, ev.To} {
		if n.copiedByName[ns] {
			return fmt.Errorf("%w: %s was renamed to %s at %d.%d, before the copy ended, and the source reports no UUID for %s "+
				"by which the copy could have followed it; start a new sync once no collection is renamed during its copy",
				ErrRenamedWhileCopiedByName, ev.NS, ev.To, ev.ClusterTime.T, ev.ClusterTime.I, ns)
		}
	}
	return nil
}

// resolve is the rule itself (see applier.resolve).
//   - A collection the catalog holds under the event's name: applied as it is. (Events after the
//     catalog's listing do not come here: decide applies them by name.)
//   - A collection the catalog holds under another name: the event is from before the catalog.
//     Its renames, creation and drop are in the catalog already and are skipped; its writes and
//     index changes are applied under the catalog's name, where the copy put the collection.
//   - A collection the catalog does not hold (dropped, or renamed out of the sync, before the
//     catalog; or created after it): applied, unless a name it touches is the catalog's name of
//     another collection, which only a collection that went away before the catalog can do.
func (n *collectionNames) resolve(ev changeevent.Event) (changeevent.Event, bool) {
	key := string(ev.UUID.Data)
	if at, known := n.byUUID[key]; known {
		if at == ev.NS {
			return ev, true
		}
		switch ev.Op {
		case changeevent.Rename, changeevent.Create, changeevent.Drop:
			return ev, false
		}
		ev.NS = at
		return ev, true
	}
	touched := []namespace.Namespace{ev.NS}
	if ev.Op == changeevent.Rename {
		touched = append(touched, ev.To)
	}
	for _, ns := range touched {
		if other, held := n.byName[ns]; held && other != key {
			return ev, false
		}
	}
	return ev, true
}

// heldIn lists the collections of database db the catalog holds by UUID.
func (n *collectionNames) heldIn(db string) map[string]bool {
	held := map[string]bool{}
	if n == nil {
		return held
	}
	for ns := range n.byName {
		if ns.DB == db {
			held[ns.Coll] = true
		}
	}
	return held
}
