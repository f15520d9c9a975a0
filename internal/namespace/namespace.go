// Package namespace names collections ("db.collection") and decides which ones are user data:
// fleetsync never copies, counts or compares the server's own databases, system collections, or its
// own metadata database.
package namespace

import (
	"fmt"
	"strings"
)

// DefaultMetadataDB is the destination database that holds fleetsync's own state.
const DefaultMetadataDB = "fleetsync_internal"

// Namespace is a database and a collection. Collection names may contain dots; database names may not.
type Namespace struct {
	DB, Coll string
}

func (n Namespace) String() string { return n.DB + "." + n.Coll }

// Parse reads "db.collection", splitting at the first dot.
func Parse(s string) (Namespace, error) {
	db, coll, ok := strings.Cut(s, ".")
	if !ok || db == "" || coll == "" {
		return Namespace{}, fmt.Errorf("%q is not a namespace: write it as database.collection", s)
	}
	return Namespace{DB: db, Coll: coll}, nil
}

// ParseList reads a comma-separated list of namespaces, as flags take them.
func ParseList(s string) ([]Namespace, error) {
	var out []Namespace
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		ns, err := Parse(part)
		if err != nil {
			return nil, err
		}
		out = append(out, ns)
	}
	return out, nil
}

// IsSystemDatabase reports the databases every MongoDB deployment has for itself.
func IsSystemDatabase(db string) bool {
	return db == "admin" || db == "local" || db == "config"
}

// IsSystemCollection reports collections the server manages (system.views, system.profile,
// system.buckets.* of time-series collections, ...). Their contents follow from user-level operations
// and are never written directly.
func IsSystemCollection(coll string) bool {
	return strings.HasPrefix(coll, "system.")
}

// Filter decides which databases and collections are user data for one sync.
type Filter struct {
	MetadataDB string // excluded too; DefaultMetadataDB when empty

	// Include and Exclude are the sync's includeNamespaces and excludeNamespaces (see rules.go).
	// Without them every user namespace is selected.
	Include, Exclude []Rule
}

// MetadataDatabase is the name of the sync's metadata database.
func (f Filter) MetadataDatabase() string {
	if f.MetadataDB == "" {
		return DefaultMetadataDB
	}
	return f.MetadataDB
}

// UserDatabase reports whether db may hold user namespaces.
func (f Filter) UserDatabase(db string) bool {
	return !IsSystemDatabase(db) && db != f.MetadataDatabase()
}

// User reports whether ns is a user namespace.
func (f Filter) User(ns Namespace) bool {
	return f.UserDatabase(ns.DB) && !IsSystemCollection(ns.Coll)
}
