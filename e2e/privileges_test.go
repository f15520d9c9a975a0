package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/preflight"
)

// The privilege check against a real server with access control: a user that can read and write
// every database but lacks bypassDocumentValidation and the write-blocking actions (the usual
// readWriteAnyDatabase + clusterMonitor set-up) is refused, naming what it lacks; a user with the
// restore role passes. It needs an e2e destination that runs with access control and a user allowed
// to create users; otherwise it skips, saying so.
func TestPrivilegeCheckOnARealServerWithAccessControl(t *testing.T) {
	_, destination := clusters(t)
	ctx := context.Background()
	var status struct {
		AuthInfo struct {
			Users []bson.Raw `bson:"authenticatedUsers"`
		} `bson:"authInfo"`
	}
	must(t, destination.Database("admin").RunCommand(ctx, bson.D{{Key: "connectionStatus", Value: 1}}).Decode(&status))
	if len(status.AuthInfo.Users) == 0 {
		t.Skip("SKIPPED: the e2e destination runs without access control, so no user lacks a privilege there; " +
			"run it with --auth and a root user in FLEETSYNC_E2E_DESTINATION to prove the privilege check")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	password := hex.EncodeToString(b) + "Pw1"
	_, needs1 := preflight.Plan{BlockDestination: true}.Needs()
	for _, c := range []struct {
		roles   bson.A
		missing []string // the actions the refusal must name; none: accepted
	}{
		{bson.A{"readWriteAnyDatabase", "clusterMonitor"}, []string{"bypassDocumentValidation", "bypassWriteBlockingMode"}},
		{bson.A{"restore", "readWriteAnyDatabase", "clusterMonitor"}, nil},
	} {
		user := "fleetsync_e2e_" + hex.EncodeToString(b) + "_" + c.roles[0].(string)
		if err := destination.Database("admin").RunCommand(ctx, bson.D{{Key: "createUser", Value: user}, {Key: "pwd", Value: password},
			{Key: "roles", Value: c.roles}}).Err(); err != nil {
			t.Skipf("SKIPPED: cannot create a test user on the e2e destination (%v); it runs when %s names a user "+
				"allowed to create users (root, or userAdminAnyDatabase) on a destination started with --auth", err, envDestination)
		}
		t.Cleanup(func() {
			_ = destination.Database("admin").RunCommand(context.Background(), bson.D{{Key: "dropUser", Value: user}}).Err()
		})
		limited, err := mongo.Connect(ctx, options.Client().ApplyURI(os.Getenv(envDestination)).
			SetAuth(options.Credential{Username: user, Password: password, AuthSource: "admin"}))
		must(t, err)
		t.Cleanup(func() { _ = limited.Disconnect(context.Background()) })
		warning, err := preflight.CheckClusterPrivileges(ctx, "cluster1", limited, needs1)
		if warning != "" {
			t.Errorf("roles %v: warning %q; want the privileges checked", c.roles, warning)
		}
		var refused *preflight.MissingPrivilegesError
		switch {
		case c.missing == nil && err != nil:
			t.Errorf("roles %v: refused: %v", c.roles, err)
		case c.missing != nil && !errors.As(err, &refused):
			t.Errorf("roles %v: %v; want a refusal naming %v", c.roles, err, c.missing)
		case c.missing != nil:
			for _, action := range c.missing {
				if !strings.Contains(err.Error(), action) {
					t.Errorf("roles %v: the refusal %q does not name %s", c.roles, err, action)
				}
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("the refusal shows the password: %v", err)
			}
		}
	}
}
