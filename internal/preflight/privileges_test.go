package preflight

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// Replies of {connectionStatus: 1, showPrivileges: true} as MongoDB 7.0 sends them. MongoDB's manual
// page for connectionStatus names the fields but prints no reply, so the shapes come from the server
// itself: the reply document is connection_status.cpp's (authInfo with authenticatedUsers,
// authenticatedUserRoles and authenticatedUserPrivileges, then ok), with one privilege per resource
// holding the actions of all the user's roles merged (its expandPrivileges); resources are written
// as Privilege::toParsedPrivilege in privilege.cpp writes them ({cluster: true}, {anyResource: true},
// {db, collection} with "" for every database or collection, {system_buckets: ""}); the action lists
// are the roles' in builtin_roles.yml. Resources that hold none of the actions the check looks for
// (exact system namespaces of config and local, mostly) are left out of the longer replies.

// A user created with roles: [{role: "root", db: "admin"}].
const rootReply = `{
  "authInfo": {
    "authenticatedUsers": [{"user": "admin", "db": "admin"}],
    "authenticatedUserRoles": [{"role": "root", "db": "admin"}],
    "authenticatedUserPrivileges": [
      {"resource": {"cluster": true}, "actions": ["addShard", "allCollectionStats", "appendOplogNote", "applicationMessage", "applyOps",
        "auditConfigure", "authSchemaUpgrade", "bypassWriteBlockingMode", "checkMetadataConsistency", "cleanupOrphaned", "connPoolStats",
        "connPoolSync", "dropConnections", "flushRouterConfig", "forceUUID", "fsync", "getChangeStreamState", "getClusterParameter",
        "getCmdLineOpts", "getDefaultRWConcern", "getLog", "getParameter", "getShardMap", "hostInfo", "inprog", "invalidateUserCache",
        "issueDirectShardOperations", "killAnyCursor", "killAnySession", "killop", "listDatabases", "listSampledQueries", "listSessions",
        "listShards", "logRotate", "netstat", "oidReset", "operationMetrics", "querySettings", "queryStatsRead",
        "queryStatsReadTransformed", "removeShard", "replSetConfigure", "replSetGetConfig", "replSetGetStatus", "replSetResizeOplog",
        "replSetStateChange", "resync", "rotateCertificates", "runTenantMigration", "serverStatus", "setChangeStreamState",
        "setClusterParameter", "setDefaultRWConcern", "setFeatureCompatibilityVersion", "setParameter", "setUserWriteBlockMode",
        "shardedDataDistribution", "shardingState", "shutdown", "top", "touch", "trafficRecord", "unlock", "useTenant", "useUUID", "viewUser"]},
      {"resource": {"anyResource": true}, "actions": ["collStats", "dbCheck", "exportCollection", "importCollection", "listCollections",
        "listIndexes", "listSearchIndexes", "validate"]},
      {"resource": {"db": "", "collection": ""}, "actions": ["analyze", "analyzeShardKey", "bypassDocumentValidation", "changeCustomData",
        "changePassword", "changeStream", "cleanupStructuredEncryptionData", "clearJumboFlag", "collMod", "collStats", "compact",
        "compactStructuredEncryptionData", "configureQueryAnalyzer", "convertToCapped", "createCollection", "createIndex", "createRole",
        "createSearchIndexes", "createUser", "dbHash", "dbStats", "dropCollection", "dropDatabase", "dropIndex", "dropRole",
        "dropSearchIndex", "dropUser", "enableProfiler", "enableSharding", "find", "getDatabaseVersion", "getShardVersion", "grantRole",
        "indexStats", "insert", "killCursors", "listCachedAndActiveUsers", "listCollections", "listIndexes", "listSearchIndexes",
        "moveChunk", "moveCollection", "planCacheIndexFilter", "planCacheRead", "planCacheWrite", "reIndex", "refineCollectionShardKey",
        "remove", "renameCollectionSameDB", "reshardCollection", "revokeRole", "setAuthenticationRestriction", "splitChunk", "splitVector",
        "storageDetails", "update", "updateSearchIndex", "validate", "viewRole", "viewUser"]},
      {"resource": {"system_buckets": ""}, "actions": ["analyze", "bypassDocumentValidation", "changeStream", "collMod", "collStats",
        "convertToCapped", "createCollection", "createIndex", "dropCollection", "find", "insert", "listCollections", "listIndexes", "remove",
        "update"]},
      {"resource": {"db": "", "collection": "system.js"}, "actions": ["bypassDocumentValidation", "changeStream", "collMod", "collStats",
        "convertToCapped", "createCollection", "createIndex", "dbHash", "dbStats", "dropCollection", "dropIndex", "find", "insert",
        "killCursors", "listCollections", "listIndexes", "planCacheRead", "remove", "renameCollectionSameDB", "update"]},
      {"resource": {"db": "config", "collection": ""}, "actions": ["bypassDocumentValidation", "changeCustomData", "collMod", "collStats",
        "convertToCapped", "createCollection", "createIndex", "dbStats", "dropCollection", "find", "insert", "remove", "update"]},
      {"resource": {"db": "local", "collection": ""}, "actions": ["bypassDocumentValidation", "changeCustomData", "collMod", "collStats",
        "convertToCapped", "createCollection", "createIndex", "dbStats", "dropCollection", "find", "insert", "remove", "update"]},
      {"resource": {"db": "config", "collection": "system.preimages"}, "actions": ["find", "remove"]},
      {"resource": {"db": "admin", "collection": "system.version"}, "actions": ["bypassDocumentValidation", "collMod", "convertToCapped",
        "createCollection", "createIndex", "dropCollection", "find", "insert"]}
    ]
  },
  "ok": 1
}`

// The user of a migration tool set up for plain copying: roles [readWriteAnyDatabase, clusterMonitor]
// on admin, as many runbooks create it. It can read and write every database but bypass neither
// document validation nor write blocking.
const readWriteMonitorReply = `{
  "authInfo": {
    "authenticatedUsers": [{"user": "fleet", "db": "admin"}],
    "authenticatedUserRoles": [{"role": "readWriteAnyDatabase", "db": "admin"}, {"role": "clusterMonitor", "db": "admin"}],
    "authenticatedUserPrivileges": [
      {"resource": {"cluster": true}, "actions": ["allCollectionStats", "connPoolStats", "getCmdLineOpts", "getDefaultRWConcern", "getLog",
        "getParameter", "getShardMap", "hostInfo", "inprog", "listDatabases", "listSampledQueries", "listSessions", "listShards", "netstat",
        "operationMetrics", "replSetGetConfig", "replSetGetStatus", "serverStatus", "shardedDataDistribution", "shardingState", "top",
        "useUUID"]},
      {"resource": {"db": "", "collection": ""}, "actions": ["changeStream", "cleanupStructuredEncryptionData", "collStats",
        "compactStructuredEncryptionData", "convertToCapped", "createCollection", "createIndex", "createSearchIndexes", "dbHash", "dbStats",
        "dropCollection", "dropIndex", "dropSearchIndex", "find", "getDatabaseVersion", "getShardVersion", "indexStats", "insert",
        "killCursors", "listCollections", "listIndexes", "listSearchIndexes", "planCacheRead", "remove", "renameCollectionSameDB", "update",
        "updateSearchIndex"]},
      {"resource": {"db": "", "collection": "system.js"}, "actions": ["changeStream", "cleanupStructuredEncryptionData", "collStats",
        "compactStructuredEncryptionData", "convertToCapped", "createCollection", "createIndex", "createSearchIndexes", "dbHash", "dbStats",
        "dropCollection", "dropIndex", "dropSearchIndex", "find", "insert", "killCursors", "listCollections", "listIndexes",
        "listSearchIndexes", "planCacheRead", "remove", "renameCollectionSameDB", "update", "updateSearchIndex"]},
      {"resource": {"system_buckets": ""}, "actions": ["changeStream", "cleanupStructuredEncryptionData", "collStats",
        "compactStructuredEncryptionData", "convertToCapped", "createCollection", "createIndex", "createSearchIndexes", "dbHash", "dbStats",
        "dropCollection", "dropIndex", "dropSearchIndex", "find", "insert", "killCursors", "listCollections", "listIndexes",
        "listSearchIndexes", "planCacheRead", "remove", "renameCollectionSameDB", "update", "updateSearchIndex"]},
      {"resource": {"db": "", "collection": "system.profile"}, "actions": ["find"]},
      {"resource": {"db": "config", "collection": ""}, "actions": ["changeStream", "collStats", "dbHash", "dbStats", "find",
        "getDatabaseVersion", "getShardVersion", "indexStats", "killCursors", "listCollections", "listIndexes", "listSearchIndexes",
        "planCacheRead"]},
      {"resource": {"db": "local", "collection": ""}, "actions": ["changeStream", "collStats", "dbHash", "dbStats", "find",
        "getDatabaseVersion", "getShardVersion", "indexStats", "killCursors", "listCollections", "listIndexes", "listSearchIndexes",
        "planCacheRead"]},
      {"resource": {"db": "local", "collection": "system.replset"}, "actions": ["find"]}
    ]
  },
  "ok": 1
}`

// A user with roles [{role: "restore", db: "admin"}] only: restore's privileges, which hold all three
// actions fleetsync checks. Its anyResource privilege carries listCollections alone: a grant on
// anyResource covers every resource, but only for the actions it lists.
const restoreReply = `{
  "authInfo": {
    "authenticatedUsers": [{"user": "fleet", "db": "admin"}],
    "authenticatedUserRoles": [{"role": "restore", "db": "admin"}],
    "authenticatedUserPrivileges": [
      {"resource": {"cluster": true}, "actions": ["applyOps", "bypassWriteBlockingMode", "forceUUID", "getParameter",
        "setUserWriteBlockMode", "useUUID"]},
      {"resource": {"anyResource": true}, "actions": ["listCollections"]},
      {"resource": {"db": "", "collection": ""}, "actions": ["bypassDocumentValidation", "changeCustomData", "changePassword", "collMod",
        "convertToCapped", "createCollection", "createIndex", "createRole", "createSearchIndexes", "createUser", "dropCollection",
        "dropRole", "dropUser", "grantRole", "insert", "revokeRole", "setAuthenticationRestriction", "updateSearchIndex", "viewRole",
        "viewUser"]},
      {"resource": {"db": "local", "collection": ""}, "actions": ["bypassDocumentValidation", "collMod", "convertToCapped",
        "createCollection", "createIndex", "createSearchIndexes", "dropCollection", "insert", "updateSearchIndex"]},
      {"resource": {"db": "config", "collection": ""}, "actions": ["bypassDocumentValidation", "collMod", "convertToCapped",
        "createCollection", "createIndex", "createSearchIndexes", "dropCollection", "insert", "updateSearchIndex"]},
      {"resource": {"system_buckets": ""}, "actions": ["bypassDocumentValidation", "collMod", "convertToCapped", "createCollection",
        "createIndex", "createSearchIndexes", "dropCollection", "insert", "updateSearchIndex"]},
      {"resource": {"db": "", "collection": "system.js"}, "actions": ["bypassDocumentValidation", "collMod", "convertToCapped",
        "createCollection", "createIndex", "createSearchIndexes", "dropCollection", "insert", "updateSearchIndex"]},
      {"resource": {"db": "", "collection": "system.users"}, "actions": ["bypassDocumentValidation", "collMod", "convertToCapped",
        "createCollection", "createIndex", "createSearchIndexes", "dropCollection", "find", "insert", "remove", "update",
        "updateSearchIndex"]},
      {"resource": {"db": "admin", "collection": "system.roles"}, "actions": ["createIndex"]},
      {"resource": {"db": "admin", "collection": "tempusers"}, "actions": ["find"]},
      {"resource": {"db": "admin", "collection": "temproles"}, "actions": ["find"]}
    ]
  },
  "ok": 1
}`

// A user of two databases, created on shop with roles [readWrite, dbAdmin] on shop and
// {role: "dbOwner", db: "crm"}, plus a custom role granting insert and bypassDocumentValidation on
// the one collection billing.invoices. dbAdmin (and dbOwner through it) grants
// bypassDocumentValidation on its database; readWrite does not.
const perDatabaseReply = `{
  "authInfo": {
    "authenticatedUsers": [{"user": "shopsync", "db": "shop"}],
    "authenticatedUserRoles": [{"role": "readWrite", "db": "shop"}, {"role": "dbAdmin", "db": "shop"}, {"role": "dbOwner", "db": "crm"},
      {"role": "invoiceWriter", "db": "admin"}],
    "authenticatedUserPrivileges": [
      {"resource": {"db": "shop", "collection": ""}, "actions": ["analyze", "bypassDocumentValidation", "changeStream",
        "cleanupStructuredEncryptionData", "collMod", "collStats", "compact", "compactStructuredEncryptionData", "configureQueryAnalyzer",
        "convertToCapped", "createCollection", "createIndex", "createSearchIndexes", "dbHash", "dbStats", "dropCollection", "dropDatabase",
        "dropIndex", "dropSearchIndex", "enableProfiler", "find", "insert", "killCursors", "listCollections", "listIndexes",
        "listSearchIndexes", "planCacheIndexFilter", "planCacheRead", "planCacheWrite", "reIndex", "remove", "renameCollectionSameDB",
        "storageDetails", "update", "updateSearchIndex", "validate"]},
      {"resource": {"db": "shop", "collection": "system.js"}, "actions": ["changeStream", "collStats", "convertToCapped", "createCollection",
        "createIndex", "dbHash", "dbStats", "dropCollection", "dropIndex", "find", "insert", "killCursors", "listCollections", "listIndexes",
        "planCacheRead", "remove", "renameCollectionSameDB", "update"]},
      {"resource": {"db": "shop", "collection": "system.profile"}, "actions": ["changeStream", "collStats", "convertToCapped",
        "createCollection", "dbHash", "dbStats", "dropCollection", "find", "killCursors", "listCollections", "listIndexes", "planCacheRead"]},
      {"resource": {"db": "crm", "collection": ""}, "actions": ["analyze", "bypassDocumentValidation", "changeCustomData", "changePassword",
        "changeStream", "collMod", "collStats", "compact", "convertToCapped", "createCollection", "createIndex", "createRole", "createUser",
        "dbHash", "dbStats", "dropCollection", "dropDatabase", "dropIndex", "dropRole", "dropUser", "enableProfiler", "find", "grantRole",
        "insert", "killCursors", "listCollections", "listIndexes", "planCacheRead", "remove", "renameCollectionSameDB", "revokeRole",
        "setAuthenticationRestriction", "update", "validate", "viewRole", "viewUser"]},
      {"resource": {"db": "crm", "collection": "system.profile"}, "actions": ["collStats", "convertToCapped", "createCollection",
        "dropCollection", "find", "listCollections", "listIndexes"]},
      {"resource": {"db": "billing", "collection": "invoices"}, "actions": ["bypassDocumentValidation", "insert"]}
    ]
  },
  "ok": 1
}`

// A mongod started without --auth: nobody is authenticated, and every list is empty.
const noAuthReply = `{
  "authInfo": {"authenticatedUsers": [], "authenticatedUserRoles": [], "authenticatedUserPrivileges": []},
  "ok": 1
}`

// A user of a custom role granting anyAction on anyResource, as MongoDB's manual advises instead of
// __system for mongorestore --oplogReplay: connectionStatus lists "anyAction" for it.
const anyActionReply = `{
  "authInfo": {
    "authenticatedUsers": [{"user": "ops", "db": "admin"}],
    "authenticatedUserRoles": [{"role": "anyAction", "db": "admin"}],
    "authenticatedUserPrivileges": [{"resource": {"anyResource": true}, "actions": ["anyAction"]}]
  },
  "ok": 1
}`

func parseReply(t *testing.T, extJSON string) AuthInfo {
	t.Helper()
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(extJSON), false, &raw); err != nil {
		t.Fatalf("the test reply is not extended JSON: %v", err)
	}
	info, err := ParseConnectionStatus(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// The table of Plan.Needs, one row per option combination /start accepts.
func TestPrivilegeNeeds(t *testing.T) {
	every := Resource{Kind: ResourceNamespace}
	bdv := Need{Action: ActionBypassDocumentValidation, Resource: every}
	wb := func(optional bool) []Need {
		return []Need{{Action: ActionBypassWriteBlockingMode, Resource: clusterResource, WriteBlocking: optional},
			{Action: ActionSetUserWriteBlockMode, Resource: clusterResource, WriteBlocking: optional}}
	}
	for _, c := range []struct {
		name   string
		plan   Plan
		c0, c1 []Need
	}{
		{"none", Plan{}, nil, []Need{bdv}},
		{"destinationOnly", Plan{BlockDestination: true}, nil, append([]Need{bdv}, wb(true)...)},
		{"sourceAndDestination", Plan{BlockDestination: true, BlockSource: true}, wb(true), append([]Need{bdv}, wb(true)...)},
		{"reversible", Plan{BlockDestination: true, BlockSource: true, Reversible: true},
			append([]Need{bdv}, wb(false)...), append([]Need{bdv}, wb(false)...)},
	} {
		c0, c1 := c.plan.Needs()
		if !equalNeeds(c0, c.c0) || !equalNeeds(c1, c.c1) {
			t.Errorf("%s: cluster0 %+v cluster1 %+v, want %+v and %+v", c.name, c0, c1, c.c0, c.c1)
		}
	}

	// Include rules narrow bypassDocumentValidation to what they name; a database regex cannot.
	for _, c := range []struct {
		include []namespace.Rule
		want    string
	}{
		{nil, "every database"},
		{[]namespace.Rule{{Database: "shop"}, {Database: "crm", Collections: []string{"people", "leads"}}},
			"crm.leads, crm.people, database shop"},
		{[]namespace.Rule{{Database: "shop", Collections: []string{"orders"}}, {Database: "shop"}}, "database shop"},
		{[]namespace.Rule{{Database: "shop", CollectionsRegex: &namespace.Regex{Pattern: "^o"}}}, "database shop"},
		{[]namespace.Rule{{Database: "shop"}, {DatabaseRegex: &namespace.Regex{Pattern: "^sales_"}}}, "every database"},
	} {
		_, c1 := Plan{Include: c.include}.Needs()
		if got := describeNeeds(c1); got != "bypassDocumentValidation on "+c.want {
			t.Errorf("include %+v: %s, want bypassDocumentValidation on %s", c.include, got, c.want)
		}
	}
}

func equalNeeds(a, b []Need) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Each user against the default sync on 6.0+ (destinationOnly), the most demanding one
// (sourceAndDestination, reversible), and per-database syncs.
func TestCheckPrivilegesOnRealReplies(t *testing.T) {
	_, destinationOnly := Plan{BlockDestination: true}.Needs()
	rev0, rev1 := Plan{BlockDestination: true, BlockSource: true, Reversible: true}.Needs()

	for _, name := range []string{"root", "restore", "anyAction"} {
		info := parseReply(t, map[string]string{"root": rootReply, "restore": restoreReply, "anyAction": anyActionReply}[name])
		for i, needs := range [][]Need{destinationOnly, rev0, rev1} {
			if w, err := CheckPrivileges("cluster1", info, needs); w != "" || err != nil {
				t.Errorf("%s, needs %d: warning %q, error %v; want accepted", name, i, w, err)
			}
		}
	}

	t.Run("anyResource grants only its actions", func(t *testing.T) {
		info := parseReply(t, restoreReply)
		info.Privileges = slices.DeleteFunc(info.Privileges, func(p Privilege) bool { return p.Resource.Kind != ResourceAny })
		if len(info.Privileges) != 1 {
			t.Fatalf("restore's anyResource privileges: %+v", info.Privileges)
		}
		if _, err := CheckPrivileges("cluster1", info, destinationOnly); err == nil ||
			!strings.Contains(err.Error(), "lacks bypassDocumentValidation on every database, and bypassWriteBlockingMode and setUserWriteBlockMode") {
			t.Fatalf("refusal %v", err)
		}
	})

	t.Run("readWriteAnyDatabase and clusterMonitor", func(t *testing.T) {
		info := parseReply(t, readWriteMonitorReply)
		if len(info.Users) != 1 || info.Users[0] != "fleet@admin" {
			t.Fatalf("users %q", info.Users)
		}
		_, err := CheckPrivileges("cluster1", info, destinationOnly)
		var missing *MissingPrivilegesError
		if !errors.As(err, &missing) {
			t.Fatalf("refusal %v, want a *MissingPrivilegesError", err)
		}
		want := "cluster1's user fleet@admin lacks bypassDocumentValidation on every database, and bypassWriteBlockingMode and " +
			"setUserWriteBlockMode on the cluster, which the sync needs (its copied and applied writes bypass document validation; " +
			"it keeps writing while user writes are blocked, its lease renewals included; it blocks and unblocks user writes); " +
			"grant it the restore role on admin, or a role with those actions on those resources"
		if err.Error() != want {
			t.Fatalf("refusal:\n %s\nwant\n %s", err, want)
		}
		// Without write blocking only bypassDocumentValidation is missing.
		_, none := Plan{}.Needs()
		if _, err := CheckPrivileges("cluster1", info, none); err == nil || strings.Contains(err.Error(), "WriteBlock") {
			t.Fatalf("without write blocking: %v", err)
		}
	})

	t.Run("only write blocking missing offers none", func(t *testing.T) {
		info := parseReply(t, readWriteMonitorReply)
		info.Privileges = append(info.Privileges, Privilege{Resource: Resource{Kind: ResourceNamespace}, Actions: []string{ActionBypassDocumentValidation}})
		_, err := CheckPrivileges("cluster1", info, destinationOnly)
		if err == nil || !strings.HasSuffix(err.Error(), `or start with "enableUserWriteBlocking": "none"`) ||
			strings.Contains(err.Error(), "bypassDocumentValidation") {
			t.Fatalf("refusal %v", err)
		}
		// Reversible needs write blocking: "none" is no way out there.
		if _, err := CheckPrivileges("cluster0", info, rev0); err == nil || strings.Contains(err.Error(), `"none"`) {
			t.Fatalf("reversible refusal %v", err)
		}
	})

	t.Run("per-database grants", func(t *testing.T) {
		info := parseReply(t, perDatabaseReply)
		for _, c := range []struct {
			include []namespace.Rule
			missing string // "" means accepted
		}{
			{[]namespace.Rule{{Database: "shop"}, {Database: "crm"}}, ""},
			{[]namespace.Rule{{Database: "shop", Collections: []string{"orders"}}}, ""},
			{[]namespace.Rule{{Database: "billing", Collections: []string{"invoices"}}}, ""},
			{[]namespace.Rule{{Database: "shop"}, {Database: "billing"}}, "lacks bypassDocumentValidation on database billing,"},
			{[]namespace.Rule{{Database: "billing", Collections: []string{"invoices", "payments"}}}, "lacks bypassDocumentValidation on billing.payments,"},
			{nil, "lacks bypassDocumentValidation on every database,"},
		} {
			_, needs := Plan{Include: c.include}.Needs()
			_, err := CheckPrivileges("cluster1", info, needs)
			switch {
			case c.missing == "" && err != nil:
				t.Errorf("include %+v: refused: %v", c.include, err)
			case c.missing != "" && (err == nil || !strings.Contains(err.Error(), "cluster1's user shopsync@shop "+c.missing)):
				t.Errorf("include %+v: %v, want %q", c.include, err, c.missing)
			}
		}
	})

	t.Run("no authenticated user", func(t *testing.T) {
		info := parseReply(t, noAuthReply)
		w, err := CheckPrivileges("cluster1", info, destinationOnly)
		want := "cluster1's privileges were not checked: connectionStatus reports no authenticated user (the server runs without access control, " +
			"or the connection string has no credentials); where access control is on, its user needs bypassDocumentValidation on every database, " +
			"and bypassWriteBlockingMode and setUserWriteBlockMode on the cluster (the restore role has them)"
		if err != nil || w != want {
			t.Fatalf("warning %q, error %v; want\n %s", w, err, want)
		}
		if w, err := CheckPrivileges("cluster0", info, nil); w != "" || err != nil {
			t.Fatalf("nothing needed: warning %q, error %v", w, err)
		}
	})
}

// Against a real sandbox server, which runs without access control and answers connectionStatus
// without authenticatedUserPrivileges: the check is skipped with a warning, never a refusal.
func TestCheckClusterPrivilegesOnSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dst := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	_, needs := Plan{}.Needs()
	w, err := CheckClusterPrivileges(ctx, "cluster1", dst, needs)
	if err != nil || !strings.HasPrefix(w, "cluster1's privileges were not checked: connectionStatus reports no authenticated user") {
		t.Fatalf("warning %q, error %v", w, err)
	}
	if w, err := CheckClusterPrivileges(ctx, "cluster0", dst, nil); w != "" || err != nil {
		t.Fatalf("nothing needed: warning %q, error %v", w, err)
	}
}
