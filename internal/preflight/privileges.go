package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Privilege actions the sync uses beyond reading and writing its namespaces, MongoDB's names. They
// are the ones a user set up with readWriteAnyDatabase, clusterMonitor and the like lacks, and whose
// absence would otherwise show only hours into a sync: a copy batch refused, or a fleet that cannot
// renew its leases once user writes are blocked.
const (
	// ActionBypassDocumentValidation lets the copy's inserts and the applier's writes carry
	// bypassDocumentValidation: true, so documents the source accepted before a validator existed,
	// or under validationAction "warn", land on the destination as they are.
	ActionBypassDocumentValidation = "bypassDocumentValidation"
	// ActionBypassWriteBlockingMode lets a user write while setUserWriteBlockMode blocks user
	// writes: the fleet writes its metadata (leases, checkpoints) and the sync's data to a blocked
	// destination, and to a blocked source once a reverse makes it the destination.
	ActionBypassWriteBlockingMode = "bypassWriteBlockingMode"
	// ActionSetUserWriteBlockMode lets a user run setUserWriteBlockMode, which the fleet calls to
	// block and unblock user writes.
	ActionSetUserWriteBlockMode = "setUserWriteBlockMode"

	// actionAny is what connectionStatus lists for a privilege that grants every action (the
	// __system role's, or a custom role granting anyAction).
	actionAny = "anyAction"
)

// ResourceKind says which of connectionStatus's resource shapes a Resource is.
type ResourceKind int

const (
	// ResourceOther is a shape no need of the sync names (the system_buckets resources of time series
	// collections): it covers nothing the check asks for.
	ResourceOther ResourceKind = iota
	// ResourceNamespace is {db, collection}. An empty DB means every database and an empty
	// Collection every (non-system) collection: {db: "", collection: ""} is every user collection.
	ResourceNamespace
	ResourceCluster // {cluster: true}: cluster-wide commands such as setUserWriteBlockMode
	ResourceAny     // {anyResource: true}: everything, the cluster included
)

// Resource is what a privilege applies to.
type Resource struct {
	Kind           ResourceKind
	DB, Collection string // for ResourceNamespace
}

// clusterResource is {cluster: true}.
var clusterResource = Resource{Kind: ResourceCluster}

// covers reports whether a privilege on r applies to everything need names: a grant on a database
// covers its collections, a grant on every database covers each one, but a grant on one collection
// does not cover its database (collections created later would not be covered).
func (r Resource) covers(need Resource) bool {
	switch r.Kind {
	case ResourceAny:
		return true
	case ResourceCluster:
		return need.Kind == ResourceCluster
	case ResourceNamespace:
		return need.Kind == ResourceNamespace &&
			(r.DB == "" || r.DB == need.DB) && (r.Collection == "" || r.Collection == need.Collection)
	}
	return false
}

func (r Resource) String() string {
	switch {
	case r.Kind == ResourceAny:
		return "any resource"
	case r.Kind == ResourceCluster:
		return "the cluster"
	case r.Kind != ResourceNamespace:
		return "an unnamed resource"
	case r.DB == "" && r.Collection == "":
		return "every database"
	case r.DB == "":
		return "collection " + r.Collection + " of every database"
	case r.Collection == "":
		return "database " + r.DB
	}
	return r.DB + "." + r.Collection
}

// Privilege is one entry of connectionStatus's authenticatedUserPrivileges.
type Privilege struct {
	Resource Resource
	Actions  []string
}

// AuthInfo is what connectionStatus (with showPrivileges) says about a connection: who is
// authenticated on it, and with which privileges, all roles expanded.
type AuthInfo struct {
	// Users are the authenticated users, "name@db" as MongoDB writes them; none when the server
	// runs without access control or the connection string has no credentials.
	Users []string
	// Privileges is nil when the reply had no authenticatedUserPrivileges (a server that ignores
	// showPrivileges); an authenticated user always has some.
	Privileges []Privilege
}

// has reports whether info's privileges allow action on need.
func (info AuthInfo) has(action string, need Resource) bool {
	return slices.ContainsFunc(info.Privileges, func(p Privilege) bool {
		return p.Resource.covers(need) && (slices.Contains(p.Actions, action) || slices.Contains(p.Actions, actionAny))
	})
}

// connectionStatusReply is connectionStatus's reply as MongoDB sends it (src/mongo/db/commands/
// connection_status.cpp; resources serialized by Privilege::toParsedPrivilege in privilege.cpp).
type connectionStatusReply struct {
	AuthInfo struct {
		Users []struct {
			User string `bson:"user"`
			DB   string `bson:"db"`
		} `bson:"authenticatedUsers"`
		Privileges []struct {
			Resource bson.Raw `bson:"resource"`
			Actions  []string `bson:"actions"`
		} `bson:"authenticatedUserPrivileges"`
	} `bson:"authInfo"`
}

// ParseConnectionStatus reads the reply of {connectionStatus: 1, showPrivileges: true}.
func ParseConnectionStatus(reply bson.Raw) (AuthInfo, error) {
	var r connectionStatusReply
	if err := bson.Unmarshal(reply, &r); err != nil {
		return AuthInfo{}, fmt.Errorf("reading connectionStatus's reply: %w", err)
	}
	var info AuthInfo
	for _, u := range r.AuthInfo.Users {
		info.Users = append(info.Users, u.User+"@"+u.DB)
	}
	if _, err := reply.LookupErr("authInfo", "authenticatedUserPrivileges"); err == nil {
		info.Privileges = []Privilege{}
	}
	for _, p := range r.AuthInfo.Privileges {
		info.Privileges = append(info.Privileges, Privilege{Resource: parseResource(p.Resource), Actions: p.Actions})
	}
	return info, nil
}

// parseResource reads one of MongoDB's resource documents; a shape it does not know is
// ResourceOther, which grants nothing the check asks for.
func parseResource(doc bson.Raw) Resource {
	if v, ok := doc.Lookup("anyResource").BooleanOK(); ok && v {
		return Resource{Kind: ResourceAny}
	}
	if v, ok := doc.Lookup("cluster").BooleanOK(); ok && v {
		return clusterResource
	}
	db, dbOK := doc.Lookup("db").StringValueOK()
	coll, collOK := doc.Lookup("collection").StringValueOK()
	if dbOK && collOK {
		return Resource{Kind: ResourceNamespace, DB: db, Collection: coll}
	}
	return Resource{Kind: ResourceOther}
}

// Need is one privilege the sync will use on a cluster.
type Need struct {
	Action   string
	Resource Resource
	// WriteBlocking marks a need that only comes from enableUserWriteBlocking, so that a refusal
	// can offer "none" instead of a grant.
	WriteBlocking bool
}

// Plan is what a sync will do that takes privileges beyond reading and writing its namespaces.
type Plan struct {
	// Include is the sync's includeNamespaces: the databases and collections it writes on the
	// destination (on cluster0 too, once reversed).
	Include []namespace.Rule
	// BlockDestination is write blocking "destinationOnly" or "sourceAndDestination": cluster1's
	// user writes are blocked from the catalog step to the end of the commit.
	BlockDestination bool
	// BlockSource is "sourceAndDestination": the commit blocks cluster0's user writes, and they stay
	// blocked after it.
	BlockSource bool
	// Reversible: after the commit cluster1 becomes the source and cluster0 the destination.
	Reversible bool
}

// Needs returns what the sync needs on cluster0 and on cluster1, by this table (MongoDB's
// privilege actions and built-in roles pages; mongosync's "User Permissions" page asks the same
// actions for the same sync types):
//
//	sync                   cluster0 (source)                   cluster1 (destination)
//	every sync             -                                   bypassDocumentValidation on the synced namespaces
//	destinationOnly        -                                   + bypassWriteBlockingMode, setUserWriteBlockMode
//	                                                             on the cluster
//	sourceAndDestination   bypassWriteBlockingMode,            as destinationOnly
//	                       setUserWriteBlockMode on the cluster
//	reversible             + bypassDocumentValidation on the   as sourceAndDestination
//	                       synced namespaces
//
// Why: the copy and the applier write with bypassDocumentValidation: true. While the destination's
// user writes are blocked (from the catalog step to the end of the commit) the fleet keeps writing
// to it: its lease renewals and checkpoints, and the sync's data. The fleet calls
// setUserWriteBlockMode itself where it blocks (cluster1 at the catalog step, cluster0 at the
// commit) and unblocks (cluster1 at the end of the commit, cluster0 when a commit fails). A source
// blocked by sourceAndDestination stays blocked after the commit; mongosync's source permissions ask
// bypassWriteBlockingMode with setUserWriteBlockMode there, and fleetsync asks the same, so the
// user that blocks a cluster can always still write to it. With reversible the roles swap after the
// commit: cluster0, still blocked, receives the applied writes, and the reverse's commit blocks
// cluster1 and unblocks cluster0, so each cluster needs all three. The built-in restore role holds
// all three (bypassDocumentValidation on every database, the others on the cluster, from 6.0).
func (p Plan) Needs() (cluster0, cluster1 []Need) {
	writeBlocking := func(need []Need) []Need {
		for _, a := range []string{ActionBypassWriteBlockingMode, ActionSetUserWriteBlockMode} {
			need = append(need, Need{Action: a, Resource: clusterResource, WriteBlocking: !p.Reversible})
		}
		return need
	}
	for _, r := range syncedResources(p.Include) {
		cluster1 = append(cluster1, Need{Action: ActionBypassDocumentValidation, Resource: r})
		if p.Reversible {
			cluster0 = append(cluster0, Need{Action: ActionBypassDocumentValidation, Resource: r})
		}
	}
	if p.BlockDestination || p.BlockSource {
		cluster1 = writeBlocking(cluster1)
	}
	if p.BlockSource {
		cluster0 = writeBlocking(cluster0)
	}
	return cluster0, cluster1
}

// syncedResources are the resources the sync may write to: every database without include rules
// (a database created on the source during the sync is synced too), else the databases and
// collections the rules name. Exclude rules are not subtracted: a grant wider than needed is
// harmless, and a rule-by-rule subtraction would often be wrong. A database regex needs every
// database, since any database the source gains may match it.
func syncedResources(include []namespace.Rule) []Resource {
	every := []Resource{{Kind: ResourceNamespace}}
	if len(include) == 0 {
		return every
	}
	var out []Resource
	for _, r := range include {
		switch {
		case r.DatabaseRegex != nil:
			return every
		case r.CollectionsRegex != nil || len(r.Collections) == 0:
			out = append(out, Resource{Kind: ResourceNamespace, DB: r.Database})
		default:
			for _, c := range r.Collections {
				out = append(out, Resource{Kind: ResourceNamespace, DB: r.Database, Collection: c})
			}
		}
	}
	// A whole database makes its collections' entries redundant.
	out = slices.DeleteFunc(out, func(r Resource) bool {
		return r.Collection != "" && slices.Contains(out, Resource{Kind: ResourceNamespace, DB: r.DB})
	})
	slices.SortFunc(out, func(a, b Resource) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// Missing returns the needs info's privileges do not cover, in needs' order.
func (info AuthInfo) Missing(needs []Need) []Need {
	var out []Need
	for _, n := range needs {
		if !info.has(n.Action, n.Resource) {
			out = append(out, n)
		}
	}
	return out
}

// CheckPrivileges decides from a cluster's connectionStatus whether its user holds needs. A missing
// privilege is a refusal, a *MissingPrivilegesError whose message is one sentence naming the
// cluster, the user and the actions, and what to grant. When no user is authenticated (a server
// without access control, like the sandbox's) there is nothing to check against: it returns a
// warning saying so instead, and no error.
func CheckPrivileges(label string, info AuthInfo, needs []Need) (warning string, err error) {
	switch {
	case len(needs) == 0:
		return "", nil
	case len(info.Users) == 0:
		return notChecked(label, "connectionStatus reports no authenticated user (the server runs without access control, "+
			"or the connection string has no credentials)", needs), nil
	case info.Privileges == nil:
		return notChecked(label, "connectionStatus did not list the user's privileges", needs), nil
	}
	if missing := info.Missing(needs); len(missing) > 0 {
		return "", &MissingPrivilegesError{Cluster: label, Users: info.Users, Missing: missing}
	}
	return "", nil
}

// MissingPrivilegesError is a refusal: a cluster's user lacks privileges the sync will use.
type MissingPrivilegesError struct {
	Cluster string   // "cluster0" or "cluster1"
	Users   []string // the authenticated users, "name@db"
	Missing []Need
}

func (e *MissingPrivilegesError) Error() string {
	user := "user " + strings.Join(e.Users, ", ")
	if len(e.Users) > 1 {
		user = "users " + strings.Join(e.Users, ", ")
	}
	orElse := ""
	if !slices.ContainsFunc(e.Missing, func(n Need) bool { return !n.WriteBlocking }) {
		orElse = `, or start with "enableUserWriteBlocking": "none"`
	}
	return fmt.Sprintf("%s's %s lacks %s, which the sync needs (%s); grant it the restore role on admin, "+
		"or a role with those actions on those resources%s", e.Cluster, user, describeNeeds(e.Missing), whyNeeded(e.Missing), orElse)
}

// notChecked is the warning for a check that could not be made: what was not checked, why, and
// what the user would need, so that someone who knows access control is on can grant it.
func notChecked(label, why string, needs []Need) string {
	return fmt.Sprintf("%s's privileges were not checked: %s; where access control is on, its user needs %s (the restore role has them)",
		label, why, describeNeeds(needs))
}

// describeNeeds says "bypassDocumentValidation on database crm, database shop, and
// bypassWriteBlockingMode and setUserWriteBlockMode on the cluster": actions that lack the same
// resources are named together, resources beyond maxListed are counted.
func describeNeeds(needs []Need) string {
	var actions []string
	on := map[string][]string{}
	for _, n := range needs {
		if _, ok := on[n.Action]; !ok {
			actions = append(actions, n.Action)
		}
		on[n.Action] = append(on[n.Action], n.Resource.String())
	}
	var groups []string // resources, in the order first needed
	byGroup := map[string][]string{}
	for _, a := range actions {
		rs := on[a]
		if len(rs) > maxListed {
			rs = append(rs[:maxListed:maxListed], fmt.Sprintf("and %d more", len(rs)-maxListed))
		}
		g := strings.Join(rs, ", ")
		if _, ok := byGroup[g]; !ok {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], a)
	}
	parts := make([]string, 0, len(groups))
	for _, g := range groups {
		parts = append(parts, strings.Join(byGroup[g], " and ")+" on "+g)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + ", and " + parts[len(parts)-1]
}

// whyNeeded says what the missing actions are for, each reason once.
func whyNeeded(missing []Need) string {
	reasons := map[string]string{
		ActionBypassDocumentValidation: "its copied and applied writes bypass document validation",
		ActionBypassWriteBlockingMode:  "it keeps writing while user writes are blocked, its lease renewals included",
		ActionSetUserWriteBlockMode:    "it blocks and unblocks user writes",
	}
	var out []string
	for _, n := range missing {
		if r := reasons[n.Action]; !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return strings.Join(out, "; ")
}

// CheckClusterPrivileges runs connectionStatus on a cluster and checks its user against needs (see
// CheckPrivileges). A server that refuses the command (it has no connectionStatus) yields a warning,
// not a refusal: the sync may well work, and the user is told what was not checked. Any other error
// means the cluster could not be asked at all.
func CheckClusterPrivileges(ctx context.Context, label string, client *mongo.Client, needs []Need) (warning string, err error) {
	if len(needs) == 0 {
		return "", nil
	}
	raw, err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "connectionStatus", Value: 1}, {Key: "showPrivileges", Value: true}}).Raw()
	if err != nil {
		var refused mongo.ServerError
		if !errors.As(err, &refused) {
			// No answer at all (network, timeout): the cluster is unavailable, not lacking the command.
			return "", fmt.Errorf("%s: asking for its user's privileges (connectionStatus): %w", label, err)
		}
		return notChecked(label, fmt.Sprintf("connectionStatus failed (%v)", err), needs), nil
	}
	info, err := ParseConnectionStatus(raw)
	if err != nil {
		return notChecked(label, err.Error(), needs), nil
	}
	return CheckPrivileges(label, info, needs)
}
