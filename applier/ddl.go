package applier

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Server error codes that make a DDL event already applied (it is being applied a second time,
// after a takeover) or moot.
const (
	codeNamespaceNotFound     = 26
	codeIndexNotFound         = 27
	codeNamespaceExists       = 48
	codeCommandNotFound       = 59
	codeIndexOptionsConflict  = 85
	codeIndexKeySpecsConflict = 86
)

// ddlWarning is a DDL event that was applied only in part, or not at all, for a reason the user
// should know but that does not stop the sync.
type ddlWarning struct{ msg string }

func (w *ddlWarning) Error() string { return w.msg }

// applyDDL applies one DDL event to the destination. Every branch is idempotent: applying it again
// after a takeover finds it done and moves on.
func (a *applier) applyDDL(ctx context.Context, ev changeevent.Event) error {
	// Whatever this event does to the catalog (a rename moves an entry, a drop forgets one), the
	// next event reads the catalog's UUIDs again.
	defer a.catalogChanged()
	dst := a.cfg.Destination
	db := dst.Database(ev.NS.DB)
	var err error
	switch ev.Op {
	case changeevent.Create:
		cmd := bson.D{{Key: "create", Value: ev.NS.Coll}}
		cmd = appendRaw(cmd, ev.Options)
		err = ignoreCodes(db.RunCommand(ctx, cmd).Err(), codeNamespaceExists)
	case changeevent.Drop:
		err = ignoreCodes(db.Collection(ev.NS.Coll).Drop(ctx), codeNamespaceNotFound)
		if err == nil {
			err = a.cfg.Meta.ForgetCatalogEntry(ctx, ev.NS.String())
		}
	case changeevent.DropDatabase:
		err = a.dropDatabase(ctx, ev.NS.DB)
	case changeevent.Rename:
		if err := a.renameAcrossFilter(ctx, ev); err != nil {
			return err
		}
		if !a.cfg.Filter.Selected(ev.NS) || !a.cfg.Filter.Selected(ev.To) {
			return &ddlWarning{fmt.Sprintf("%s was renamed to %s, which the sync's namespace filter excludes; it was dropped on the destination", ev.NS, ev.To)}
		}
		// dropTarget always: the rename succeeded on the source, so whatever the destination still
		// has under the new name is stale (and without showExpandedEvents a change stream does
		// not say whether the source replaced a target).
		err = ignoreCodes(dst.Database("admin").RunCommand(ctx, bson.D{
			{Key: "renameCollection", Value: ev.NS.String()},
			{Key: "to", Value: ev.To.String()},
			{Key: "dropTarget", Value: true},
		}).Err(), codeNamespaceNotFound)
		if err == nil {
			err = a.cfg.Meta.MoveCatalogEntry(ctx, ev.NS.String(), ev.To.String())
		}
	case changeevent.CreateIndexes:
		if a.buildIndexes == metadata.BuildIndexesNever {
			return nil // buildIndexes "never": the destination gets no secondary indexes
		}
		var specs bson.A
		for _, src := range ev.Indexes {
			spec, change, serr := metadata.DestinationIndexSpec(src)
			if serr != nil {
				return serr
			}
			if change != nil {
				// Built without uniqueness or expiry, like the copy's indexes, and restored at commit.
				if err := a.cfg.Meta.AddDeferred(ctx, ev.NS.DB, ev.NS.Coll, *change); err != nil {
					return err
				}
			}
			specs = append(specs, spec)
		}
		err = ignoreCodes(db.RunCommand(ctx, bson.D{{Key: "createIndexes", Value: ev.NS.Coll}, {Key: "indexes", Value: specs}}).Err(),
			codeIndexOptionsConflict, codeIndexKeySpecsConflict)
	case changeevent.DropIndexes:
		for _, name := range ev.IndexNames {
			if _, derr := db.Collection(ev.NS.Coll).Indexes().DropOne(ctx, name); ignoreCodes(derr, codeNamespaceNotFound, codeIndexNotFound) != nil {
				err = derr
				break
			}
			if err = a.cfg.Meta.ForgetDeferred(ctx, ev.NS.String(), name); err != nil {
				break
			}
		}
	case changeevent.CollMod:
		err = a.collMod(ctx, ev)
	case changeevent.Unsupported:
		return &ddlWarning{"a source event fleetsync does not apply was skipped: " + ev.Description}
	default:
		return fmt.Errorf("unknown DDL event %q on %s", ev.Op, ev.NS)
	}
	if err != nil {
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == codeCommandNotFound {
			return &ddlWarning{fmt.Sprintf("the destination does not support %s, so %s on %s was not applied", ev.Op, ev.Op, ev.NS)}
		}
		return fmt.Errorf("applying %s of %s to the destination: %w", ev.Op, ev.NS, err)
	}
	return nil
}

// dropDatabase follows a source dropDatabase: the whole destination database when the sync's filter
// selects all of it, else only the collections the filter selects, since the rest of that database on
// the destination is not the sync's to remove.
func (a *applier) dropDatabase(ctx context.Context, name string) error {
	db := a.cfg.Destination.Database(name)
	names, err := a.names(ctx)
	if err != nil {
		return err
	}
	// Collections the catalog still holds by UUID were created after this dropDatabase (the
	// drops it made come first in the stream, and forget theirs): it happened before the catalog,
	// and their copies stay.
	held := names.heldIn(name)
	if a.cfg.Filter.SelectsWholeDatabase(name) && len(held) == 0 {
		if err := db.Drop(ctx); err != nil {
			return err
		}
		return a.cfg.Meta.ForgetCatalogDatabase(ctx, name)
	}
	colls, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return err
	}
	for _, c := range colls {
		ns := namespace.Namespace{DB: name, Coll: c}
		if !a.cfg.Filter.Selected(ns) || held[c] {
			continue
		}
		if err := ignoreCodes(db.Collection(c).Drop(ctx), codeNamespaceNotFound); err != nil {
			return err
		}
		if err := a.cfg.Meta.ForgetCatalogEntry(ctx, ns.String()); err != nil {
			return err
		}
	}
	return nil
}

// ErrRenamedIntoFilter says a collection the sync never copied was renamed into its namespaces: its
// documents exist only on the source, so the destination can no longer be made equal by events.
var ErrRenamedIntoFilter = errors.New("a collection outside the sync's namespace filter was renamed into it")

// renameAcrossFilter handles a rename whose two names fall on different sides of the namespace
// filter: out of the filter, the collection leaves the sync and is dropped on the destination; into
// it, the sync cannot continue (nothing was copied), which is an error the user must act on, as with
// mongosync. A rename within the filter returns nil and is applied as usual.
func (a *applier) renameAcrossFilter(ctx context.Context, ev changeevent.Event) error {
	from, to := a.cfg.Filter.Selected(ev.NS), a.cfg.Filter.Selected(ev.To)
	switch {
	case from && to:
		return nil
	case from:
		if err := ignoreCodes(a.cfg.Destination.Database(ev.NS.DB).Collection(ev.NS.Coll).Drop(ctx), codeNamespaceNotFound); err != nil {
			return fmt.Errorf("dropping %s, renamed out of the sync's namespaces: %w", ev.NS, err)
		}
		return a.cfg.Meta.ForgetCatalogEntry(ctx, ev.NS.String())
	default:
		return fmt.Errorf("%w: %s was renamed to %s; its documents were never copied. Start a new sync whose "+
			"filter includes both names (or neither)", ErrRenamedIntoFilter, ev.NS, ev.To)
	}
}

// collMod applies a collection modification. Index changes that the sync defers (a TTL's
// expireAfterSeconds, uniqueness) are recorded for commit instead of applied.
func (a *applier) collMod(ctx context.Context, ev changeevent.Event) error {
	cmd := bson.D{{Key: "collMod", Value: ev.NS.Coll}}
	elems, _ := ev.Options.Elements()
	for _, e := range elems {
		if e.Key() != "index" {
			cmd = append(cmd, bson.E{Key: e.Key(), Value: e.Value()})
			continue
		}
		idx, ok := e.Value().DocumentOK()
		if !ok {
			continue
		}
		change := metadata.DeferredIndexChange{Index: idx.Lookup("name").StringValue()}
		var keep bson.D
		ielems, _ := idx.Elements()
		for _, ie := range ielems {
			switch ie.Key() {
			case "expireAfterSeconds":
				if secs, ok := ie.Value().AsInt64OK(); ok {
					change.ExpireAfterSeconds = &secs
					continue
				}
			case "unique":
				if metadata.Truthy(ie.Value()) {
					change.Unique = true
					continue
				}
			case "prepareUnique":
				continue // only meaningful before a unique conversion, which commit does
			}
			keep = append(keep, bson.E{Key: ie.Key(), Value: ie.Value()})
		}
		if change.Unique || change.ExpireAfterSeconds != nil {
			if change.Index == "" {
				return &ddlWarning{fmt.Sprintf("a collMod of %s changed an index named by its key pattern; fleetsync cannot record it for commit", ev.NS)}
			}
			if err := a.cfg.Meta.AddDeferred(ctx, ev.NS.DB, ev.NS.Coll, change); err != nil {
				return err
			}
		}
		if len(keep) > 1 { // more than the index's name
			cmd = append(cmd, bson.E{Key: "index", Value: keep})
		}
	}
	if len(cmd) == 1 {
		return nil
	}
	return a.cfg.Destination.Database(ev.NS.DB).RunCommand(ctx, cmd).Err()
}

// appendRaw appends raw's fields to d.
func appendRaw(d bson.D, raw bson.Raw) bson.D {
	elems, _ := raw.Elements()
	for _, e := range elems {
		d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
	}
	return d
}

// ignoreCodes returns nil for server errors with one of codes.
func ignoreCodes(err error, codes ...int32) error {
	if err == nil {
		return nil
	}
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		for _, c := range codes {
			if ce.Code == c {
				return nil
			}
		}
	}
	// A collection's Drop or an index's DropOne report a missing namespace as a WriteException
	// or plain server error on some servers; the codes are checked through ServerError too.
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range codes {
			if se.HasErrorCode(int(c)) {
				return nil
			}
		}
	}
	return err
}
